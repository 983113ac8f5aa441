#include "data/epoch_plan.h"

#include <numeric>

#include "common/error.h"

namespace odyssey {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t mix_seed(std::initializer_list<uint64_t> values) {
  // Each value joins through splitmix64's whole output function (a bijection, full avalanche):
  // joined by a xor and an add alone (before 2026-12-02), small differences cancelled, e.g. the
  // step seeds of 12 epochs x 468 steps took 480 values, and run.seed 1 epoch 0 was seed 0 epoch 3.
  uint64_t state = 0x6F64797373657921ull;  // "odyssey!"
  for (uint64_t v : values) {
    state ^= v;
    state = splitmix64(state);
  }
  return state;
}

std::vector<int64_t> EpochPlan::permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  uint64_t state = mix_seed({seed, static_cast<uint64_t>(epoch)});
  // Fisher-Yates with Lemire's multiply-shift range reduction (bias < n / 2^64, negligible).
  for (int64_t i = n - 1; i > 0; --i) {
    uint64_t r = splitmix64(state);
    int64_t j = static_cast<int64_t>((static_cast<unsigned __int128>(r) * (i + 1)) >> 64);
    std::swap(order[i], order[j]);
  }
  return order;
}

namespace {
// The epoch's order of the blocks of `block` consecutive samples, from a stream of its own (seed,
// epoch, tag): the same for both block shuffles.
std::vector<int64_t> block_order(int64_t n, uint64_t seed, int64_t epoch, int64_t block) {
  return EpochPlan::permutation((n + block - 1) / block, mix_seed({seed, 0x626c6f636bULL}), epoch);
}
}  // namespace

std::vector<int64_t> EpochPlan::block_permutation(int64_t n, uint64_t seed, int64_t epoch,
                                                  int64_t block, int64_t window) {
  ODY_CHECK(block > 0 && window > 0, "block shuffle: block and window must be positive", "");
  // The block order, then each window's mix from a stream of its own.
  const auto order = block_order(n, seed, epoch, block);
  const int64_t blocks = static_cast<int64_t>(order.size());
  std::vector<int64_t> out;
  out.reserve(n);
  for (int64_t w = 0; w * window < blocks; ++w) {
    std::vector<int64_t> samples;
    for (int64_t k = w * window; k < std::min(blocks, (w + 1) * window); ++k)
      for (int64_t i = order[k] * block; i < std::min(n, (order[k] + 1) * block); ++i)
        samples.push_back(i);
    auto mix = permutation(static_cast<int64_t>(samples.size()),
                           mix_seed({seed, static_cast<uint64_t>(w), 0x77696eULL}), epoch);
    for (int64_t j : mix) out.push_back(samples[j]);
  }
  return out;
}

std::vector<int64_t> EpochPlan::rank_block_order(int64_t n, uint64_t seed, int64_t epoch, int64_t block,
                                                int64_t window, int rank, int64_t length) {
  ODY_CHECK(block > 0 && window > 0 && rank >= 0 && length >= 0 && (rank + 1) * length <= n,
            "block shuffle: bad block, window, rank or length", "");
  // block_permutation's block order, walked without mixing.
  const auto order = block_order(n, seed, epoch, block);
  const int64_t blocks = static_cast<int64_t>(order.size());
  std::vector<int64_t> mine;
  mine.reserve(length);
  const int64_t first = rank * length;
  int64_t at = 0;  // position in the unmixed block order of the first sample of block k
  for (int64_t k = 0; k < blocks && at < first + length; ++k) {
    const int64_t lo = order[k] * block, size = std::min(n, lo + block) - lo;
    for (int64_t i = std::max(first, at); i < std::min(first + length, at + size); ++i)
      mine.push_back(lo + (i - at));
    at += size;
  }
  std::vector<int64_t> out;
  out.reserve(length);
  const int64_t span = window * block;  // samples mixed together
  for (int64_t w = 0; w * span < length; ++w) {
    const int64_t begin = w * span, end = std::min(length, begin + span);
    const auto mix = permutation(end - begin,
                                 mix_seed({seed, static_cast<uint64_t>(rank), static_cast<uint64_t>(w),
                                           0x72616e6bULL}), epoch);
    for (int64_t j : mix) out.push_back(mine[begin + j]);
  }
  return out;
}

EpochPlan::EpochPlan(int64_t num_samples, int64_t batch_per_rank, int world_size, int rank,
                     uint64_t seed, int64_t epoch, const ShuffleOptions& shuffle)
    : batch_(batch_per_rank), world_(world_size), rank_(rank) {
  ODY_CHECK(batch_per_rank > 0 && world_size > 0 && rank >= 0 && rank < world_size,
            "EpochPlan: bad batch, world size or rank", "");
  steps_ = num_samples / (batch_per_rank * world_size);
  ODY_CHECK(steps_ > 0,
            ODY_MSG("the training split has " << num_samples << " samples, fewer than one global "
                                              << "batch of " << batch_per_rank * world_size),
            "lower train.batch_size or use fewer ranks");
  own_order_ = shuffle.block_mode && shuffle.per_rank;
  order_ = own_order_ ? rank_block_order(num_samples, seed, epoch, shuffle.block, shuffle.window, rank,
                                         steps_ * batch_per_rank)
           : shuffle.block_mode
               ? block_permutation(num_samples, seed, epoch, shuffle.block, shuffle.window)
               : permutation(num_samples, seed, epoch);
  if (shuffle.repeats > 1) {
    ODY_CHECK(!shuffle.block_mode, "repeated augmentation needs the global shuffle", "");
    std::vector<int64_t> repeated;
    repeated.reserve(num_samples);
    for (size_t i = 0; static_cast<int64_t>(repeated.size()) < num_samples; ++i)
      for (int64_t c = 0; c < shuffle.repeats && static_cast<int64_t>(repeated.size()) < num_samples; ++c)
        repeated.push_back(order_[i]);
    order_ = std::move(repeated);
    strided_ = true;
  }
}

std::vector<uint64_t> EpochPlan::positions() const {
  std::vector<uint64_t> out(static_cast<size_t>(batch_));
  for (int64_t i = 0; i < batch_; ++i)
    out[static_cast<size_t>(i)] = static_cast<uint64_t>(strided_ ? rank_ + i * world_ : rank_ * batch_ + i);
  return out;
}

std::vector<int64_t> EpochPlan::batch(int64_t step) const {
  ODY_CHECK(step >= 0 && step < steps_, ODY_MSG("EpochPlan: step " << step << " out of range"), "");
  if (strided_) {
    std::vector<int64_t> out(batch_);
    for (int64_t k = 0; k < batch_; ++k) out[k] = order_[step * batch_ * world_ + rank_ + k * world_];
    return out;
  }
  auto first = order_.begin() + (own_order_ ? step * batch_ : step * batch_ * world_ + rank_ * batch_);
  return std::vector<int64_t>(first, first + batch_);
}

std::pair<int64_t, int64_t> eval_range(int64_t n, int world, int rank) {
  return {n * rank / world, n * (rank + 1) / world};
}

}  // namespace odyssey
