// Training on the GPU: a model, its optimizer and the gradient reducer on CUDA, gradients summed
// by NCCL, give the parameters the same model trained on the CPU has after 10 SGD-momentum steps
// (relative error <= 1e-4: cuDNN's and the CPU's convolutions round differently; IEEE float32
// on the GPU, as TensorFloat-32's 10-bit mantissa alone would exceed that). Skips without a CUDA
// LibTorch, NCCL, or a GPU per rank.
#include <ATen/Context.h>
#include <cstdio>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../dist/dist_util.h"
#include "gpu_util.h"
#include "dist/gradient_reducer.h"
#include "dist/nccl_communicator.h"
#include "models/registry.h"
#include "train/device.h"
#include "train/optimizer.h"

using namespace odyssey;
using odyssey::testing::named_params;
using odyssey::testing::rel_err;

TEST(CudaTraining, TenStepsOnTheGpuMatchTheCpu) {
  if (auto why = odyssey::testing::nccl_skip(); !why.empty()) GTEST_SKIP() << why;
  auto comm = make_communicator("nccl", true);
  const torch::Device gpu = resolve_device("cuda", comm->rank(), "test");
  set_tf32(false);  // LibTorch's default runs cuDNN convolutions in TF32
  at::globalContext().setDeterministicCuDNN(true);  // no FFT/Winograd algorithms picked by timing
  OptimConfig cfg;
  cfg.lr = 0.05, cfg.nesterov = false;
  torch::manual_seed(3);
  auto cpu_model = ModelRegistry::instance().create("tiny_cnn", {10, 3, 28});
  torch::manual_seed(3);
  auto gpu_model = ModelRegistry::instance().create("tiny_cnn", {10, 3, 28});
  gpu_model->to(gpu);
  to_channels_last(*gpu_model);
  auto cpu_opt = make_optimizer(cfg, named_params(*cpu_model));
  auto gpu_opt = make_optimizer(cfg, named_params(*gpu_model));
  GradientReducer reducer(gpu_model->parameters(), *comm, {});
  const int64_t b = 8, n = b * comm->size();
  for (int64_t s = 0; s < 10; ++s) {
    torch::manual_seed(100 + s);  // the same global batch on every rank
    auto x = torch::randn({n, 3, 28, 28});
    auto y = torch::randint(0, 10, {n}, torch::kLong);
    cpu_opt->zero_grad();
    torch::nn::functional::cross_entropy(cpu_model->forward(x), y).backward();
    cpu_opt->step(cfg.lr);
    reducer.zero_grad();
    reducer.prepare(true);
    auto xs = memory_order(x.narrow(0, comm->rank() * b, b).to(gpu), true);
    auto ys = y.narrow(0, comm->rank() * b, b).to(gpu);
    (torch::nn::functional::cross_entropy(gpu_model->forward(xs), ys) * reducer.loss_scale()).backward();
    reducer.finish();
    gpu_opt->step(cfg.lr);
  }
  auto a = gpu_model->parameters(), r = cpu_model->parameters();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(a[i].is_cuda());
    const double err = rel_err(a[i].to(torch::kCPU), r[i]);
    worst = std::max(worst, err);
    EXPECT_LE(err, 1e-4) << "parameter " << i;
  }
  std::printf("CUDA vs CPU after 10 steps: worst relative parameter error %.3g (bound 1e-4)\n", worst);
}
