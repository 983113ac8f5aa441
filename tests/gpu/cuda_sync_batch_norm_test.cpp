// SyncBatchNorm on CUDA tensors through NCCL (float64 statistics): each rank normalises its slice
// of a global batch with the global batch's statistics, so outputs, input gradients and running
// statistics equal LibTorch's batch norm over the whole batch on one GPU. Runs at any rank count,
// one included (the all-reduces still go through NCCL). Skips without NCCL or a GPU per rank.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../dist/dist_util.h"
#include "dist/communicator.h"
#include "dist/nccl_communicator.h"
#include "dist/sync_batch_norm.h"
#include "gpu_util.h"
#include "train/device.h"

using namespace odyssey;
using odyssey::testing::rel_err;

TEST(CudaSyncBatchNorm, SlicesNormaliseAsTheWholeBatch) {
  if (auto why = odyssey::testing::nccl_skip(); !why.empty()) GTEST_SKIP() << why;
  auto comm = make_communicator("nccl", true);
  const torch::Device gpu = resolve_device("cuda", comm->rank(), "test");
  const auto f32 = torch::TensorOptions(torch::kFloat).device(gpu);
  const int64_t b = 6, c = 5, n = b * comm->size();
  torch::manual_seed(11);  // the same global batch on every rank
  auto x = (torch::randn({n, c, 7, 9}) * 3 + 1).to(gpu);
  auto dy = torch::randn({n, c, 7, 9}).to(gpu);
  auto weight = torch::rand({c}).add(0.5).to(gpu), bias = torch::randn({c}).to(gpu);
  const double momentum = 0.1, eps = 1e-5;

  // Reference: the whole batch on this GPU.
  auto xr = x.clone().requires_grad_(true);
  auto rm_ref = torch::zeros({c}, f32), rv_ref = torch::ones({c}, f32);
  auto y_ref = torch::batch_norm(xr, weight, bias, rm_ref, rv_ref, true, momentum, eps, false);
  y_ref.backward(dy);

  auto xs = x.narrow(0, comm->rank() * b, b).clone().requires_grad_(true);
  auto rm = torch::zeros({c}, f32), rv = torch::ones({c}, f32);
  auto y = sync_batch_norm(xs, weight, bias, rm, rv, momentum, eps, *comm);
  y.backward(dy.narrow(0, comm->rank() * b, b));
  ASSERT_TRUE(y.is_cuda());
  EXPECT_LE(rel_err(y, y_ref.narrow(0, comm->rank() * b, b)), 1e-5);
  EXPECT_LE(rel_err(xs.grad(), xr.grad().narrow(0, comm->rank() * b, b)), 1e-4);
  EXPECT_LE(rel_err(rm, rm_ref), 1e-5);
  EXPECT_LE(rel_err(rv, rv_ref), 1e-5);
}
