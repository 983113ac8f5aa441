#include "data/draws.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "data/epoch_plan.h"

namespace odyssey {

namespace {

double unit(uint64_t v) { return static_cast<double>(v >> 11) * 0x1.0p-53; }  // [0, 1)

}  // namespace

Draws::Draws(uint64_t seed, std::vector<uint64_t> keys, uint64_t batch_seed)
    : state_(std::move(keys)), batch_(at::make_generator<at::CPUGeneratorImpl>(batch_seed)) {
  for (auto& s : state_) s = mix_seed({seed, s, 0x64726177ULL});
}

Draws Draws::for_batch(uint64_t seed, int64_t n) {
  std::vector<uint64_t> keys(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) keys[static_cast<size_t>(i)] = static_cast<uint64_t>(i);
  return Draws(seed, std::move(keys), mix_seed({seed, 0x6261746368ULL}));
}

uint64_t Draws::at(size_t image, uint64_t column) const {
  uint64_t state = state_[image] + column * 0x9E3779B97F4A7C15ULL;  // the stream's column-th step
  return splitmix64(state);
}

torch::Tensor Draws::columns(int64_t k) {
  auto out = torch::empty({size(), k}, torch::kDouble);
  double* p = out.data_ptr<double>();
  for (int64_t j = 0; j < k; ++j, ++column_)
    for (size_t i = 0; i < state_.size(); ++i) p[i * k + j] = unit(at(i, column_));
  return out;
}

torch::Tensor Draws::uniform(double lo, double hi) {  // filled in one loop: no tensor arithmetic
  auto out = torch::empty({size()}, torch::kDouble);
  double* p = out.data_ptr<double>();
  for (size_t i = 0; i < state_.size(); ++i) p[i] = lo + (hi - lo) * unit(at(i, column_));
  ++column_;
  return out;
}

torch::Tensor Draws::randint(int64_t n) {
  auto out = torch::empty({size()}, torch::kLong);
  int64_t* p = out.data_ptr<int64_t>();
  for (size_t i = 0; i < state_.size(); ++i)
    p[i] = std::min<int64_t>(n - 1, static_cast<int64_t>(unit(at(i, column_)) * static_cast<double>(n)));
  ++column_;
  return out;
}

torch::Tensor Draws::normal() {  // Box-Muller of this column and the next
  constexpr double kTwoPi = 6.283185307179586476925;
  auto out = torch::empty({size()}, torch::kDouble);
  double* p = out.data_ptr<double>();
  for (size_t i = 0; i < state_.size(); ++i)
    p[i] = std::sqrt(-2.0 * std::log1p(-unit(at(i, column_)))) * std::cos(kTwoPi * unit(at(i, column_ + 1)));
  column_ += 2;
  return out;
}

std::vector<uint64_t> Draws::seeds() {
  std::vector<uint64_t> out(state_.size());
  for (size_t i = 0; i < state_.size(); ++i) out[i] = at(i, column_);
  ++column_;
  return out;
}

}  // namespace odyssey
