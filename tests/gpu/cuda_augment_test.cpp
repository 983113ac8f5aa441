// Augmentation on the GPU (augment.device = "auto" on CUDA): every op of the training transform,
// run on a CUDA batch, gives the batch the CPU gives from the same seed (the random draws come
// from the same CPU generator; the images differ only by the devices' float rounding, which can
// move a RandAugment level by one step), the mixed targets equal; evaluation preprocessing
// likewise; pinned batches copy without blocking; and the transform never makes the host wait
// for work already queued on the GPU. Skips without a CUDA LibTorch or a GPU.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "data/augment.h"
#include "data/augment_ops.h"
#include "gpu_util.h"
#include "train/device.h"

using namespace odyssey;

namespace {

AugmentConfig every_op() {
  AugmentConfig c;
  c.hflip = true;
  c.crop_padding = 4;
  c.rrc_scale_min = 0.35;
  c.rotate_deg = 15, c.translate = 0.1, c.shear_deg = 10, c.perspective = 0.2;
  c.brightness = 0.4, c.contrast = 0.4, c.saturation = 0.4, c.hue = 0.1, c.grayscale_p = 0.2;
  c.erasing_p = 0.5;
  c.mixup_alpha = 0.8, c.cutmix_alpha = 1.0;
  c.randaugment_n = 2, c.randaugment_m = 9;
  c.image_size = 40;
  return c;
}

void expect_same_images(const torch::Tensor& gpu, const torch::Tensor& cpu) {
  ASSERT_TRUE(gpu.is_cuda());
  const auto diff = (gpu.to(torch::kCPU) - cpu).abs();
  EXPECT_LT(diff.mean().item<double>(), 5e-3);
  EXPECT_LT((diff > 0.05).to(torch::kFloat).mean().item<double>(), 0.01);
}

}  // namespace

TEST(CudaAugment, EveryOpMatchesTheCpu) {
  if (!cuda_usable()) GTEST_SKIP() << "LibTorch without CUDA, or no GPU";
  const torch::Device gpu = resolve_device("cuda", odyssey::testing::rank(), "test");
  torch::manual_seed(7);
  const auto images = torch::randint(0, 256, {16, 32, 32, 3}, torch::kLong).to(torch::kUInt8);
  const auto labels = torch::randint(0, 10, {16}, torch::kLong);
  const Normalize norm{{0.5, 0.45, 0.4}, {0.25, 0.25, 0.25}};
  for (uint64_t seed = 1; seed <= 8; ++seed) {  // (one of mixup/cutmix per batch)
    SCOPED_TRACE(seed);
    const auto cpu = augment_train_batch(images, labels, 10, every_op(), norm, seed);
    const auto on_gpu = augment_train_batch(images.pin_memory().to(gpu, /*non_blocking=*/true),
                                            labels, 10, every_op(), norm, seed);
    expect_same_images(on_gpu.images, cpu.images);
    ASSERT_TRUE(on_gpu.targets.defined());
    EXPECT_TRUE(torch::allclose(on_gpu.targets.to(torch::kCPU), cpu.targets, 1e-6, 1e-6));
  }
  auto eval = every_op();
  eval.eval_crop = 0.875;
  expect_same_images(prepare_eval(images.to(gpu), norm, eval), prepare_eval(images, norm, eval));
}

// Shrinking warps (a random-resized crop of 96 px images to 24 px: scales up to 4, so mip levels
// 0-2 side by side in one batch) on the GPU as on the CPU.
TEST(CudaAugment, ShrinkingWarpsMatchTheCpu) {
  if (!cuda_usable()) GTEST_SKIP() << "LibTorch without CUDA, or no GPU";
  const torch::Device gpu = resolve_device("cuda", odyssey::testing::rank(), "test");
  torch::manual_seed(8);
  const auto images = torch::randint(0, 256, {32, 96, 96, 3}, torch::kLong).to(torch::kUInt8);
  const Normalize norm{{0.5, 0.45, 0.4}, {0.25, 0.25, 0.25}};
  AugmentConfig cfg;
  cfg.image_size = 24, cfg.rrc_scale_min = 0.08, cfg.rotate_deg = 10;
  const auto cpu = augment_train(images, cfg, norm, 3);
  const auto on_gpu = augment_train(images.to(gpu), cfg, norm, 3);
  expect_same_images(on_gpu, cpu);
}

