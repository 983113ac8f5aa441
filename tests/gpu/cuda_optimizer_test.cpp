// Optimizers on the GPU: every optim.name given the same gradients moves the parameters as on the
// CPU (where SGD takes the one-pass kernel of train/sgd_kernels.h and the GPU LibTorch's
// multi-tensor operations), keeps its state on the GPU, and a step only queues work. Gradient
// clipping (optim.clip_grad_norm): the norm and the clipped gradients equal the CPU's, and the call
// does not wait for the GPU to reach the norm. Skips without a CUDA LibTorch or a GPU.
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
// A decayed weight, an undecayed bias and a second decayed weight, named as a model's.
NamedTensors parameters(torch::Device device) {
  torch::manual_seed(9);
  NamedTensors params;
  const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"features.0.weight", {64, 32, 3, 3}}, {"features.0.bias", {64}}, {"classifier.weight", {10, 64}}};
  for (const auto& [name, shape] : shapes)
    params.emplace_back(name, torch::randn(shape).to(device).requires_grad_());
  return params;
}
}  // namespace

TEST(CudaOptimizer, EveryOptimizerOnTheGpuMovesTheParametersAsOnTheCpuAndDoesNotWait) {
  if (!cuda_usable()) GTEST_SKIP() << "LibTorch without CUDA, or no GPU";
  const torch::Device gpu = resolve_device("cuda", odyssey::testing::rank(), "test");
  for (const std::string name : {"sgd", "adamw", "rmsprop", "lamb", "lars"}) {
    OptimConfig cfg;
    cfg.name = name, cfg.weight_decay = 0.05;
    // Parameters move by 5e-3 (LARS's weights) to 5 over the 10 steps; float32 against double
    // on the CPU differ by 1e-6 at most.
    cfg.lr = name == "sgd" || name == "lars" ? 0.1 : 0.01;
    const auto start = parameters(torch::kCPU);
    auto cpu = parameters(torch::kCPU), on_gpu = parameters(gpu);
    auto cpu_opt = make_optimizer(cfg, cpu), gpu_opt = make_optimizer(cfg, on_gpu);
    for (const auto& [slot, t] : gpu_opt->state())
      if (slot != "step") EXPECT_TRUE(t.is_cuda()) << name << ": state " << slot << " not on the GPU";
    torch::manual_seed(11);
    for (int step = 0; step < 10; ++step) {
      for (size_t i = 0; i < cpu.size(); ++i) {
        auto g = torch::randn(cpu[i].second.sizes());
        cpu[i].second.mutable_grad() = g;
        on_gpu[i].second.mutable_grad() = g.to(gpu);
      }
      cpu_opt->step(cfg.lr);
      gpu_opt->step(cfg.lr);
    }
    for (size_t i = 0; i < cpu.size(); ++i) {
      const auto a = on_gpu[i].second.detach().cpu(), r = cpu[i].second.detach();
      EXPECT_GT((a - start[i].second.detach()).abs().max().item<double>(), 1e-3)
          << name << ": " << cpu[i].first << " did not move";
      // Float rounding in another order (GPU kernels, LAMB's and LARS's norms) over 10 steps.
      EXPECT_TRUE(torch::allclose(a, r, 1e-5, 1e-6)) << name << ": " << cpu[i].first << " differs by "
                                                     << (a - r).abs().max().item<double>();
    }
    // A step queues its work behind the GPU's and returns: no norm, count or state read back.
    const auto t = odyssey::testing::time_behind_queued_work(gpu, [&] { gpu_opt->step(cfg.lr); });
    std::printf("%s step queued in %.4f s behind %.4f s of GPU work\n", name.c_str(), t.host_s, t.gpu_s);
    EXPECT_LT(t.host_s, 0.5 * t.gpu_s) << name << ": the step waited for the GPU";
  }
}

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
    // Float sums, in another order.
    EXPECT_NEAR(gpu_norm.item<double>(), cpu_norm.item<double>(), 1e-5 * cpu_norm.item<double>());
    for (size_t i = 0; i < grads.size(); ++i)
      EXPECT_TRUE(torch::allclose(on_gpu[i].second.grad().cpu(), cpu[i].second.grad(), 1e-5, 1e-7))
          << "max_norm " << max_norm << ", gradient " << i;
  }
  auto params = with_grads(grads, gpu);
  torch::Tensor norm;
  const auto t = odyssey::testing::time_behind_queued_work(gpu, [&] { norm = clip_grad_norm(params, 1.0); });
  std::printf("clipping queued in %.4f s behind %.4f s of GPU work\n", t.host_s, t.gpu_s);
  EXPECT_LT(t.host_s, 0.5 * t.gpu_s);
  EXPECT_GT(norm.item<double>(), 1.0);
}
