// StepTimes: how long the parts of the training steps (forward, backward, optimizer) took, summed
// over a logging window. On the CPU the host clock measures them. On a GPU the host only queues
// the kernels, so its clock would give launch times (and leave the computation to whatever waits
// next); there a part is timed by two CUDA events recorded on the legacy default stream (where
// LibTorch computes) and read once both have completed: the GPU time from the first of the part's
// kernels starting to the last finishing.
#pragma once

#include <torch/types.h>

#include <array>
#include <chrono>
#include <memory>
#include <vector>

namespace odyssey {

class StepTimes {
 public:
  enum Part { kForward = 0, kBackward, kOptimizer, kParts };

  // Device timing needs a CUDA build (ODYSSEY_WITH_NCCL); without one a GPU falls back to the
  // host clock.
  explicit StepTimes(torch::Device device);
  ~StepTimes();
  StepTimes(const StepTimes&) = delete;
  StepTimes& operator=(const StepTimes&) = delete;

  void begin(Part p);
  void end(Part p);  // pairs with the last begin(p)
  // Adds the spans recorded so far to the totals (on a GPU: waits until their events completed;
  // call where the step has synchronised anyway, so that it costs nothing).
  void collect();
  // The total of part p since the last take (collects first), then restarts it.
  double take(Part p);
  bool on_device() const { return device_timing_; }

 private:
  struct Span;
  bool device_timing_ = false;
  std::array<double, kParts> total_{};
  std::array<std::chrono::steady_clock::time_point, kParts> host_start_{};
  std::vector<std::unique_ptr<Span>> pending_, free_;
  std::array<Span*, kParts> open_{};
};

}  // namespace odyssey