// The pad-crop on a GPU batch is one gather (on the CPU, row copies): exact, the same pixels.
TEST(CudaAugment, PadCropEqualsTheCpuExactly) {
  if (!cuda_usable()) GTEST_SKIP() << "LibTorch without CUDA, or no GPU";
  const torch::Device gpu = resolve_device("cuda", odyssey::testing::rank(), "test");
  torch::manual_seed(9);
  const int64_t b = 32, pad = 4;
  const auto x = torch::rand({b, 3, 20, 24});
  const auto dy = torch::randint(0, 2 * pad + 1, {b}, torch::kLong);
  const auto dx = torch::randint(0, 2 * pad + 1, {b}, torch::kLong);
  const auto on_gpu = crop_padded(x.to(gpu), pad, dy, dx);
  ASSERT_TRUE(on_gpu.is_cuda());
  EXPECT_TRUE(torch::equal(on_gpu.cpu(), crop_padded(x, pad, dy, dx)));
}

// Random erasing on a GPU batch is one mask over the batch (on the CPU, a zeroed box per image):
// exact, the same pixels, whichever images were erased.
TEST(CudaAugment, ErasingEqualsTheCpuExactly) {
  if (!cuda_usable()) GTEST_SKIP() << "LibTorch without CUDA, or no GPU";
  const torch::Device gpu = resolve_device("cuda", odyssey::testing::rank(), "test");
  torch::manual_seed(11);
  const auto x = torch::rand({64, 3, 20, 24}) + 0.5;
  auto g_cpu = Draws::for_batch(5, 64);
  auto g_gpu = Draws::for_batch(5, 64);
  const auto cpu = random_erasing(x, 0.5, g_cpu);
  const auto on_gpu = random_erasing(x.to(gpu), 0.5, g_gpu);
  ASSERT_TRUE(on_gpu.is_cuda());
  EXPECT_TRUE(torch::equal(on_gpu.cpu(), cpu));
  EXPECT_GT((cpu == 0).sum().item<int64_t>(), 0);
}

// Every per-image parameter drawn on the CPU reaches the GPU through pinned memory without
// blocking (a plain copy from pageable memory synchronises the stream): with ~0.1 s of matrix
// products queued, the whole transform, every op on, returns long before they finish.
TEST(CudaAugment, NeverWaitsForQueuedGpuWork) {
  if (!cuda_usable()) GTEST_SKIP() << "LibTorch without CUDA, or no GPU";
  using odyssey::testing::Clock;
  const auto since = odyssey::testing::seconds_since;
  const torch::Device gpu = resolve_device("cuda", odyssey::testing::rank(), "test");
  torch::manual_seed(7);
  const auto images = torch::randint(0, 256, {16, 32, 32, 3}, torch::kLong).to(torch::kUInt8).to(gpu);
  const auto labels = torch::randint(0, 10, {16}, torch::kLong);
  const Normalize norm{{0.5, 0.45, 0.4}, {0.25, 0.25, 0.25}};
  const odyssey::testing::MatrixWork work(gpu);
  auto busy = [&] { work.queue(40); };
  // Warm-up: kernels loaded, pinned blocks of every size cached, cuBLAS ready.
  augment_train_batch(images, labels, 10, every_op(), norm, 3);
  busy();
  torch::cuda::synchronize();
  auto t0 = Clock::now();
  busy();
  torch::cuda::synchronize();
  const double gpu_s = since(t0);
  busy();
  t0 = Clock::now();
  const auto out = augment_train_batch(images, labels, 10, every_op(), norm, 3);
  const double host_s = since(t0);
  torch::cuda::synchronize();
  std::printf("augmentation queued in %.4f s behind %.4f s of GPU work\n", host_s, gpu_s);
  ASSERT_TRUE(out.images.is_cuda());
  EXPECT_LT(host_s, 0.5 * gpu_s);
}
