// Config: typed structs that mirror the TOML tables, loaded with validation and overrides.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace odyssey {

struct RunConfig {
  std::string name = "run";          // run folder name under out_dir
  std::string out_dir = "checkpoints";
  int64_t seed = 0;                  // model init, data order and augmentation derive from it
};

struct DataConfig {
  std::string path = "datasets/fashion-mnist";  // folder with index.toml and shards
  std::string train_split = "train";
  std::string eval_split = "test";
  int64_t train_limit = 0;  // use only the first N training samples (0 = all)
  int64_t eval_limit = 0;   // evaluate only the first N samples (0 = all)
  int64_t prefetch = 4;     // batches read ahead by the loader
  int64_t readers = 2;      // loader threads per rank
  // Epoch order: "global" (one permutation of every sample), "block" (blocks of shuffle_block
  // consecutive samples in a permuted order, samples mixed within windows of shuffle_window
  // blocks: contiguous reads for datasets that stream from disk) or "block_per_rank" (each rank
  // its own 1/N of that block order: it reads only its share; the order depends on N).
  std::string shuffle = "global";
  int64_t shuffle_block = 256;
  int64_t shuffle_window = 16;
  int64_t aug_repeats = 1;  // repeated augmentation: each drawn sample R times in a row (global shuffle)
  std::string on_corrupt = "stop";  // a bad shard: "stop" or "skip" it
  int64_t cache_mb = 1024;  // hold a split in memory when it is at most this size (0 = stream)
};

struct ModelConfig {
  std::string name = "fmnist_cnn";
  int64_t num_classes = 0;  // 0 = from the dataset index
  std::string init_from;    // weights file (/model/<key>) or checkpoint to start from ("" = none)
  bool reset_head = false;  // with init_from: keep the new classifier head (other num_classes)
  std::vector<std::string> freeze;  // parameter name patterns (* and ?) kept fixed
  double dropout = -1;           // the architecture's dropout rate (-1 = its torchvision default)
  double stochastic_depth = -1;  // drop-path rate of residual blocks (-1 = the default)
};

struct TrainConfig {
  int64_t epochs = 10;
  int64_t batch_size = 64;  // per rank; the global batch is batch_size x world size
  int64_t max_steps = 0;    // train this many steps in all (0 = all epochs); sets the schedule
  int64_t stop_at_step = 0; // stop with a checkpoint at this step, schedule unchanged (0 = off)
  double label_smoothing = 0.0;
  int64_t log_every = 100;  // steps between progress lines and metrics records
  int64_t eval_every = 1;   // epochs between evaluations (the last epoch always evaluates)
  std::string resume = "auto";  // "auto" (newest checkpoint of the run, if any), "none" or a path
  int64_t threads = 0;      // CPU threads per rank (0 = its fair share of the CPUs it may use)
  std::string on_nonfinite = "skip";  // a NaN/inf loss on any rank: "skip" the step or "stop"
  int64_t accum_steps = 1;  // micro-batches per step (gradient accumulation); divides batch_size
  std::string precision = "fp32";  // "fp32", "bf16" (autocast) or "fp16" (autocast + loss scaling)
  double ema_decay = 0.0;   // EMA of the weights, used for evaluation (0 = off)
  bool ema_warmup = true;   // decay min(ema_decay, (1 + t) / (10 + t)) at step t
  std::string device = "auto";  // "auto" (CUDA when every rank sees a GPU), "cpu" or "cuda"
  bool channels_last = true;    // conv nets: weights and activations in NHWC memory order
  bool tf32 = true;             // CUDA float32 convolutions and matrix products in TensorFloat-32
  std::string cpu_gemm = "auto";  // CPU float32 linear layers: "auto", "onednn" or "libtorch"
  bool cpu_reuse_large_blocks = true;  // freed CPU blocks above 32 MB stay in the heap for reuse
  std::string cpu_conv = "auto";  // CPU float32 3x3 stride-1 convolutions: "auto", "winograd", "libtorch"
};

struct OptimConfig {
  std::string name = "sgd";  // "sgd", "adamw", "rmsprop" (TF form), "lamb" or "lars"
  double lr = 0.1;           // per 256 images when lr_scaling = "linear"
  std::string lr_scaling = "linear";  // "linear": lr x global_batch / 256; "none": lr as given
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;         // AdamW/LAMB epsilon; RMSprop's (inside the square root)
  double rho = 0.9;          // RMSprop decay of the mean square
  double trust_coef = 0.001; // LARS trust coefficient (eta)
  bool decay_bias_and_norm = false;  // also decay biases, norm parameters, class/pos tokens
  double layer_decay = 1.0;  // layer-wise LR decay (ViT, EfficientNet); 1 = off
  double clip_grad_norm = 0; // clip the global gradient norm to this (0 = off)
};

struct ScheduleConfig {
  std::string name = "cosine";  // "cosine", "step", "exponential" or "constant"
  double warmup_epochs = 0.0;
  double warmup_start = 0.0;    // warmup starts at this fraction of the peak lr
  double min_lr_ratio = 0.0;    // floor as a fraction of the peak lr
  double decay_epochs = 1.0;    // step/exponential: period of one decay_rate factor
  double decay_rate = 0.1;      // step/exponential: factor per decay_epochs
};

struct MetricsConfig {
  double peak_tflops = 0;            // per rank, for MFU (0 = MFU not reported)
  std::string progress = "auto";     // "auto" (bar on a terminal), "bar" or "lines"
  bool report = true;                // write report.html at the end of training
};

