// Gradient clipping on the GPU (optim.clip_grad_norm): the norm and the clipped gradients equal
// the CPU's, and the call only queues work - it does not wait for the GPU to reach the norm.
// Skips without a CUDA LibTorch or a GPU.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "gpu_util.h"
#include "train/device.h"
#include "train/optimizer.h"

using namespace odyssey;

namespace {
NamedTensors with_grads(const std::vector<torch::Tensor>& grads, torch::Device device) {
  NamedTensors params;
  for (size_t i = 0; i < grads.size(); ++i) {
    auto p = torch::zeros_like(grads[i], torch::TensorOptions().device(device)).requires_grad_();
    p.mutable_grad() = grads[i].to(device);
    params.emplace_back("p" + std::to_string(i), p);
  }
  return params;
}
}  // namespace

TEST(CudaOptimizer, ClipGradNormOnTheGpuEqualsTheCpuAndDoesNotWait) {
  if (!cuda_usable()) GTEST_SKIP() << "LibTorch without CUDA, or no GPU";
  const torch::Device gpu = resolve_device("cuda", odyssey::testing::rank(), "test");
  torch::manual_seed(5);
  const std::vector<torch::Tensor> grads = {torch::randn({256, 128}), torch::randn({128}),
                                            torch::randn({10, 256})};
  for (const double max_norm : {1.0, 1e6}) {  // clipping, and under the limit
    auto cpu = with_grads(grads, torch::kCPU), on_gpu = with_grads(grads, gpu);
    const auto cpu_norm = clip_grad_norm(cpu, max_norm);
    const auto gpu_norm = clip_grad_norm(on_gpu, max_norm);
    ASSERT_TRUE(gpu_norm.is_cuda());
    EXPECT_NEAR(gpu_norm.item<double>(), cpu_norm.item<double>(), 1e-5 * cpu_norm.item<double>());  // float sums, in another order
    for (size_t i = 0; i < grads.size(); ++i)
      EXPECT_TRUE(torch::allclose(on_gpu[i].second.grad().cpu(), cpu[i].second.grad(), 1e-5, 1e-7))
          << "max_norm " << max_norm << ", gradient " << i;
  }
  using odyssey::testing::Clock;
  using odyssey::testing::seconds_since;
  const odyssey::testing::MatrixWork work(gpu);
  auto params = with_grads(grads, gpu);
  work.queue(1);
  torch::cuda::synchronize();
  auto t0 = Clock::now();
  work.queue(40);
  torch::cuda::synchronize();
  const double gpu_s = seconds_since(t0);
  work.queue(40);
  t0 = Clock::now();
  const auto norm = clip_grad_norm(params, 1.0);
  const double host_s = seconds_since(t0);
  torch::cuda::synchronize();
  std::printf("clipping queued in %.4f s behind %.4f s of GPU work\n", host_s, gpu_s);
  EXPECT_LT(host_s, 0.5 * gpu_s);
  EXPECT_GT(norm.item<double>(), 1.0);
}
