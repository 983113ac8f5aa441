#include "cli/predict_command.h"

#include <torch/torch.h>

#include <filesystem>

#include "checkpoint/checkpoint.h"
#include "common/exit_codes.h"
#include "common/error.h"
#include "common/h5.h"
#include "common/hdf5_lock.h"
#include "common/log.h"
#include "common/text.h"
#include "data/augment.h"
#include "data/split_reader.h"
#include "models/registry.h"
#include "models/weights.h"

namespace odyssey {

namespace fs = std::filesystem;

namespace {

struct PredictArgs {
  std::string checkpoint, data, out, model, split = "test";
  int64_t batch = 256;
};

PredictArgs parse(const std::vector<std::string>& args) {
  PredictArgs a;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    ODY_CHECK(i + 1 < args.size(), "option " + k + " needs a value", "see trainer --help");
    const std::string& v = args[++i];
    if (k == "--checkpoint") a.checkpoint = v;
    else if (k == "--data") a.data = v;
    else if (k == "--out") a.out = v;
    else if (k == "--model") a.model = v;
    else if (k == "--split") a.split = v;
    else if (k == "--batch") a.batch = positive_int_option(k, v);
    else ODY_FAIL("unknown option '" + k + "' for trainer predict", "see trainer --help");
  }
  ODY_CHECK(!a.checkpoint.empty() && !a.data.empty() && !a.out.empty(),
            "trainer predict needs --checkpoint, --data and --out", "see trainer --help");
  return a;
}

// The weights and the model name, reading the file once: a checkpoint names its model; a
// weights file needs --model.
std::pair<NamedTensors, std::string> load_model_file(const PredictArgs& a) {
  bool is_checkpoint = false;
  {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    is_checkpoint = h5::exists(h5::open_file(a.checkpoint, /*writable=*/false), "trainer");
  }
  if (is_checkpoint) {
    CheckpointData ckpt = read_checkpoint(a.checkpoint);
    return {std::move(ckpt.model), a.model.empty() ? ckpt.trainer.model_name : a.model};
  }
  ODY_CHECK(!a.model.empty(), "'" + a.checkpoint + "' is a weights file without a model name",
            "pass --model NAME (see trainer models)");
  return {read_weights(a.checkpoint), a.model};
}

}  // namespace

int predict_command(const std::vector<std::string>& raw) {
  const PredictArgs a = parse(raw);
  // A dataset folder, or one shard whose folder holds the index (for mean/std).
  const bool single_shard = fs::is_regular_file(a.data);
  const std::string dir = single_shard ? fs::path(a.data).parent_path().string() : a.data;
  DatasetIndex index = read_index(dir.empty() ? "." : dir);
  if (single_shard) {
    const std::string file = fs::path(a.data).filename().string();
    auto it = std::find_if(index.shards.begin(), index.shards.end(),
                           [&](const ShardEntry& e) { return e.file == file; });
    ODY_CHECK(it != index.shards.end(), "shard '" + a.data + "' is not listed in its folder's index.toml", "");
    index.shards = {*it};
  }
  const std::string split = single_shard ? index.shards[0].split : a.split;
  SplitReader reader(dir.empty() ? "." : dir, index, split, 0, int64_t{1} << 30);

  auto [weights, name] = load_model_file(a);
  const auto& entry = ModelRegistry::instance().find(name);
  auto probe = entry.create({1, index.channels, std::max(index.height, index.width)});
  int64_t classes = 0;
  for (const auto& [k, t] : weights)
    if (k.rfind(probe->head_prefix(), 0) == 0 && t.dim() == 2) classes = t.size(0);
  ODY_CHECK(classes > 0, "'" + a.checkpoint + "' holds no classifier head for model " + name, "");
  auto model = entry.create({classes, index.channels, std::max(index.height, index.width)});
  load_weights(*model, weights, /*reset_head=*/false, a.checkpoint);
  model->eval();

  torch::NoGradGuard no_grad;
  const Normalize norm{index.mean, index.std};
  std::vector<torch::Tensor> logits;
  for (int64_t begin = 0; begin < reader.size(); begin += a.batch) {
    std::vector<int64_t> idx;
    for (int64_t i = begin; i < std::min(reader.size(), begin + a.batch); ++i) idx.push_back(i);
    logits.push_back(model->forward(prepare_eval(reader.gather_images(idx), norm)));
  }
  auto all = torch::cat(logits).contiguous();
  {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    h5::Handle f = h5::create_file(a.out);
    h5::write_dataset(f, "logits", H5T_NATIVE_FLOAT, {static_cast<hsize_t>(all.size(0)), static_cast<hsize_t>(classes)},
                      all.data_ptr(), a.out);
    h5::write_dataset(f, "labels", H5T_NATIVE_INT64, {static_cast<hsize_t>(reader.size())},
                      reader.labels().data_ptr(), a.out);
    h5::write_attr(f, "model", name);
    h5::write_attr(f, "checkpoint", a.checkpoint);
    h5::write_attr(f, "data", a.data);
    h5::write_attr(f, "split", split);
  }
  const double top1 = all.argmax(1).eq(reader.labels()).to(torch::kDouble).mean().item<double>();
  log::info("wrote logits [{}, {}] of {} on '{}' ({}) to {}; top-1 against the stored labels {:.2f}%",
            all.size(0), classes, name, a.data, split, a.out, 100 * top1);
  return kExitOk;
}

}  // namespace odyssey
