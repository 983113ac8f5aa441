#include "config/config_schema.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "common/error.h"
#include "common/text.h"

namespace odyssey {

namespace {

// Shortest text that reads back as the same double, always with a '.' or exponent (a TOML float);
// whole numbers below 1e15 in plain digits (300.0, not 3e+02).
std::string fmt_double(double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

template <typename Ref>
Field int_field(std::string s, std::string k, Ref ref, int64_t lo, int64_t hi, std::string doc) {
  Field f{s, k, "integer", std::move(doc), {}, nullptr, nullptr};
  std::string name = f.name();
  f.set = [=](Config& c, const toml::node& n, const std::string& where) {
    ODY_CHECK(n.is_integer(),
              ODY_MSG(where << ": key '" << name << "' must be an integer, got " << n.type()),
              "write it without quotes or a decimal point, e.g. " + name + " = 10");
    int64_t v = n.value<int64_t>().value();
    ODY_CHECK(v >= lo && v <= hi,
              ODY_MSG(where << ": key '" << name << "' = " << v << " is out of range [" << lo
                            << ", " << hi << "]"),
              "");
    ref(c) = v;
  };
  f.get = [=](const Config& c) { return std::to_string(ref(const_cast<Config&>(c))); };
  return f;
}

template <typename Ref>
Field float_field(std::string s, std::string k, Ref ref, double lo, double hi, std::string doc) {
  Field f{s, k, "float", std::move(doc), {}, nullptr, nullptr};
  std::string name = f.name();
  f.set = [=](Config& c, const toml::node& n, const std::string& where) {
    ODY_CHECK(n.is_number(),
              ODY_MSG(where << ": key '" << name << "' must be a number, got " << n.type()), "");
    // An integer beyond 2^53 has no exact double: toml++'s value<double>() is then empty.
    const double v = n.is_integer() ? static_cast<double>(n.as_integer()->get())
                                    : n.as_floating_point()->get();
    ODY_CHECK(std::isfinite(v) && v >= lo && v <= hi,
              ODY_MSG(where << ": key '" << name << "' = " << fmt_double(v) << " is out of range ["
                            << fmt_double(lo) << ", " << fmt_double(hi) << "]"),
              "");
    ref(c) = v;
  };
  f.get = [=](const Config& c) { return fmt_double(ref(const_cast<Config&>(c))); };
  return f;
}

template <typename Ref>
Field bool_field(std::string s, std::string k, Ref ref, std::string doc) {
  Field f{s, k, "bool", std::move(doc), {}, nullptr, nullptr};
  std::string name = f.name();
  f.set = [=](Config& c, const toml::node& n, const std::string& where) {
    ODY_CHECK(n.is_boolean(),
              ODY_MSG(where << ": key '" << name << "' must be true or false, got " << n.type()),
              "");
    ref(c) = n.value<bool>().value();
  };
  f.get = [=](const Config& c) { return std::string(ref(const_cast<Config&>(c)) ? "true" : "false"); };
  return f;
}

// A string; when choices is not empty the value must be one of them.
template <typename Ref>
Field string_field(std::string s, std::string k, Ref ref, std::vector<std::string> choices,
                   std::string doc) {
  Field f{s, k, "string", std::move(doc), choices, nullptr, nullptr};
  std::string name = f.name();
  f.set = [=](Config& c, const toml::node& n, const std::string& where) {
    ODY_CHECK(n.is_string(),
              ODY_MSG(where << ": key '" << name << "' must be a string, got " << n.type()),
              "put the value in double quotes");
    std::string v = n.value<std::string>().value();
    if (!choices.empty() && std::find(choices.begin(), choices.end(), v) == choices.end()) {
      std::string all;
      for (const auto& ch : choices) all += (all.empty() ? "" : ", ") + quote_string(ch);
      ODY_FAIL(ODY_MSG(where << ": key '" << name << "' = " << quote_string(v) << " is not one of "
                             << all),
               "");
    }
    ref(c) = v;
  };
  f.get = [=](const Config& c) { return quote_string(ref(const_cast<Config&>(c))); };
  return f;
}

// An array of strings, e.g. model.freeze = ["features.0.*", "features.1.*"].
template <typename Ref>
Field string_list_field(std::string s, std::string k, Ref ref, std::string doc) {
  Field f{s, k, "string array", std::move(doc), {}, nullptr, nullptr};
  std::string name = f.name();
  f.set = [=](Config& c, const toml::node& n, const std::string& where) {
    const toml::array* arr = n.as_array();
    ODY_CHECK(arr, ODY_MSG(where << ": key '" << name << "' must be an array of strings, got "
                                 << n.type()),
              "e.g. " + name + " = [\"features.0.*\"]");
    std::vector<std::string> v;
    for (const auto& item : *arr) {
      ODY_CHECK(item.is_string(), ODY_MSG(where << ": key '" << name
                                                << "' must hold strings only, got " << item.type()),
                "put each pattern in double quotes");
      v.push_back(item.value<std::string>().value());
    }
    ref(c) = v;
  };
  f.get = [=](const Config& c) {
    std::string out = "[";
    for (const auto& v : ref(const_cast<Config&>(c)))
      out += (out.size() > 1 ? ", " : "") + quote_string(v);
    return out + "]";
  };
  return f;
}

#define REF(member) [](Config& c) -> decltype(auto) { return (c.member); }
constexpr int64_t kMaxI = std::numeric_limits<int64_t>::max();

}  // namespace

const std::vector<Field>& schema() {
  static const std::vector<Field> fields = {
      string_field("run", "name", REF(run.name), {},
                   "run folder name under run.out_dir (relative, may nest: sweep/lr1; no '.' or '..' parts)"),
      string_field("run", "out_dir", REF(run.out_dir), {}, "root folder for run folders"),
      int_field("run", "seed", REF(run.seed), 0, kMaxI,
                "seed of model init, data order and augmentation"),
      string_field("data", "path", REF(data.path), {},
                   "dataset folder holding index.toml and the shards"),
      string_field("data", "train_split", REF(data.train_split), {}, "split to train on"),
      string_field("data", "eval_split", REF(data.eval_split), {}, "split to evaluate on"),
      int_field("data", "train_limit", REF(data.train_limit), 0, kMaxI,
                "train on the first N samples only (0 = all)"),
      int_field("data", "eval_limit", REF(data.eval_limit), 0, kMaxI,
                "evaluate the first N samples only (0 = all)"),
      int_field("data", "prefetch", REF(data.prefetch), 1, 1024,
                "batches the loader reads ahead (at least one per reader thread)"),
      int_field("data", "readers", REF(data.readers), 1, 64,
                "loader threads per rank, each reading whole batches (contiguous runs per "
                "shard, pread without the HDF5 lock for shardify's layout); batches reach "
                "training in step order whatever the count"),
      string_field("data", "shuffle", REF(data.shuffle), {"global", "block", "block_per_rank"},
                   "epoch order: \"global\" = one permutation of all samples (every batch from "
                   "anywhere: one read per sample when streaming); \"block\" = blocks of "
                   "shuffle_block consecutive samples in permuted order, samples mixed within "
                   "windows of shuffle_window blocks, each block read once into a buffer of one "
                   "window (contiguous reads for data larger than memory; still a pure function of "
                   "seed and epoch, so resume and N-rank equivalence hold; but every rank's "
                   "batches reach into every block of a window, so each of N ranks reads nearly "
                   "all the data each epoch); \"block_per_rank\" = each rank takes its own "
                   "contiguous 1/N of the epoch's block order, mixed within its windows of "
                   "shuffle_window blocks: a rank reads only its share (contiguous, 1/N of the "
                   "data per epoch); the order depends on N, so N ranks no longer train as one "
                   "rank with N x the batch (exact resume needs the same number of ranks)"),
      int_field("data", "shuffle_block", REF(data.shuffle_block), 1, int64_t{1} << 24,
                "data.shuffle = \"block\" or \"block_per_rank\": consecutive samples per block"),
      int_field("data", "shuffle_window", REF(data.shuffle_window), 1, 1 << 20,
                "data.shuffle = \"block\" or \"block_per_rank\": blocks mixed together (the "
                "read buffer holds about this many blocks)"),
      int_field("data", "aug_repeats", REF(data.aug_repeats), 1, 16,
                "repeated augmentation (DeiT's, timm's --aug-repeats): each epoch takes the first "
                "ceil(n / R) samples of its permutation, each R times in a row (R differently "
                "augmented copies, on different ranks as timm's RASampler) for the same number "
                "of steps, so an epoch sees 1/R of the data R times; 1 = off; needs "
                "data.shuffle = \"global\""),
      string_field("data", "on_corrupt", REF(data.on_corrupt), {"stop", "skip"},
                   "a shard that cannot be opened, is truncated, or disagrees with index.toml "
                   "(shape, classes, labels out of range): \"stop\" with its name on every rank, "
                   "or \"skip\" it (logged with the count of samples left out; every rank leaves "
                   "out the shards any rank cannot read, e.g. one damaged in one node's copy, so "
                   "all ranks index the same samples)"),
      int_field("data", "cache_mb", REF(data.cache_mb), 0, int64_t{1} << 30,
                "MiB per rank: a split at most this size is read into memory once, larger "
                "splits stream from the shards (0 = always stream)"),
      string_field("model", "name", REF(model.name), {},
                   "registry name (see `trainer models`)"),
      int_field("model", "num_classes", REF(model.num_classes), 0, 1 << 20,
                "classifier outputs (0 = from the dataset index)"),
      string_field("model", "init_from", REF(model.init_from), {},
                   "HDF5 weights (/model/<key>, e.g. from launch/export_torchvision.py) or a "
                   "checkpoint to start from, loaded strictly (\"\" = random init)"),
      bool_field("model", "reset_head", REF(model.reset_head),
                 "with init_from: keep the freshly initialised classifier head (transfer to "
                 "another num_classes)"),
      string_list_field("model", "freeze", REF(model.freeze),
                        "parameter name patterns (* any text, ? one character; torchvision's "
                        "names, see `trainer models NAME`) kept fixed: no gradient, not in the "
                        "optimizer, not all-reduced; each pattern must match a parameter"),
      float_field("model", "dropout", REF(model.dropout), -1.0, 0.99,
                  "dropout rate, as torchvision's `dropout` argument: EfficientNet and the CNNs "
                  "before the classifier head, ViT after the position embedding, the attention "
                  "and each MLP layer (-1 = the architecture's default: efficientnet_b0/b1 0.2, "
                  "b2/b3 0.3, b4/b5 0.4, b6/b7 0.5, efficientnet_s 0.1, ViT and CNNs 0)"),
      float_field("model", "stochastic_depth", REF(model.stochastic_depth), -1.0, 0.99,
                  "stochastic depth: each residual block's branch is dropped per sample with a "
                  "probability growing linearly over the blocks, p x i / N for EfficientNet "
                  "(torchvision), p x i / (N - 1) for ViT (DeiT's drop path) (-1 = the default: "
                  "EfficientNet 0.2, efficientnet_s 0.1, ViT 0 as torchvision; DeiT trains with "
                  "0.1)"),
      int_field("train", "epochs", REF(train.epochs), 1, 1000000, "epochs to train"),
      int_field("train", "batch_size", REF(train.batch_size), 1, 1 << 20,
                "images per rank per step; global batch = batch_size x ranks"),
      int_field("train", "max_steps", REF(train.max_steps), 0, kMaxI,
                "train this many steps in all (0 = all epochs); the LR schedule spans them"),
      int_field("train", "stop_at_step", REF(train.stop_at_step), 0, kMaxI,
                "stop with a checkpoint at this step without changing the schedule (0 = off); "
                "resume continues the same run"),
      float_field("train", "label_smoothing", REF(train.label_smoothing), 0.0, 0.99,
                  "label smoothing of the cross-entropy loss"),
      int_field("train", "log_every", REF(train.log_every), 1, kMaxI,
                "steps between progress lines and metrics records"),
      int_field("train", "eval_every", REF(train.eval_every), 1, kMaxI,
                "epochs between evaluations (the last epoch always evaluates)"),
      string_field("train", "resume", REF(train.resume), {},
                   "\"auto\": continue from the newest complete checkpoint of this run folder, if "
                   "any; \"none\": start fresh (refused when the folder holds checkpoints); or a "
                   "checkpoint path"),
      int_field("train", "threads", REF(train.threads), 0, 4096,
                "CPU threads per rank (0 = the rank's fair share of the CPUs it may use: each "
                "CPU of its affinity mask counts 1 / the node's ranks that may use it)"),
      string_field("train", "on_nonfinite", REF(train.on_nonfinite), {"skip", "stop"},
                   "a NaN or infinite loss or BatchNorm statistic on any rank, or gradient after "
                   "averaging (under fp16 the loss scaler takes gradient overflows): \"skip\" the "
                   "update on every rank, or \"stop\" with a checkpoint of the last good state"),
      int_field("train", "accum_steps", REF(train.accum_steps), 1, 1 << 20,
                "gradient accumulation: each step runs batch_size / accum_steps images at a "
                "time and all-reduces once (must divide batch_size; BatchNorm sees the "
                "micro-batches)"),
      string_field("train", "precision", REF(train.precision), {"fp32", "bf16", "fp16"},
                   "forward/backward precision: \"bf16\" autocasts matrix products and "
                   "convolutions to bfloat16 (CPU and CUDA), \"fp16\" to float16 with dynamic "
                   "loss scaling (CUDA only); weights, optimizer and all-reduce stay float32"),
      float_field("train", "ema_decay", REF(train.ema_decay), 0.0, 0.999999999,
                  "exponential moving average of the weights and BatchNorm statistics, updated "
                  "after every step and used for evaluation and export (0 = off; typical 0.9999)"),
      bool_field("train", "ema_warmup", REF(train.ema_warmup),
                 "EMA decay min(ema_decay, (1 + t) / (10 + t)) at step t, as TensorFlow's "
                 "ExponentialMovingAverage(num_updates), so short runs average recent weights"),
      string_field("train", "device", REF(train.device), {"auto", "cpu", "cuda"},
                   "where the model trains: \"cuda\" = GPU local_rank mod visible GPUs (needs "
                   "a CUDA LibTorch build), \"cpu\", or \"auto\" = CUDA when every rank sees a "
                   "GPU (and, with several ranks, NCCL is built in and dist.backend is not "
                   "\"mpi\"), else the CPU"),
      bool_field("train", "channels_last", REF(train.channels_last),
                 "conv nets: weights, activations and gradients in channels-last (NHWC) memory "
                 "order, the layout GPU tensor cores and oneDNN prefer (same results up to "
                 "rounding; on this CPU 1.5x faster than NCHW for the quickstart CNN and "
                 "EfficientNet); false = NCHW"),
      bool_field("train", "tf32", REF(train.tf32),
                 "on CUDA (Ampere and later GPUs), float32 convolutions and matrix products "
                 "round their inputs to TensorFloat-32 (10-bit mantissa, float32 "
                 "accumulation) on the tensor cores: several times faster, as NVIDIA's "
                 "training recipes use; false = IEEE float32 throughout (LibTorch's own "
                 "default: TF32 for cuDNN convolutions only). No effect on the CPU or on what "
                 "train.precision autocasts to bf16/fp16"),
      string_field("train", "cpu_gemm", REF(train.cpu_gemm), {"auto", "onednn", "libtorch"},
                   "who computes the ViT's linear layers and attention products, and 1x1 "
                   "convolutions with stride 1 on channels-last tensors (EfficientNet's), on "
                   "the CPU in float32: \"onednn\" = oneDNN's sgemm, JIT-compiled for the "
                   "CPU's widest vectors (1.9x Debian's OpenBLAS on this AVX-512 CPU), "
                   "\"libtorch\" = LibTorch's own (the system BLAS), \"auto\" = oneDNN when "
                   "the process has it (Debian's LibTorch links it), else LibTorch"),
      bool_field("train", "cpu_reuse_large_blocks", REF(train.cpu_reuse_large_blocks),
                 "CPU memory blocks above 32 MB (activations of large images: EfficientNet-B0 "
                 "@224 x 32's first layers take 51 MB each) come from the process's heap and "
                 "stay there when freed, for the next step (glibc's M_MMAP_MAX = 0); false = "
                 "glibc's default, fresh pages from the kernel for each and back at each free "
                 "(page faults and page clearing: EfficientNet-B0 @224 x 32 trained 1.35x slower "
                 "on one core) at up to ~25 % less peak resident memory"),
      string_field("train", "cpu_conv", REF(train.cpu_conv), {"auto", "winograd", "libtorch"},
                   "who computes 3x3 convolutions with stride 1 and padding 1 (ResNet's, the "
                   "plain CNNs') on channels-last float32 CPU tensors: \"winograd\" = "
                   "Winograd's F(2x2, 3x3), 16 multiplications per output tile and channel pair "
                   "instead of 36, as 16 matrix products (ResNet-18 @64 trains 1.37x faster on "
                   "this AVX-512 CPU, the quickstart CNN 1.15x), \"libtorch\" = LibTorch's "
                   "direct convolution, \"auto\" = Winograd when train.cpu_gemm resolves to "
                   "oneDNN, else LibTorch; NCHW tensors, other shapes and GPUs always use "
                   "LibTorch's"),
      string_field("optim", "name", REF(optim.name), {"sgd", "adamw", "rmsprop", "lamb", "lars"},
                   "optimizer: SGD (momentum, Nesterov; L2 decay), AdamW (decoupled decay), "
                   "RMSprop in TensorFlow's form (EfficientNet), LAMB, LARS"),
      float_field("optim", "lr", REF(optim.lr), 0.0, 1e3,
                  "peak learning rate; per 256 images when lr_scaling = \"linear\""),
      string_field("optim", "lr_scaling", REF(optim.lr_scaling), {"linear", "none"},
                   "\"linear\": lr x global batch / 256; \"none\": lr as given"),
      float_field("optim", "momentum", REF(optim.momentum), 0.0, 0.999999,
                  "momentum of SGD, RMSprop and LARS"),
      bool_field("optim", "nesterov", REF(optim.nesterov), "Nesterov momentum (SGD, LARS)"),
      float_field("optim", "weight_decay", REF(optim.weight_decay), 0.0, 10.0,
                  "L2 (sgd, rmsprop, lars) or decoupled (adamw, lamb) weight decay"),
      float_field("optim", "beta1", REF(optim.beta1), 0.0, 0.999999, "AdamW/LAMB beta1"),
      float_field("optim", "beta2", REF(optim.beta2), 0.0, 0.999999999, "AdamW/LAMB beta2"),
      float_field("optim", "eps", REF(optim.eps), 1e-12, 1.0,
                  "AdamW/LAMB epsilon; RMSprop's is added inside the square root (TF: 1e-3)"),
      float_field("optim", "rho", REF(optim.rho), 0.0, 0.999999,
                  "RMSprop decay of the mean square gradient"),
      float_field("optim", "trust_coef", REF(optim.trust_coef), 1e-9, 1.0,
                  "LARS trust coefficient: per-tensor lr x eta |w| / (|g| + wd |w|)"),
      bool_field("optim", "decay_bias_and_norm", REF(optim.decay_bias_and_norm),
                 "also apply weight decay (and LAMB/LARS trust ratios) to biases, normalisation "
                 "parameters and ViT's class token and position embeddings"),
      float_field("optim", "layer_decay", REF(optim.layer_decay), 0.01, 1.0,
                  "layer-wise LR decay: block i of L gets lr x layer_decay^(L - i), the head lr, "
                  "the stem/embeddings the least (ViT blocks; EfficientNet stages and other "
                  "features.<i> entries; 1 = off)"),
      float_field("optim", "clip_grad_norm", REF(optim.clip_grad_norm), 0.0, 1e9,
                  "clip the global L2 norm of the averaged gradients to this value (0 = off)"),
      string_field("schedule", "name", REF(schedule.name),
                   {"cosine", "step", "exponential", "constant"},
                   "learning-rate schedule after warmup, evaluated every step: cosine from the "
                   "peak towards the floor, reached one step after the last (PyTorch's "
                   "CosineAnnealingLR over the steps after warmup); step = x decay_rate every "
                   "decay_epochs (staircase, "
                   "EfficientNet's 0.97 every 2.4 epochs); exponential = the same without "
                   "stairs; constant"),
      float_field("schedule", "warmup_epochs", REF(schedule.warmup_epochs), 0.0, 1e6,
                  "linear warmup over this many epochs (fractions allowed): its W steps take "
                  "start + (peak - start) x (s + 1) / W at step s, so the last one is at the peak"),
      float_field("schedule", "warmup_start", REF(schedule.warmup_start), 0.0, 1.0,
                  "warmup starts at this fraction of the peak lr"),
      float_field("schedule", "min_lr_ratio", REF(schedule.min_lr_ratio), 0.0, 1.0,
                  "floor of every schedule as a fraction of the peak lr"),
      float_field("schedule", "decay_epochs", REF(schedule.decay_epochs), 1e-6, 1e6,
                  "step/exponential: epochs per factor of decay_rate (counted from step 0)"),
      float_field("schedule", "decay_rate", REF(schedule.decay_rate), 0.0, 1.0,
                  "step/exponential: the factor applied every decay_epochs"),
      bool_field("augment", "hflip", REF(augment.hflip), "random horizontal flip (p = 0.5)"),
      string_field("augment", "device", REF(augment.device), {"auto", "cpu"},
                   "where augmentation and evaluation preprocessing run: \"auto\" = the training "
                   "device (on a GPU the loader's uint8 batches are copied there from pinned "
                   "memory without blocking, and augmented there with the same random draws), "
                   "\"cpu\" = the CPU, the float batch copied after"),
      int_field("augment", "crop_padding", REF(augment.crop_padding), 0, 1024,
                "random crop after zero padding by N pixels (0 = off; below the images' "
                "shorter side)"),
      float_field("augment", "rrc_scale_min", REF(augment.rrc_scale_min), 0.0, 1.0,
                  "random-resized-crop as torchvision's: area fraction of the stored image "
                  "uniform in [min, 1], aspect ratio (in pixels) log-uniform in [3/4, 4/3], the "
                  "first of 10 draws that fits, else the centre at the nearest ratio; resized to "
                  "the input size (0 = off)"),
      float_field("augment", "rotate_deg", REF(augment.rotate_deg), 0.0, 180.0,
                  "random rotation, uniform in [-d, d] degrees (0 = off)"),
      float_field("augment", "translate", REF(augment.translate), 0.0, 1.0,
                  "random translation up to this fraction of width and height (0 = off)"),
      float_field("augment", "shear_deg", REF(augment.shear_deg), 0.0, 60.0,
                  "random shear, uniform in [-d, d] degrees along each axis (0 = off)"),
      float_field("augment", "perspective", REF(augment.perspective), 0.0, 1.0,
                  "random perspective: each corner moves up to this fraction of the half-size "
                  "(0 = off); all warps of an image are one homography, one bilinear resample"),
      float_field("augment", "brightness", REF(augment.brightness), 0.0, 1.0,
                  "colour jitter: brightness factor uniform in [1 - x, 1 + x] (0 = off); then "
                  "contrast, saturation, hue in that order, each clipped to [0, 1]"),
      float_field("augment", "contrast", REF(augment.contrast), 0.0, 1.0,
                  "colour jitter: contrast factor uniform in [1 - x, 1 + x] (0 = off)"),
      float_field("augment", "saturation", REF(augment.saturation), 0.0, 1.0,
                  "colour jitter: saturation factor uniform in [1 - x, 1 + x] (RGB only)"),
      float_field("augment", "hue", REF(augment.hue), 0.0, 0.5,
                  "colour jitter: hue rotation uniform in [-x, x] turns (RGB only)"),
      float_field("augment", "grayscale_p", REF(augment.grayscale_p), 0.0, 1.0,
                  "probability of converting an image to grey (RGB only)"),
      float_field("augment", "erasing_p", REF(augment.erasing_p), 0.0, 1.0,
                  "random erasing: probability per image of erasing (after normalisation) a "
                  "rectangle of 2-33 % of the area, aspect 0.3-3.3, filled as augment.erasing_mode "
                  "says"),
      string_field("augment", "erasing_mode", REF(augment.erasing_mode), {"const", "pixel"},
                   "random erasing's fill (timm's modes): \"const\" = 0 after normalisation (the "
                   "mean colour), \"pixel\" = standard normal noise per pixel and channel (DeiT's "
                   "--remode pixel), the same draws on CPU and GPU"),
      float_field("augment", "mixup_alpha", REF(augment.mixup_alpha), 0.0, 100.0,
                  "mixup: blend each batch with its reverse, lambda ~ Beta(a, a), labels mixed "
                  "alike (0 = off)"),
      float_field("augment", "cutmix_alpha", REF(augment.cutmix_alpha), 0.0, 100.0,
                  "cutmix: paste a box of the reversed batch, area 1 - lambda, lambda ~ "
                  "Beta(a, a), labels by area (0 = off; with mixup on, one of the two per batch)"),
      float_field("augment", "mix_p", REF(augment.mix_p), 0.0, 1.0,
                  "probability that a batch is mixed (mixup/cutmix)"),
      int_field("augment", "randaugment_n", REF(augment.randaugment_n), 0, 10,
                "RandAugment: ops per image, after the flip (0 = off); each drawn from the "
                "policy's set: torchvision's 14 (identity, shear/translate x/y, rotate, "
                "brightness, colour, contrast, sharpness, posterize, solarize, autocontrast, "
                "equalize) or timm's 15 (no identity; invert and solarize-add)"),
      int_field("augment", "randaugment_m", REF(augment.randaugment_m), 0, 30,
                "RandAugment magnitude: with \"torchvision\", bin 0-30 of its 31 (9 = shear 0.09, "
                "rotate 9 degrees, factors 1 +- 0.27); with \"timm\", level 0-10 (9 = shear 0.27, "
                "rotate 27 degrees, factors 1 +- 0.81, translate 0.405 of the size)"),
      string_field("augment", "randaugment_policy", REF(augment.randaugment_policy),
                   {"torchvision", "timm"},
                   "RandAugment's form: \"torchvision\" (torchvision.transforms.RandAugment: "
                   "every drawn op applied, zero fill) or \"timm\" (timm's rand-mM-mstdS-inc1, "
                   "DeiT's: its increasing ops, each applied with probability 0.5, geometry "
                   "filled with the dataset's mean colour)"),
      float_field("augment", "randaugment_mstd", REF(augment.randaugment_mstd), 0.0, 10.0,
                  "\"timm\" RandAugment: standard deviation of the Gaussian noise added to the "
                  "level per image and op, clipped to 0-10 (timm's mstd; DeiT: 0.5)"),
      int_field("augment", "image_size", REF(augment.image_size), 0, 4096,
                "side of the square images the model sees, training and evaluation (0 = the "
                "stored size); training resamples in its warp (a random-resized crop stretched "
                "to the square, else the image's centre square), or resizes the shorter side "
                "(antialiased) and takes the centre square"),
      float_field("augment", "eval_crop", REF(augment.eval_crop), 0.05, 1.0,
                  "evaluation: resize the shorter side to floor(image_size / eval_crop), then "
                  "take the centre image_size square (timm's crop_pct; 0.875 for ImageNet, 1 = "
                  "whole image)"),
      bool_field("dist", "sync_bn", REF(dist.sync_bn),
                 "SyncBatchNorm: while training, every BatchNorm normalises with the mean and "
                 "variance of the global batch (all ranks' samples; two small all-reduces per "
                 "layer per step, forward and backward), so N ranks x batch B train exactly as "
                 "one rank with batch N x B; off: per-rank statistics, as PyTorch DDP's default"),
      string_field("dist", "backend", REF(dist.backend), {"auto", "mpi", "nccl", "single"},
                   "gradient all-reduce: \"nccl\" for CUDA tensors (host ones over MPI), "
                   "\"mpi\", \"single\" (one process); \"auto\" = NCCL when training on CUDA "
                   "with several ranks and NCCL is built in, MPI with several ranks, else single"),
      float_field("dist", "bucket_mb", REF(dist.bucket_mb), 0.0, 4096.0,
                  "gradient bucket size in MB; each bucket is all-reduced as soon as backward "
                  "has produced all its gradients; 0 = from the topology: 4 when all ranks "
                  "share one node, 25 when the job spans nodes (measured: small buckets overlap "
                  "most within a node, fewer larger ones win over TCP)"),
      float_field("dist", "first_bucket_mb", REF(dist.first_bucket_mb), 0.001, 4096.0,
                  "size of the first bucket (the last layers), so communication starts early"),
      string_field("dist", "compress", REF(dist.compress), {"none", "bf16", "fp16"},
                   "gradient wire format: 16-bit halves the bytes sent (gradients are divided "
                   "by the world size first, summed in float32, rounded at each step)"),
      float_field("dist", "timeout_s", REF(dist.timeout_s), 1.0, 1e6,
                  "watchdog: a collective that has not completed in this time ends the job on "
                  "every rank, naming the ranks that did not arrive"),
      float_field("dist", "first_timeout_s", REF(dist.first_timeout_s), 1.0, 1e6,
                  "the watchdog's limit until the first training step completed (setup, data "
                  "loading, warm-up), and while the ranks wait for rank 0 to hand a checkpoint "
                  "over (or, stopping, to write it)"),
      int_field("checkpoint", "every_epochs", REF(checkpoint.every_epochs), 0, kMaxI,
                "checkpoint every N epochs (0 = only at the end of training)"),
      int_field("checkpoint", "every_steps", REF(checkpoint.every_steps), 0, kMaxI,
                "also checkpoint every N steps, mid-epoch included (0 = off)"),
      float_field("checkpoint", "every_minutes", REF(checkpoint.every_minutes), 0.0, 1e9,
                  "also checkpoint when this many minutes passed since the last checkpoint "
                  "(rank 0's clock, agreed by all ranks at one step; 0 = off)"),
      int_field("checkpoint", "keep_last", REF(checkpoint.keep_last), 0, kMaxI,
                "keep the newest N checkpoints (0 = keep all)"),
      int_field("checkpoint", "keep_every", REF(checkpoint.keep_every), 0, kMaxI,
                "also keep, beyond keep_last, every checkpoint whose step is a multiple of N "
                "(0 = none)"),
      bool_field("checkpoint", "async", REF(checkpoint.async),
                 "write checkpoints in a background thread: training pauses only to copy the "
                 "state to memory (one extra copy of model and optimizer state on rank 0)"),
      string_field("checkpoint", "on_error", REF(checkpoint.on_error), {"stop", "continue"},
                   "a checkpoint that cannot be written (disk full, folder not writable): "
                   "\"stop\" training on every rank (exit 3) or \"continue\" and try again at "
                   "the next one; the previous checkpoint stays intact either way"),
      float_field("metrics", "peak_tflops", REF(metrics.peak_tflops), 0.0, 1e6,
                  "the hardware's peak TFLOP/s per rank, for model FLOPs utilisation (MFU) in "
                  "the metrics (0 = MFU not reported)"),
      string_field("metrics", "progress", REF(metrics.progress), {"auto", "bar", "lines"},
                   "rank 0's progress: \"bar\" redraws one line (epoch, step, img/s, loss, "
                   "ETA) besides the periodic lines; \"auto\" does so for a process started by "
                   "hand on a terminal, not under mpirun/srun (their ranks write to a "
                   "pseudo-terminal even into a SLURM log); \"lines\": a line every "
                   "train.log_every steps only"),
      bool_field("metrics", "report", REF(metrics.report),
                 "write report.html (curves, PR curves, confusion matrix, per-class table) into "
                 "the run folder at the end of training"),
  };
  return fields;
}
#undef REF

const Field* find_field(const std::string& name) {
  for (const auto& f : schema())
    if (f.name() == name) return &f;
  return nullptr;
}

}  // namespace odyssey
