// EpochPlan: which samples each rank takes at each step of an epoch, as a pure function of
// (dataset size, seed, epoch, world size, rank, batch size).
//
// The epoch's order is one permutation of all samples, seeded by (seed, epoch). Step s covers
// the global batch order[s*G, (s+1)*G) with G = batch * world; rank r takes the r-th slice of
// batch samples. So N ranks with batch B see exactly the samples one rank with batch N*B sees,
// every sample at most once per epoch, and every rank takes the same number of steps. The tail
// (size mod G samples) is dropped from that epoch; the next epoch's permutation differs, so no
// sample is dropped systematically. The per-rank block shuffle (ShuffleOptions::per_rank) keeps
// all of this but the equivalence: which samples share a global batch depends on the world size.
#pragma once

#include <cstdint>
#include <vector>

namespace odyssey {

// How an epoch's order is drawn (data.shuffle): a global permutation, or a block shuffle
// (blocks of `block` consecutive samples in permuted order, samples shuffled within each window
// of `window` consecutive blocks of that order), which keeps reads contiguous when streaming.
// per_rank (data.shuffle = "block_per_rank"): each rank takes its own contiguous 1/world of the
// epoch's block order (blocks unmixed) and mixes it within windows of its own, so that a rank reads
// only its share of the blocks; the order then depends on the world size.
struct ShuffleOptions {
  bool block_mode = false;
  int64_t block = 256;
  int64_t window = 16;
  bool per_rank = false;  // with block_mode
  // Repeated augmentation (global order only): the first ceil(n / repeats) samples of the
  // permutation, each `repeats` times in a row, cut to n; ranks take each global batch strided
  // (rank r its positions r, r + world, ...), so a sample's copies go to different ranks as in
  // timm's RASampler (each rank's BatchNorm sees distinct images); the global batch is unchanged.
  int64_t repeats = 1;
};

class EpochPlan {
 public:
  EpochPlan(int64_t num_samples, int64_t batch_per_rank, int world_size, int rank, uint64_t seed,
            int64_t epoch, const ShuffleOptions& shuffle = {});

  int64_t steps() const { return steps_; }
  int64_t global_batch() const { return batch_ * world_; }
  // This rank's sample indices at step (0 <= step < steps()).
  std::vector<int64_t> batch(int64_t step) const;
  // Where this rank's samples sit in every step's global batch (rank r: r x batch + i, or
  // r + i x world when strided): the same sample at the same place whatever the rank count, the
  // key of its augmentation draws (data/draws.h).
  std::vector<uint64_t> positions() const;

  // The permutation itself; portable (no std:: distributions), the same on every platform.
  static std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch);
  // The block shuffle's order: also a permutation of [0, n), a pure function of its arguments.
  static std::vector<int64_t> block_permutation(int64_t n, uint64_t seed, int64_t epoch,
                                                int64_t block, int64_t window);
  // The per-rank block shuffle's samples for `rank`, in its order: `length` samples from position
  // rank x length of the blocks' permuted (unmixed) order, mixed within windows of `window` blocks
  // by a stream of the rank's own.
  static std::vector<int64_t> rank_block_order(int64_t n, uint64_t seed, int64_t epoch, int64_t block,
                                               int64_t window, int rank, int64_t length);

 private:
  std::vector<int64_t> order_;  // the global order, or (per_rank) this rank's alone
  bool own_order_ = false;
  bool strided_ = false;  // repeated augmentation: rank slices of a global batch taken strided
  int64_t batch_;
  int world_, rank_;
  int64_t steps_;
};

// Evaluation split: rank r takes the contiguous range [r*n/world, (r+1)*n/world), so every
// sample is evaluated exactly once across ranks. Returns {begin, end}.
std::pair<int64_t, int64_t> eval_range(int64_t num_samples, int world_size, int rank);

// splitmix64: advances state by the golden-ratio increment and returns its mixed output.
uint64_t splitmix64(uint64_t& state);

// A 64-bit mix of several values, each through splitmix64's output function in turn: seeds for
// per-step random streams (distinct tuples give distinct seeds but for 2^-64 chances).
uint64_t mix_seed(std::initializer_list<uint64_t> values);

}  // namespace odyssey
