// Classification counts on the GPU (the trainer keeps its training window and evaluation counts
// on the model's device, so counting queues kernels instead of waiting for each step): the same
// counts and metrics as on the CPU from the same logits, with labels given on the host (pinned,
// as the loader's) or on the device. Skips without a CUDA LibTorch or a GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "metrics/classification.h"
#include "gpu_util.h"
#include "train/device.h"

using namespace odyssey;

TEST(CudaMetrics, CountsOnTheGpuEqualTheCpu) {
  if (!cuda_usable()) GTEST_SKIP() << "LibTorch without CUDA, or no GPU";
  const torch::Device gpu = resolve_device("cuda", odyssey::testing::rank(), "test");
  torch::manual_seed(3);
  const int64_t k = 10;
  ClassificationCounts cpu(k, /*detailed=*/true), on_gpu(k, /*detailed=*/true, gpu);
  for (int batch = 0; batch < 4; ++batch) {
    const auto logits = torch::randn({64, k}) * 3;
    const auto labels = torch::randint(0, k, {64}, torch::kLong);
    cpu.add(logits, labels);
    const auto gpu_labels = batch % 2 ? labels.to(gpu) : labels.pin_memory();
    on_gpu.add(logits.to(gpu), gpu_labels);
  }
  ASSERT_TRUE(on_gpu.confusion().is_cuda());
  EXPECT_EQ(on_gpu.count(), 256);
  EXPECT_TRUE(torch::equal(on_gpu.confusion().cpu(), cpu.confusion()));
  EXPECT_TRUE(torch::equal(on_gpu.score_histogram().cpu(), cpu.score_histogram()));
  EXPECT_NEAR(on_gpu.loss(), cpu.loss(), 1e-6);
  EXPECT_DOUBLE_EQ(on_gpu.top1(), cpu.top1());
  EXPECT_DOUBLE_EQ(on_gpu.top5(), cpu.top5());
  EXPECT_DOUBLE_EQ(on_gpu.mean_ap(), cpu.mean_ap());
  EXPECT_DOUBLE_EQ(on_gpu.macro_f1(), cpu.macro_f1());
  EXPECT_NEAR(on_gpu.ece(), cpu.ece(), 1e-9);
}
