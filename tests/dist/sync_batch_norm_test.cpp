// SyncBatchNorm (dist.sync_bn): N ranks with batch B and synchronised BatchNorm end with the same
// parameters and running statistics after 10 SGD-momentum steps as one process with batch N*B
// (relative error <= 1e-5); without it, at 2+ ranks, they do not (the test can fail). The network
// is smooth (conv-BatchNorm-SiLU, average pooling): with ReLU and max-pooling (fmnist_cnn, as until
// 2026-11-30) a pooling or ReLU decision flipped by a 1e-7 rounding difference made the two differ
// by 1e-4..2e-2 for some seeds and thread counts, on LibTorch 1.13 and 2.6 alike, whatever
// SyncBatchNorm did.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "dist/communicator.h"
#include "dist_util.h"
#include "dist/gradient_reducer.h"
#include "dist/sync_batch_norm.h"
#include "models/batch_norm.h"
#include "train/optimizer.h"

using namespace odyssey;
using odyssey::testing::named_params;
using odyssey::testing::rel_err;

namespace {

struct SmoothNetImpl : torch::nn::Module {
  SmoothNetImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 3).padding(1)))),
        bn1(register_module("bn1", BatchNorm2d(8))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 3).padding(1)))),
        bn2(register_module("bn2", BatchNorm2d(16))),
        fc(register_module("fc", torch::nn::Linear(16, 10))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = torch::avg_pool2d(torch::silu(bn1->forward(conv1->forward(x))), 2);
    x = torch::silu(bn2->forward(conv2->forward(x))).mean({2, 3});
    return fc->forward(x);
  }
  torch::nn::Conv2d conv1;
  BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  BatchNorm2d bn2;
  torch::nn::Linear fc;
};
TORCH_MODULE(SmoothNet);

// Worst relative error over parameters and BatchNorm running statistics after 10 steps.
double ten_steps(Communicator& comm, bool sync) {
  const int64_t b = 8, n = b * comm.size();
  OptimConfig cfg;
  cfg.lr = 0.05, cfg.momentum = 0.9, cfg.nesterov = false, cfg.weight_decay = 1e-4;
  torch::manual_seed(3);
  SmoothNet dist_model;
  torch::manual_seed(3);
  SmoothNet ref_model;
  auto dist_opt = make_optimizer(cfg, named_params(*dist_model));
  auto ref_opt = make_optimizer(cfg, named_params(*ref_model));
  GradientReducer reducer(dist_model->parameters(), comm, {});
  for (int64_t s = 0; s < 10; ++s) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(500 + s);
    auto x = torch::randn({n, 1, 28, 28}, gen) * 2 + 0.5, y = torch::randint(0, 10, {n}, gen, torch::kLong);
    set_batch_norm_sync(nullptr);  // the reference: one process, the whole batch
    ref_opt->zero_grad();
    torch::nn::functional::cross_entropy(ref_model->forward(x), y).backward();
    ref_opt->step(cfg.lr);

    set_batch_norm_sync(sync ? &comm : nullptr);
    reducer.zero_grad();
    reducer.prepare(true);
    auto xs = x.narrow(0, comm.rank() * b, b), ys = y.narrow(0, comm.rank() * b, b);
    (torch::nn::functional::cross_entropy(dist_model->forward(xs), ys) * reducer.loss_scale()).backward();
    reducer.finish();
    dist_opt->step(cfg.lr);
  }
  set_batch_norm_sync(nullptr);
  double worst = 0;
  auto a = dist_model->parameters(), r = ref_model->parameters();
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, rel_err(a[i], r[i]));
  auto ab = dist_model->named_buffers(), rb = ref_model->named_buffers();
  for (const auto& item : ab) {
    if (item.key().find("running_") == std::string::npos) continue;
    worst = std::max(worst, rel_err(item.value(), rb[item.key()]));
  }
  return worst;
}

}  // namespace

TEST(SyncBatchNorm, NRanksEqualOneRankWithNTimesTheBatch) {
  auto comm = make_communicator("mpi", true);
  EXPECT_LE(ten_steps(*comm, true), 1e-5);
}

TEST(SyncBatchNorm, PerRankStatisticsDifferWithoutIt) {
  auto comm = make_communicator("mpi", true);
  if (comm->size() < 2) GTEST_SKIP() << "one rank: per-rank statistics are the global ones";
  EXPECT_GT(ten_steps(*comm, false), 1e-3);
}

