#include "cli/inference.h"

#include <algorithm>
#include <filesystem>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpointer.h"
#include "common/error.h"
#include "common/log.h"
#include "config/config.h"
#include "models/flops.h"
#include "models/meta_model.h"
#include "models/registry.h"
#include "models/weights.h"
#include "train/device.h"

namespace odyssey {

namespace fs = std::filesystem;

SplitInput open_split(const std::string& data, const std::string& split) {
  const bool single_shard = fs::is_regular_file(data);
  std::string dir = single_shard ? fs::path(data).parent_path().string() : data;
  if (dir.empty()) dir = ".";
  SplitInput in;
  in.index = read_index(dir);
  if (single_shard) {
    const std::string file = fs::path(data).filename().string();
    auto it = std::find_if(in.index.shards.begin(), in.index.shards.end(),
                           [&](const ShardEntry& e) { return e.file == file; });
    ODY_CHECK(it != in.index.shards.end(), "shard '" + data + "' is not listed in its folder's index.toml", "");
    in.index.shards = {*it};
  }
  in.split = single_shard ? in.index.shards[0].split : split;
  ODY_CHECK(single_shard || !in.index.split(split).empty(),
            "'" + data + "' has no split '" + split + "' (its index.toml lists " +
                in.index.split_names() + ")",
            "pass --split with one of them");
  in.reader = std::make_unique<SplitReader>(dir, in.index, in.split, 0, int64_t{1} << 30);
  ODY_CHECK(in.reader->size() > 0, "split '" + in.split + "' of '" + data + "' holds no images",
            "pass another --split (index.toml lists them)");
  return in;
}

namespace {

// The weights, the model name and the run's input of a checkpoint or a weights file.
struct ModelFile {
  NamedTensors weights;
  std::string name;
  AugmentConfig input;
  bool ema = false;
  Normalize norm;  // empty when the file stores none
};
ModelFile read_model_file(const std::string& path, const std::string& model_name, bool ema) {
  ODY_CHECK(fs::is_regular_file(path), "checkpoint or weights file '" + path + "' does not exist",
            "check the path given to --checkpoint");
  const WeightsInfo info = read_weights_info(path);  // and whether it is a checkpoint
  if (info.is_checkpoint) {
    CheckpointData ckpt = read_checkpoint(path);
    const bool took = ema && take_ema_weights(ckpt);
    const AugmentConfig input = run_input(ckpt);
    return {std::move(ckpt.model), model_name.empty() ? ckpt.trainer.model_name : model_name,
            input, took, {ckpt.trainer.input_mean, ckpt.trainer.input_std}};
  }
  const std::string name = model_name.empty() ? info.model_name : model_name;
  ODY_CHECK(!name.empty(), "'" + path + "' is a weights file without a model name",
            "pass --model NAME (see trainer models)");
  AugmentConfig input;
  input.image_size = info.image_size;
  input.eval_crop = info.eval_crop;
  return {read_weights(path), name, input, false, {info.input_mean, info.input_std}};
}

// The file's normalisation when it has one for the dataset's channels, else the dataset's.
Normalize input_normalisation(const Normalize& stored, const DatasetIndex& index, const std::string& path) {
  if (stored.mean.empty()) {
    log::warn("'{}' does not store the mean/std its run normalised with (written before they were "
              "stored, or by another tool): normalising with the dataset's index.toml", path);
    return {index.mean, index.std};
  }
  ODY_CHECK(static_cast<int64_t>(stored.mean.size()) == index.channels,
            ODY_MSG("'" << path << "' was trained on " << stored.mean.size() << "-channel images, the "
                        "dataset holds " << index.channels << "-channel ones"),
            "predict on images converted as the run's were");
  return stored;
}

}  // namespace

AugmentConfig run_input(const CheckpointData& ckpt) {
  return stored_eval_input(ckpt.trainer.config_toml);
}

torch::Device inference_device(const std::string& setting) {
  ODY_USAGE_CHECK(setting == "auto" || setting == "cpu" || setting == "cuda",
                  "--device " + setting + " is not auto, cpu or cuda", "");
  if (setting == "cpu" || (setting == "auto" && !cuda_usable())) return torch::kCPU;
  ODY_CHECK(cuda_usable(),
            std::string("--device cuda: ") + (at::hasCUDA() ? "no GPU is visible (CUDA_VISIBLE_DEVICES, driver)"
                                                            : "this trainer's LibTorch is built without CUDA"),
            "use --device cpu or auto");
  return torch::Device(torch::kCUDA, 0);
}

TrainedModel load_trained_model(const std::string& named, const std::string& model_name, bool ema,
                                const DatasetIndex& index, torch::Device device) {
  const std::string path = checkpoint_file(named);  // a run folder or its `latest` too
  auto [weights, name, input, took_ema, stored_norm] = read_model_file(path, model_name, ema);
  const auto& entry = ModelRegistry::instance().find(name);
  const int64_t size = model_input_size(input, index.height, index.width);
  auto probe = create_meta_model(name, {1, index.channels, size});  // only for its head's name
  int64_t classes = 0;
  for (const auto& [k, t] : weights)
    if (k.rfind(probe->head_prefix(), 0) == 0 && t.dim() == 2) classes = t.size(0);
  ODY_CHECK(classes > 0, "'" + path + "' holds no classifier head for model " + name, "");
  if (input.image_size <= 0 && index.height != index.width) {  // the stored, non-square size
    try {
      measure_model(name, {classes, index.channels, size}, index.height, index.width);
    } catch (const Error& e) {
      throw Error("'" + path + "' on the dataset's " + std::to_string(index.height) + "x" +
                      std::to_string(index.width) + " images: " + e.message(),
                  "predict on images of the size the run trained on (it set augment.image_size = 0)",
                  __FILE__, __LINE__);
    }
  }
  TrainedModel m{entry.create({classes, index.channels, size}), name, classes, input, took_ema, path,
                 input_normalisation(stored_norm, index, path)};
  load_weights(*m.model, weights, /*reset_head=*/false, path);
  m.model->to(device);
  m.model->eval();
  return m;
}

torch::Tensor map_split(const SplitReader& reader, const Normalize& norm, const AugmentConfig& input,
                        int64_t batch, torch::Device device,
                        const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (int64_t begin = 0; begin < reader.size(); begin += batch) {
    std::vector<int64_t> idx;
    for (int64_t i = begin; i < std::min(reader.size(), begin + batch); ++i) idx.push_back(i);
    // uint8 to the device (a quarter of the float bytes); preprocessing runs there.
    out.push_back(fn(prepare_eval(reader.gather_images(idx).to(device), norm, input)).to(torch::kCPU));
  }
  return torch::cat(out).contiguous();
}

}  // namespace odyssey