struct AugmentConfig {
  bool hflip = true;         // random horizontal flip with probability 0.5
  int64_t crop_padding = 0;  // random crop after zero padding by this many pixels (0 = off)
  // One warp per image (crop, rotation, translation, shear, perspective composed):
  double rrc_scale_min = 0;  // random-resized-crop area in [min, 1], ratio 3/4..4/3 (0 = off)
  double rotate_deg = 0;     // rotation uniform in [-d, d] degrees
  double translate = 0;      // translation up to this fraction of the size, per axis
  double shear_deg = 0;      // shear uniform in [-d, d] degrees, per axis
  double perspective = 0;    // corners moved up to this fraction of the half-size (0 = off)
  // Colour (factors uniform in [1 - x, 1 + x]; hue shift in [-x, x] of a turn):
  double brightness = 0, contrast = 0, saturation = 0, hue = 0;
  double grayscale_p = 0;    // probability of turning an image grey
  double erasing_p = 0;      // random erasing: probability per image (area 2-33 %)
  std::string erasing_mode = "const";  // its fill: "const" (0 after normalisation) or "pixel" (noise)
  // Label-mixing, per batch: lambda ~ Beta(alpha, alpha); both on: one of them at random.
  double mixup_alpha = 0, cutmix_alpha = 0;
  double mix_p = 1.0;        // probability that a batch is mixed at all
  // RandAugment (Cubuk et al.): n ops per image (0 = off), magnitude m; "torchvision": its 14 ops,
  // m of 0..30, every drawn op applied; "timm": timm's rand-mM-mstdS-inc1 (DeiT's), its 15
  // increasing ops, m of 0..10 plus Gaussian noise of std randaugment_mstd, each op applied with
  // probability 0.5, geometry filled with the dataset's mean colour.
  int64_t randaugment_n = 0;
  int64_t randaugment_m = 9;
  std::string randaugment_policy = "torchvision";
  double randaugment_mstd = 0;
  // Input size: the model sees image_size x image_size (0 = the stored size). Evaluation resizes
  // the shorter side to image_size / eval_crop and takes the centre square.
  int64_t image_size = 0;
  double eval_crop = 1.0;
  // Where augmentation runs: "auto" = the training device (on a GPU the loader's uint8 batch goes
  // there first, from pinned memory without blocking), "cpu" = always the CPU.
  std::string device = "auto";
  bool warps() const { return rrc_scale_min > 0 || rotate_deg > 0 || translate > 0 || shear_deg > 0 || perspective > 0; }
  bool mixes() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};

struct DistConfig {
  std::string backend = "auto";   // "auto", "mpi", "nccl" or "single"
  double bucket_mb = 0;           // gradient all-reduce bucket size after the first; 0 = by topology
  double first_bucket_mb = 1;     // the first bucket: the last layers' gradients, sent early
  std::string compress = "none";  // wire format of gradients: "none", "bf16" or "fp16"
  double timeout_s = 300;         // a collective slower than this ends the job, naming the rank
  double first_timeout_s = 900;   // the same until the first step completed (setup, warm-up)
  bool sync_bn = false;           // BatchNorm statistics over the global batch while training
  // Not a key: whether the job spans nodes, set at start-up, for bucket_mb = 0 (the run's
  // config.toml keeps the 0, so a rerun on another topology chooses again).
  bool spans_nodes = false;
  // The bucket size used: bucket_mb, or by topology (default_bucket_mb).
  double effective_bucket_mb() const { return bucket_mb > 0 ? bucket_mb : default_bucket_mb(spans_nodes); }
  // dist.bucket_mb = 0: 4 MB while a job fits one node, 25 MB (PyTorch DDP's) once it spans
  // nodes, where each bucket's all-reduce latency grows (see trainer simulate).
  static double default_bucket_mb(bool spans_nodes) { return spans_nodes ? 25 : 4; }
};

struct CheckpointConfig {
  int64_t every_epochs = 1;    // write a checkpoint every N epochs (0 = only at the end)
  int64_t every_steps = 0;     // and every N steps (0 = off)
  double every_minutes = 0;    // and when this many minutes passed since the last one (0 = off)
  int64_t keep_last = 3;       // keep the newest N checkpoints (0 = keep all)
  int64_t keep_every = 0;      // also keep those whose step is a multiple of N (0 = none)
  bool async = true;           // write in a background thread (training only copies the state)
  std::string on_error = "stop";  // a failed write: "stop" training (exit 3) or "continue"
};

struct Config {
  RunConfig run;
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  OptimConfig optim;
  ScheduleConfig schedule;
  AugmentConfig augment;
  DistConfig dist;
  CheckpointConfig checkpoint;
  MetricsConfig metrics;

  std::string source;  // the file it came from ("" for defaults)
};

// Loads path, applies "section.key=value" overrides, validates every key.
// Throws odyssey::Error naming the file, the key and (where known) the line.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Parses TOML text (used by tests and to read a config stored in a checkpoint).
// The evaluation input (augment.image_size, augment.eval_crop) of a stored config, such as a
// checkpoint's: only those two keys are read, so a config an older or newer build wrote (other
// keys, other checks) still gives them; defaults where absent or unreadable.
AugmentConfig stored_eval_input(const std::string& text);

Config parse_config(const std::string& text, const std::string& source_name,
                    const std::vector<std::string>& overrides = {});

// The resolved config as TOML text: every key with its value.
std::string to_toml(const Config& config);

// A key whose value differs between two configs written by to_toml (a checkpoint's and the
// resumed run's); "" for a side that lacks the key (another build's config).
struct ConfigChange {
  std::string key, before, after;
};
std::vector<ConfigChange> config_changes(const std::string& before_toml, const std::string& after_toml);

// The reference of every key: "section.key  type  default  meaning", one per line.
std::string config_reference();

}  // namespace odyssey