// bf16 inputs (as autocast gives a BatchNorm): each rank's slice comes out in bf16, normalised
// with the global batch's statistics in float32 and rounded once, so it is within bf16's rounding
// of the float32 whole-batch result even when the mean is large against the spread (a bf16 mean
// of ~10 is off by up to 0.02, which normalising in bf16 carried into every output); the input
// gradient likewise.
TEST(SyncBatchNorm, Bf16InputsNormaliseInFloat32AndComeOutInBf16) {
  auto comm = make_communicator("mpi", true);
  const int64_t b = 6, c = 4, n = b * comm->size();
  torch::manual_seed(5);  // the same global batch on every rank
  const auto x = (torch::randn({n, c, 5, 7}) + 10).to(torch::kBFloat16);
  const auto dy = torch::randn({n, c, 5, 7}).to(torch::kBFloat16);
  const auto weight = torch::rand({c}).add(0.5), bias = torch::randn({c});
  auto xr = x.to(torch::kFloat).requires_grad_(true);  // reference: float32, the whole batch
  auto rm_ref = torch::zeros({c}), rv_ref = torch::ones({c});
  auto y_ref = torch::batch_norm(xr, weight, bias, rm_ref, rv_ref, true, 0.1, 1e-5, false);
  y_ref.backward(dy.to(torch::kFloat));

  auto xs = x.narrow(0, comm->rank() * b, b).clone().requires_grad_(true);
  auto rm = torch::zeros({c}), rv = torch::ones({c});
  auto y = sync_batch_norm(xs, weight, bias, rm, rv, 0.1, 1e-5, *comm);
  y.backward(dy.narrow(0, comm->rank() * b, b));
  ASSERT_EQ(y.scalar_type(), torch::kBFloat16);
  ASSERT_EQ(xs.grad().scalar_type(), torch::kBFloat16);
  const auto y_slice = y_ref.narrow(0, comm->rank() * b, b).detach();
  // bf16 keeps 8 significant bits: one rounding moves a value by at most 2^-8 of it.
  const auto bound = y_slice.abs() * std::ldexp(1.0, -8) + 1e-6;
  const auto excess = (y.to(torch::kFloat) - y_slice).abs() - bound;
  EXPECT_LE(excess.max().item<double>(), 0.0);
  EXPECT_LE(rel_err(xs.grad().to(torch::kFloat), xr.grad().narrow(0, comm->rank() * b, b)), 1e-2);
  EXPECT_LE(rel_err(rm, rm_ref), 1e-5);
  EXPECT_LE(rel_err(rv, rv_ref), 1e-5);
}

// One value per channel on each rank ([1, C, 1, 1]): at 2+ ranks the global batch has several and
// each rank's output equals batch norm over the whole batch (the count read only in this case);
// at one rank, every rank fails with the message naming the remedy, as batch norm cannot
// normalise a single value.
TEST(SyncBatchNorm, OneValuePerRankNormalisesOverRanksOrFailsOnOne) {
  auto comm = make_communicator("mpi", true);
  const int64_t c = 3, n = comm->size();
  torch::manual_seed(9);
  const auto x = torch::randn({n, c, 1, 1}) * 2 + 1;
  const auto weight = torch::rand({c}).add(0.5), bias = torch::randn({c});
  auto rm = torch::zeros({c}), rv = torch::ones({c});
  const auto xs = x.narrow(0, comm->rank(), 1).clone();
  if (n == 1) {
    try {
      sync_batch_norm(xs, weight, bias, rm, rv, 0.1, 1e-5, *comm);
      FAIL() << "one value per channel over all ranks was normalised";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("one value per channel"), std::string::npos) << e.what();
    }
    return;
  }
  auto rm_ref = torch::zeros({c}), rv_ref = torch::ones({c});
  const auto y_ref = torch::batch_norm(x, weight, bias, rm_ref, rv_ref, true, 0.1, 1e-5, false);
  const auto y = sync_batch_norm(xs, weight, bias, rm, rv, 0.1, 1e-5, *comm);
  EXPECT_LE(rel_err(y, y_ref.narrow(0, comm->rank(), 1)), 1e-5);
  EXPECT_LE(rel_err(rm, rm_ref), 1e-5);
  EXPECT_LE(rel_err(rv, rv_ref), 1e-5);
}
