// Draws: the random numbers of a batch's augmentation, per image, keyed by the image's position
// in the step's global batch, not by the rank that holds it: N ranks with batch B draw for every
// image what one rank with batch N*B draws for it (crops, flips, warps, RandAugment, colour
// jitter, erasing), so N ranks train as one rank also with augmentation, and a run resumed on
// another rank count augments alike. Each image has its own counter-based stream (splitmix64 of
// its key and a column counter): every draw takes the next column(s) for all images of the batch
// at once, so images never share or shift each other's numbers. Mixup and cutmix pair images
// within a rank's batch (timm's), so their once-per-batch draws come from the rank's own stream.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace odyssey {

class Draws {
 public:
  // seed: the step's stream (run seed, epoch, step); keys: each image's place in the global
  // batch; batch_seed: the rank's own stream for once-per-batch draws.
  Draws(uint64_t seed, std::vector<uint64_t> keys, uint64_t batch_seed);
  // n images keyed 0..n-1, the batch stream from the same seed (tests, tools, one rank).
  static Draws for_batch(uint64_t seed, int64_t n);

  int64_t size() const { return static_cast<int64_t>(state_.size()); }
  // k uniform numbers in [0, 1) per image: [size, k] float64 (k columns of every stream).
  torch::Tensor columns(int64_t k);
  // One per image: [size] float64 uniform in [lo, hi).
  torch::Tensor uniform(double lo = 0.0, double hi = 1.0);
  // One per image: [size] int64 uniform in [0, n).
  torch::Tensor randint(int64_t n);
  // One per image: [size] float64 standard normal (Box-Muller of two columns).
  torch::Tensor normal();
  // One 64-bit seed per image, for draws whose count varies per image (erasing's noise).
  std::vector<uint64_t> seeds();
  // The rank's once-per-batch stream (mixup and cutmix).
  at::Generator& batch() { return batch_; }

 private:
  uint64_t at(size_t image, uint64_t column) const;  // the image's stream at this column
  std::vector<uint64_t> state_;
  uint64_t column_ = 0;
  at::Generator batch_;
};

}  // namespace odyssey
