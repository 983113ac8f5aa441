#include "cli/fewshot_command.h"

#include <torch/torch.h>

#include "cli/inference.h"
#include "common/error.h"
#include "common/exit_codes.h"
#include "common/text.h"
#include "metrics/fewshot.h"

namespace odyssey {

namespace {

const char* kUsage =
    "usage: trainer fewshot --checkpoint W.h5 --data DIR --shots K --episodes E [--split S] "
    "[--queries Q] [--model NAME] [--seed N] [--batch N] [--device auto|cpu|cuda] [--no-ema]";

struct FewShotArgs {
  std::string checkpoint, data, model, split = "test", device = "auto";
  FewShotOptions options;
  int64_t batch = 256;
  bool ema = true;
};

FewShotArgs parse(const std::vector<std::string>& args) {
  FewShotArgs a;
  a.options.shots = a.options.episodes = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    if (k == "--no-ema") {  // a flag: no value
      a.ema = false;
      continue;
    }
    auto value = [&]() -> const std::string& {  // taken by a known option only: an unknown one is named
      ODY_USAGE_CHECK(i + 1 < args.size(), "option " + k + " needs a value", kUsage);
      return args[++i];
    };
    if (k == "--checkpoint") a.checkpoint = value();
    else if (k == "--data") a.data = value();
    else if (k == "--model") a.model = value();
    else if (k == "--split") a.split = value();
    else if (k == "--shots") a.options.shots = positive_int_option(k, value());
    else if (k == "--episodes") a.options.episodes = positive_int_option(k, value());
    else if (k == "--queries") a.options.queries = positive_int_option(k, value());
    else if (k == "--seed") a.options.seed = static_cast<uint64_t>(nonnegative_int_option(k, value()));
    else if (k == "--batch") a.batch = positive_int_option(k, value());
    else if (k == "--device") a.device = value();
    else ODY_USAGE_FAIL("unknown option '" + k + "' for trainer fewshot", kUsage);
  }
  ODY_USAGE_CHECK(!a.checkpoint.empty() && !a.data.empty() && a.options.shots > 0 && a.options.episodes > 0,
            "trainer fewshot needs --checkpoint, --data, --shots and --episodes", kUsage);
  return a;
}

}  // namespace

int fewshot_command(const std::vector<std::string>& raw) {
  const FewShotArgs a = parse(raw);
  const SplitInput in = open_split(a.data, a.split);
  check_fewshot_classes(in.reader->labels(), a.options, in.index.class_names);
  const torch::Device device = inference_device(a.device);
  const TrainedModel m = load_trained_model(a.checkpoint, a.model, a.ema, in.index, device);
  // Features once for the whole split (on the device); the episodes only re-draw which of them
  // are support, on the CPU.
  const auto features = map_split(*in.reader, m.norm, m.input, a.batch, device,
                                  [&](const torch::Tensor& x) { return m.model->features(x); });
  const FewShotResult r = evaluate_fewshot(features, in.reader->labels(), a.options, in.index.class_names);
  std::printf("fewshot: %s from %s%s, %lld-dim features of %lld images of split '%s'\n",
              m.name.c_str(), m.path.c_str(), m.ema ? " (EMA weights)" : "",
              static_cast<long long>(features.size(1)),
              static_cast<long long>(features.size(0)), in.split.c_str());
  std::printf("fewshot: %lld-way %lld-shot, %lld episodes (seed %llu), %lld queries per episode "
              "(%s), nearest class mean by cosine similarity\n",
              static_cast<long long>(r.ways), static_cast<long long>(a.options.shots),
              static_cast<long long>(a.options.episodes), static_cast<unsigned long long>(a.options.seed),
              static_cast<long long>(r.queries_per_episode),
              a.options.queries > 0 ? ODY_MSG(a.options.queries << " per class").c_str()
                                    : "every image not in the support");
  if (r.accuracy.size() < 2)  // one episode has no spread to estimate
    std::printf("fewshot accuracy: %.2f%% (1 episode: no confidence interval; use --episodes 600)\n",
                100 * r.mean());
  else
    std::printf("fewshot accuracy: %.2f%% +- %.2f%% (95%% CI over %lld episodes)\n", 100 * r.mean(),
                100 * r.ci95(), static_cast<long long>(r.accuracy.size()));
  return kExitOk;
}

}  // namespace odyssey
