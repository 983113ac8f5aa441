// SyncBatchNorm (dist.sync_bn): N ranks with batch B and synchronised BatchNorm end with the same
// parameters and running statistics after 10 SGD-momentum steps as one process with batch N*B
// (relative error <= 1e-5); without it, at 2+ ranks, they do not (the test can fail).
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dist/communicator.h"
#include "dist_util.h"
#include "dist/gradient_reducer.h"
#include "dist/sync_batch_norm.h"
#include "models/registry.h"
#include "train/optimizer.h"

using namespace odyssey;
using odyssey::testing::named_params;
using odyssey::testing::rel_err;

namespace {

// Worst relative error over parameters and BatchNorm running statistics after 10 steps.
double ten_steps(Communicator& comm, bool sync) {
  const int64_t b = 8, n = b * comm.size();
  OptimConfig cfg;
  // A gentle lr: BatchNorm nets on tiny batches amplify float rounding step by step (at lr 0.05
  // the 6e-7 of the first step grows past 1e-5 by step 10).
  cfg.lr = 0.01, cfg.momentum = 0.9, cfg.nesterov = false, cfg.weight_decay = 1e-4;
  torch::manual_seed(3);
  auto dist_model = ModelRegistry::instance().create("fmnist_cnn", {10, 1, 28});
  torch::manual_seed(3);
  auto ref_model = ModelRegistry::instance().create("fmnist_cnn", {10, 1, 28});
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
