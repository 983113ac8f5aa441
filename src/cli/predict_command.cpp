#include "cli/predict_command.h"

#include <torch/torch.h>

#include "checkpoint/checkpointer.h"
#include "cli/inference.h"
#include "common/exit_codes.h"
#include "common/error.h"
#include "common/file.h"
#include "common/h5.h"
#include "common/hdf5_lock.h"
#include "common/log.h"
#include "common/text.h"

namespace odyssey {

namespace {

struct PredictArgs {
  std::string checkpoint, data, out, model, split = "test", device = "auto";
  int64_t batch = 256;
  bool ema = true;
};

PredictArgs parse(const std::vector<std::string>& args) {
  PredictArgs a;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    if (k == "--no-ema") {  // a flag: no value
      a.ema = false;
      continue;
    }
    auto value = [&]() -> const std::string& {  // taken by a known option only: an unknown one is named
      ODY_USAGE_CHECK(i + 1 < args.size(), "option " + k + " needs a value", "see trainer --help");
      return args[++i];
    };
    if (k == "--checkpoint") a.checkpoint = value();
    else if (k == "--data") a.data = value();
    else if (k == "--out") a.out = value();
    else if (k == "--model") a.model = value();
    else if (k == "--split") a.split = value();
    else if (k == "--batch") a.batch = positive_int_option(k, value());
    else if (k == "--device") a.device = value();
    else ODY_USAGE_FAIL("unknown option '" + k + "' for trainer predict", "see trainer --help");
  }
  ODY_USAGE_CHECK(!a.checkpoint.empty() && !a.data.empty() && !a.out.empty(),
            "trainer predict needs --checkpoint, --data and --out", "see trainer --help");
  return a;
}

}  // namespace

int predict_command(const std::vector<std::string>& raw) {
  const PredictArgs a = parse(raw);
  const SplitInput in = open_split(a.data, a.split);
  const SplitReader& reader = *in.reader;
  const torch::Device device = inference_device(a.device);
  const TrainedModel m = load_trained_model(a.checkpoint, a.model, a.ema, in.index, device);
  refuse_run_file_output(a.out, m.path, "trainer predict: --out", "name a new file for the logits");
  check_writable_output(a.out, "trainer predict --out");  // before the pass over the split
  ODY_CHECK(in.index.num_classes <= m.classes,
            ODY_MSG("'" << a.data << "' has " << in.index.num_classes << " classes, the model in '" << m.path
                        << "' " << m.classes),
            "predict on a dataset of the classes the run trained on");
  const auto all = map_split(reader, m.norm, m.input, a.batch, device,
                             [&](const torch::Tensor& x) { return m.model->forward(x); })
                       .to(torch::kFloat);  // map_split's result: contiguous, on the CPU
  write_hdf5_atomically(a.out, [&](hid_t f, const std::string& tmp) {
    h5::write_dataset(f, "logits", H5T_NATIVE_FLOAT, {static_cast<hsize_t>(all.size(0)), static_cast<hsize_t>(m.classes)},
                      all.data_ptr(), tmp);
    h5::write_dataset(f, "labels", H5T_NATIVE_INT64, {static_cast<hsize_t>(reader.size())},
                      reader.labels().data_ptr(), tmp);
    h5::write_attr(f, "model", m.name);
    h5::write_attr(f, "ema_weights", static_cast<int64_t>(m.ema));
    h5::write_attr(f, "checkpoint", m.path);
    h5::write_attr(f, "data", a.data);
    h5::write_attr(f, "split", in.split);
    h5::write_attr(f, "input_mean", m.norm.mean);
    h5::write_attr(f, "input_std", m.norm.std);
    // The dataset's class names: the first columns' (a head may have more classes).
    if (!in.index.class_names.empty()) h5::write_attr(f, "class_names", in.index.class_names);
  });
  const double top1 = all.argmax(1).eq(reader.labels()).to(torch::kDouble).mean().item<double>();
  log::info("wrote logits [{}, {}] of {}{} on '{}' ({}, {}) to {}; top-1 against the stored labels "
            "{:.2f}%", all.size(0), m.classes, m.name, m.ema ? " (EMA weights)" : "", a.data,
            in.split, device.str(), a.out, 100 * top1);
  return kExitOk;
}

}  // namespace odyssey
