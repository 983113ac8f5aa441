// GradientReducer: averages gradients across ranks in fixed-order buckets, each all-reduced as
// soon as all of its gradients exist during backward, so communication overlaps the rest of the
// backward pass (what PyTorch DDP's reducer does).
//
// Buckets hold parameters in reverse registration order (the order backward produces their
// gradients): a small first bucket so communication starts early, then buckets of bucket_bytes.
// Each parameter's .grad is a view into its bucket's flat buffer, so backward accumulates straight
// into the buffer that is sent: no copy in, no copy out. A hook on each parameter's gradient
// accumulator marks it ready; a bucket is launched when all its parameters are ready and every
// earlier bucket was launched, so every rank issues the same collectives in the same order.
// Parameters that received no gradient are launched (as zeros) by finish().
//
// Averaging costs no pass over the gradients: the caller multiplies its loss by loss_scale()
// (1 / world size) before backward, so the sum over ranks is the mean.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"

namespace odyssey {

struct ReducerOptions {
  int64_t bucket_bytes = 4 << 20;        // size of every bucket after the first
  int64_t first_bucket_bytes = 1 << 20;  // the first bucket (the last layers' gradients)
  std::string compress = "none";         // "none", "bf16" or "fp16": the wire format
  // finish() checks the averaged gradients for NaN/inf (ReducerStats::non_finite): off where an
  // fp16 loss scaler checks them itself (an overflow there lowers its scale).
  bool check_finite = true;
  // A 16-bit wire carries the bucket divided by this, and the sum is multiplied back (in float32)
  // on arrival: the world size where an fp16 loss scaler keeps each rank's gradients at its full
  // scale (the bucket then holds scale x the rank's gradient, and the plain sum of N ranks would
  // leave fp16's range N times sooner), as PyTorch's fp16_compress_hook divides before the cast.
  double wire_divisor = 1.0;
};

// Per-step timings for the metrics: comm_s is the collectives' own run time, exposed_s what the
// training thread waited for them after backward; hidden = 1 - exposed / comm.
struct ReducerStats {
  double comm_s = 0;
  double exposed_s = 0;
  int64_t bytes = 0;  // on the wire, per rank, per step
  size_t launched_in_backward = 0;  // buckets sent by the hooks, before finish()
  // A gradient is NaN/inf after averaging (a 16-bit sum overflowed, or backward made one on some
  // rank; with check_finite): skip the step. Every rank sees the same sums, so decides alike.
  bool non_finite = false;
};

class GradientReducer {
 public:
  // params: float32 leaf tensors, the same list in the same order on every rank.
  GradientReducer(std::vector<torch::Tensor> params, Communicator& comm, ReducerOptions options);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before each backward: sync = false on the non-final micro-steps of gradient accumulation
  // (gradients accumulate locally; nothing is sent).
  void prepare(bool sync);
  // After backward: launches what is left, waits for every bucket and leaves the sum over ranks
  // (the mean, with the loss scaled by loss_scale()) in each parameter's .grad; then, with
  // check_finite, one pass over the buckets and one device-to-host read for non_finite.
  void finish();
  double loss_scale() const { return 1.0 / comm_.size(); }
  // Zeroes every gradient (the bucket buffers) in place.
  void zero_grad();

  const ReducerStats& last_stats() const { return stats_; }
  size_t bucket_count() const { return buckets_.size(); }
  // Parameter indices per bucket, in launch order (for tests and logs).
  std::vector<std::vector<size_t>> layout() const;

 private:
  struct Bucket {
    std::vector<size_t> params;
    torch::Tensor flat;  // float32; the parameters' .grad are views into it
    torch::Tensor wire;  // 16-bit copy when compressing
    int64_t pending = 0;
    bool launched = false;
    WorkHandle work;
  };
  void mark_ready(size_t param);
  void launch_ready();
  void launch(Bucket& b);
  void wait_for_all();  // finish()'s collectives: the buckets left, then every bucket's wait

  std::vector<torch::Tensor> params_;
  Communicator& comm_;
  ReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // parameter index -> bucket index
  // std::shared_ptr<Node> in LibTorch 1.13 and 2.x, c10::intrusive_ptr<Node> in newer releases.
  using AccumulatorPtr = decltype(torch::autograd::impl::grad_accumulator(std::declval<at::Tensor>()));
  std::vector<AccumulatorPtr> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  size_t next_launch_ = 0;
  bool sync_ = false;
  ReducerStats stats_;
};

}  // namespace odyssey
