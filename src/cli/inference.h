// What `trainer predict` and `trainer fewshot` share: a dataset split to read (a dataset folder or
// one of its shards), a trained model from a checkpoint or weights file, and one batched eval pass
// of that model over the split.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "checkpoint/checkpoint.h"
#include "data/augment.h"
#include "data/dataset_index.h"
#include "data/split_reader.h"
#include "models/classifier.h"

namespace odyssey {

// A dataset split: DIR_OR_SHARD is a dataset folder (read `split` of it) or one shard file in a
// dataset folder (read that shard; its split comes from the index).
struct SplitInput {
  DatasetIndex index;  // of the folder (for one shard: listing only that shard)
  std::string split;
  std::unique_ptr<SplitReader> reader;
};
SplitInput open_split(const std::string& dir_or_shard, const std::string& split);

// --device of predict and fewshot: "auto" (a GPU when LibTorch has CUDA and one is visible, else
// the CPU), "cpu" or "cuda" (GPU 0 of those visible; one clear error when there is none).
torch::Device inference_device(const std::string& setting);

// The input a checkpoint's run evaluated at (augment.image_size, eval_crop), from its
// /trainer/config_toml; defaults without one.
AugmentConfig run_input(const CheckpointData& ckpt);

// A registry model for the dataset's channels and image size (the run's augment.image_size when
// it set one) with the weights of PATH, in eval mode, on `device`: a checkpoint's EMA weights
// when it has them and `ema` is on (as its run's evaluations), else its live ones. A checkpoint
// names its model, a weights file written by `checkpoint export` too (model_name overrides
// either; other weights files need it), and both carry the run's input size and eval crop.
// The number of classes is the classifier head's in the file. Inputs are normalised with the
// mean/std the run trained with (checkpoints and exported weights store them); files without
// them (older ones, other tools') take the dataset's index.toml, with a warning.
struct TrainedModel {
  std::shared_ptr<Classifier> model;
  std::string name;
  int64_t classes = 0;
  AugmentConfig input;  // image_size / eval_crop of the run (defaults when the file has none)
  bool ema = false;     // the checkpoint's EMA weights were taken
  std::string path;     // the file read (a run folder or `latest` resolved)
  Normalize norm;       // what map_split normalises this model's inputs with
};
TrainedModel load_trained_model(const std::string& path, const std::string& model_name, bool ema,
                                const DatasetIndex& index, torch::Device device);

// fn(evaluation-transformed batch [B, C, H, W] on `device`: input's resize and centre crop,
// normalisation) for every batch of the split, in order, without gradients; the results copied
// to the CPU and concatenated along the first dimension.
torch::Tensor map_split(const SplitReader& reader, const Normalize& norm, const AugmentConfig& input,
                        int64_t batch, torch::Device device,
                        const std::function<torch::Tensor(const torch::Tensor&)>& fn);

}  // namespace odyssey
