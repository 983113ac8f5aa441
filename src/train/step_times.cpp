#include "train/step_times.h"

#include "common/error.h"

#ifdef ODYSSEY_WITH_NCCL
#include <cuda_runtime.h>
#endif

namespace odyssey {

#ifdef ODYSSEY_WITH_NCCL
struct StepTimes::Span {
  StepTimes::Part part = kForward;
  cudaEvent_t start = nullptr, stop = nullptr;
  Span() {
    if (cudaEventCreate(&start) != cudaSuccess || cudaEventCreate(&stop) != cudaSuccess)
      ODY_FAIL("cudaEventCreate failed for the step timer", "");
  }
  ~Span() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};
#else
struct StepTimes::Span {
  StepTimes::Part part = kForward;
};
#endif

StepTimes::StepTimes(torch::Device device) {
#ifdef ODYSSEY_WITH_NCCL
  // The events belong to the rank's GPU (the one its model and the NCCL communicator use).
  if (device.is_cuda() && cudaSetDevice(device.index()) == cudaSuccess) device_timing_ = true;
#endif
}

StepTimes::~StepTimes() = default;

void StepTimes::begin(Part p) {
  if (!device_timing_) {
    host_start_[p] = std::chrono::steady_clock::now();
    return;
  }
  std::unique_ptr<Span> s;
  if (free_.empty()) {
    s = std::make_unique<Span>();
  } else {
    s = std::move(free_.back());
    free_.pop_back();
  }
  s->part = p;
#ifdef ODYSSEY_WITH_NCCL
  cudaEventRecord(s->start, cudaStreamLegacy);
#endif
  open_[p] = s.get();
  pending_.push_back(std::move(s));
}

void StepTimes::end(Part p) {
  if (!device_timing_) {
    const auto now = std::chrono::steady_clock::now();
    total_[p] += std::chrono::duration<double>(now - host_start_[p]).count();
    return;
  }
  if (!open_[p]) return;
#ifdef ODYSSEY_WITH_NCCL
  cudaEventRecord(open_[p]->stop, cudaStreamLegacy);
#endif
  open_[p] = nullptr;
}

void StepTimes::collect() {
  if (!device_timing_) return;
  size_t kept = 0;
  for (auto& s : pending_) {
    const bool open = open_[s->part] == s.get();
    if (open) {  // begun, not ended: stays pending
      pending_[kept++] = std::move(s);
      continue;
    }
#ifdef ODYSSEY_WITH_NCCL
    float ms = 0;
    if (cudaEventSynchronize(s->stop) == cudaSuccess &&
        cudaEventElapsedTime(&ms, s->start, s->stop) == cudaSuccess)
      total_[s->part] += ms / 1e3;
    else
      cudaGetLastError();  // a span left unended: not counted, and not left for LibTorch's checks
#endif
    free_.push_back(std::move(s));
  }
  pending_.resize(kept);
}

double StepTimes::take(Part p) {
  collect();
  const double t = total_[p];
  total_[p] = 0;
  return t;
}

}  // namespace odyssey
