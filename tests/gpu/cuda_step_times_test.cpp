// StepTimes on a GPU times the kernels, not their launch: around a run of large matrix products
// the host returns long before the GPU finishes, and the part's time is the GPU's (close to the
// wall time until a synchronize, far above the host's queueing time). Skips without a CUDA
// LibTorch or a GPU.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>

#include "gpu_util.h"
#include "train/device.h"
#include "train/step_times.h"

using namespace odyssey;

TEST(CudaStepTimes, TimesTheGpuWorkNotItsLaunch) {
  if (!cuda_usable()) GTEST_SKIP() << "LibTorch without CUDA, or no GPU";
  const torch::Device gpu = resolve_device("cuda", odyssey::testing::rank(), "test");
  const odyssey::testing::MatrixWork work(gpu);
  work.queue(1);  // warm-up: cuBLAS handle and workspace
  torch::cuda::synchronize();
  StepTimes t(gpu);
  ASSERT_TRUE(t.on_device());
  using odyssey::testing::Clock;
  using odyssey::testing::seconds_since;
  const auto t0 = Clock::now();
  t.begin(StepTimes::kForward);
  work.queue(40);
  t.end(StepTimes::kForward);
  const double queued = seconds_since(t0);
  torch::cuda::synchronize();
  const double wall = seconds_since(t0);
  const double gpu_s = t.take(StepTimes::kForward);
  std::printf("40 products of 4096^2: host queued them in %.4f s, GPU time %.4f s, wall %.4f s\n",
              queued, gpu_s, wall);
  EXPECT_GT(gpu_s, 0.5 * wall);
  EXPECT_LE(gpu_s, wall + 1e-3);
  EXPECT_LT(queued, 0.5 * wall);
  EXPECT_EQ(t.take(StepTimes::kForward), 0.0);
}
