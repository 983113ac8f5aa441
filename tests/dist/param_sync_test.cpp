// Data parallelism is exact: N ranks with batch B compute the gradient, and after 10 SGD-momentum
// steps the parameters, of one rank with batch N*B (relative error <= 1e-5).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <mpi.h>
#include <sched.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <functional>
#include <numeric>
#include <system_error>
#include <thread>

#include "common/error.h"
#include "common/exit_codes.h"
#include "dist/agreement.h"
#include "dist/communicator.h"
#include "dist_util.h"
#include "dist/coordinator.h"
#include "dist/gradient_reducer.h"
#include "dist/nccl_communicator.h"
#include "dist/param_sync.h"
#include "dist/process_env.h"
#include "models/registry.h"
#include "train/device.h"
#include "train/optimizer.h"

using namespace odyssey;
using odyssey::testing::named_params;
using odyssey::testing::rel_err;

namespace {

std::unique_ptr<Communicator> world() { return make_communicator("mpi", true); }

std::vector<torch::Tensor> params(torch::nn::Module& m) { return m.parameters(); }

// The global batch of step s, identical on every rank (fixed seed).
std::pair<torch::Tensor, torch::Tensor> global_batch(int64_t s, int64_t n, int64_t channels = 1) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + s);
  return {torch::randn({n, channels, 28, 28}, gen), torch::randint(0, 10, {n}, gen, torch::kLong)};
}

}  // namespace

TEST(ParamSync, AveragedGradientEqualsSingleProcessGradient) {
  auto comm = world();
  const int64_t b = 6, n = b * comm->size();
  torch::manual_seed(comm->rank());  // different init per rank: the broadcast must fix it
  auto model = ModelRegistry::instance().create("tiny_cnn", {10, 1, 28});
  broadcast_module(*comm, *model);
  auto [x, y] = global_batch(0, n);

  // Reference: the whole global batch in this process.
  torch::nn::functional::cross_entropy(model->forward(x), y).backward();
  std::vector<torch::Tensor> reference;
  for (auto& p : model->parameters()) reference.push_back(p.grad().clone());

  // Distributed: this rank's slice, then the average over ranks.
  for (auto& p : model->parameters()) p.mutable_grad().zero_();
  auto xs = x.narrow(0, comm->rank() * b, b), ys = y.narrow(0, comm->rank() * b, b);
  GradientReducer reducer(params(*model), *comm, {});
  reducer.prepare(true);
  (torch::nn::functional::cross_entropy(model->forward(xs), ys) * reducer.loss_scale()).backward();
  reducer.finish();
  auto ps = model->parameters();
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_LE(rel_err(ps[i].grad(), reference[i]), 1e-5) << i;
}

namespace {

// Ten SGD-momentum steps of a data-parallel model against a one-process model fed the whole
// global batch. micro > 1 splits each rank's batch into micro-batches (gradient accumulation);
// channels_last lays the data-parallel model's weights and inputs out NHWC (the reference not).
double ten_steps_max_rel_error(Communicator& comm, const ReducerOptions& options, int64_t micro,
                               bool channels_last = false) {
  const int64_t b = 4, n = b * comm.size();
  const int64_t ch = channels_last ? 3 : 1;  // one channel: NCHW and NHWC strides coincide
  OptimConfig cfg;
  cfg.lr = 0.05, cfg.momentum = 0.9, cfg.nesterov = false, cfg.weight_decay = 1e-4;
  torch::manual_seed(7);
  auto dist_model = ModelRegistry::instance().create("tiny_cnn", {10, ch, 28});
  torch::manual_seed(7);
  auto ref_model = ModelRegistry::instance().create("tiny_cnn", {10, ch, 28});
  if (channels_last) to_channels_last(*dist_model);
  auto dist_opt = make_optimizer(cfg, named_params(*dist_model));
  auto ref_opt = make_optimizer(cfg, named_params(*ref_model));
  GradientReducer reducer(params(*dist_model), comm, options);
  for (int64_t s = 0; s < 10; ++s) {
    auto [x, y] = global_batch(s, n, ch);
    ref_opt->zero_grad();
    torch::nn::functional::cross_entropy(ref_model->forward(x), y).backward();
    ref_opt->step(cfg.lr);

    reducer.zero_grad();
    auto xs = memory_order(x.narrow(0, comm.rank() * b, b), channels_last);
    auto ys = y.narrow(0, comm.rank() * b, b);
    auto xm = xs.chunk(micro), ym = ys.chunk(micro);
    for (int64_t i = 0; i < micro; ++i) {
      reducer.prepare(i == micro - 1);
      auto loss = torch::nn::functional::cross_entropy(dist_model->forward(xm[i]), ym[i]);
      (loss * (reducer.loss_scale() / micro)).backward();
    }
    if (comm.size() > 1)  // every bucket went out from the hooks, while backward ran
      EXPECT_EQ(reducer.bucket_count(), [&] { reducer.finish(); return reducer.last_stats().launched_in_backward; }());
    else
      reducer.finish();
    dist_opt->step(cfg.lr);
  }
  for (auto& p : dist_model->parameters())  // the gradients keep the parameters' own layout
    EXPECT_EQ(p.grad().strides(), p.strides());
  auto a = dist_model->parameters(), r = ref_model->parameters();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, rel_err(a[i], r[i]));
    EXPECT_FALSE(torch::equal(a[i], torch::zeros_like(a[i])));
  }
  return worst;
}

}  // namespace

TEST(ParamSync, TenSgdStepsOnNRanksEqualOneRankWithNTimesTheBatch) {
  auto comm = world();
  EXPECT_LE(ten_steps_max_rel_error(*comm, {}, 1), 1e-5);
}

TEST(GradientReducer, ExactForEveryBucketSize) {
  auto comm = world();
  // One bucket per parameter, a few buckets, one bucket for everything.
  for (int64_t bytes : {int64_t{64}, int64_t{20000}, int64_t{1} << 30}) {
    ReducerOptions o;
    o.bucket_bytes = o.first_bucket_bytes = bytes;
    EXPECT_LE(ten_steps_max_rel_error(*comm, o, 1), 1e-5) << "bucket bytes " << bytes;
  }
}

TEST(GradientReducer, ChannelsLastParametersReduceExactly) {
  // Bucket views take each parameter's strides: NHWC weights get NHWC gradients, reduced exactly.
  auto comm = world();
  torch::manual_seed(0);
  auto m = ModelRegistry::instance().create("tiny_cnn", {10, 3, 28});
  to_channels_last(*m);
  int64_t nhwc = 0;
  for (auto& p : m->parameters()) nhwc += p.dim() == 4 && !p.is_contiguous() ? 1 : 0;
  ASSERT_GT(nhwc, 0) << "tiny_cnn has convolution weights to re-lay";
  ReducerOptions o;
  o.bucket_bytes = 20000;
  EXPECT_LE(ten_steps_max_rel_error(*comm, o, 1, /*channels_last=*/true), 1e-5);
}

TEST(GradientReducer, GradientAccumulationIsExact) {
  auto comm = world();
  ReducerOptions o;
  o.bucket_bytes = 20000;
  EXPECT_LE(ten_steps_max_rel_error(*comm, o, 2), 1e-5);
  EXPECT_LE(ten_steps_max_rel_error(*comm, o, 4), 1e-5);
}

TEST(GradientReducer, CompressedGradientsStayClose) {
  // 16-bit wire formats round each gradient (bf16 keeps 8 bits of mantissa; fp16 keeps 11 but
  // small gradients, divided by the world size first, fall into its subnormal range): after ten
  // steps the parameters stay within 3e-2 of the exact run, and differ from it (the wire really
  // was 16-bit).
  auto comm = world();
  if (comm->size() < 2) GTEST_SKIP() << "one rank sends nothing";
  for (std::string format : {"bf16", "fp16"}) {
    ReducerOptions o;
    o.compress = format;
    const double err = ten_steps_max_rel_error(*comm, o, 1);
    EXPECT_LE(err, 3e-2) << format;
    EXPECT_GT(err, 1e-6) << format;
  }
}

TEST(GradientReducer, AnOverflowingFp16SumIsReportedForThatStepOnly) {
  // Gradients beyond fp16's range (65504) overflow the 16-bit wire: the step reports it (every
  // rank alike, the update is then skipped); the next, ordinary step does not.
  auto comm = world();
  if (comm->size() < 2) GTEST_SKIP() << "one rank sends nothing";
  torch::manual_seed(0);
  auto w = torch::zeros({64}, torch::requires_grad());
  ReducerOptions o;
  o.compress = "fp16";
  GradientReducer reducer({w}, *comm, o);
  for (double scale : {1e6, 1.0}) {
    reducer.zero_grad();
    reducer.prepare(true);
    ((w * scale).sum() * reducer.loss_scale()).backward();
    reducer.finish();
    EXPECT_EQ(reducer.last_stats().non_finite, scale > 65504) << scale;
  }
}

TEST(GradientReducer, AWireDivisorKeepsAScaledFp16SumInRange) {
  // An fp16 loss scaler's gradients: each rank's bucket holds 40000 (its full scale, not divided
  // by the ranks). Summed on an fp16 wire as they are, N >= 2 ranks overflow (80000 > 65504);
  // divided by N on the way and multiplied back in float32, the sum arrives: 40000 x N.
  auto comm = world();
  if (comm->size() < 2) GTEST_SKIP() << "one rank sends nothing";
  const double n = comm->size();
  for (double divisor : {1.0, n}) {
    auto w = torch::zeros({64}, torch::requires_grad());
    ReducerOptions o;
    o.compress = "fp16";
    o.wire_divisor = divisor;
    GradientReducer reducer({w}, *comm, o);
    reducer.zero_grad();
    reducer.prepare(true);
    (w * 40000.0).sum().backward();
    reducer.finish();
    EXPECT_EQ(reducer.last_stats().non_finite, divisor == 1.0) << divisor;
    if (divisor != 1.0) {
      const double err = (w.grad() / (40000.0 * n) - 1).abs().max().item<double>();
      EXPECT_LE(err, 1e-3) << "fp16 rounds 40000 / N to 11 bits";
    }
  }
}

TEST(GradientReducer, ANonFiniteGradientOnOneRankIsReportedOnEveryRank) {
  // A NaN made by one rank's backward (its loss may be finite) reaches every rank's sum: all
  // report it, one rank alone too; with check_finite off (an fp16 loss scaler checks) none does.
  auto comm = world();
  for (bool check : {true, false}) {
    auto w = torch::zeros({300}, torch::requires_grad());
    auto v = torch::zeros({7}, torch::requires_grad());
    ReducerOptions o;
    o.first_bucket_bytes = 64;  // w and v in buckets of their own
    o.check_finite = check;
    GradientReducer reducer({w, v}, *comm, o);
    for (int step = 0; step < 2; ++step) {  // the NaN step, then an ordinary one
      const bool nan_here = step == 0 && comm->rank() == comm->size() - 1;
      reducer.zero_grad();
      reducer.prepare(true);
      auto factor = torch::ones({7});
      if (nan_here) factor[3] = std::nan("");
      ((w.sum() + (v * factor).sum()) * reducer.loss_scale()).backward();
      reducer.finish();
      EXPECT_EQ(reducer.last_stats().non_finite, check && step == 0) << check << " step " << step;
    }
  }
}

TEST(GradientReducer, BucketsFollowReverseParameterOrderWithASmallFirstBucket) {
  auto comm = world();
  auto model = ModelRegistry::instance().create("fmnist_cnn", {10, 1, 28});
  ReducerOptions o;
  o.first_bucket_bytes = 1 << 12;
  o.bucket_bytes = 1 << 18;
  GradientReducer reducer(params(*model), *comm, o);
  auto layout = reducer.layout();
  ASSERT_GE(layout.size(), 2u);
  size_t expected = model->parameters().size();
  for (const auto& bucket : layout)
    for (size_t k : bucket) EXPECT_EQ(k, --expected);  // every parameter once, last first
  EXPECT_EQ(expected, 0u);
  // Gradients live in the buckets: writing through .grad() is what gets sent.
  auto ps = model->parameters();
  EXPECT_TRUE(ps.back().grad().defined());
}

TEST(Coordinator, AStopSignalOnOneRankStopsEveryRankAtTheSameStep) {
  auto comm = world();
  Coordinator coordinator(*comm);
  const int raiser = comm->size() - 1;
  for (int step = 0; step < 5; ++step) {
    ControlFlags local;
    if (comm->rank() == raiser && step == 3) local.signal = SIGUSR1;
    ControlFlags agreed = coordinator.agree(local);
    EXPECT_EQ(agreed.stop(), step == 3) << "step " << step;
    if (agreed.stop()) EXPECT_EQ(agreed.signal, SIGUSR1);
  }
}

TEST(ParamSync, BuffersAreAveragedAcrossRanks) {
  auto comm = world();
  auto model = ModelRegistry::instance().create("fmnist_cnn", {10, 1, 28});
  for (auto& t : model->buffers())
    if (t.is_floating_point()) t.fill_(static_cast<float>(comm->rank()));
  average_buffers(*comm, *model);
  const float mean = (comm->size() - 1) / 2.0f;
  for (auto& t : model->buffers())
    if (t.is_floating_point()) EXPECT_TRUE(torch::allclose(t, torch::full_like(t, mean)));
}

TEST(Communicator, CollectivesWorkedOutByHand) {
  auto comm = world();
  const int n = comm->size();
  auto t = torch::full({5}, static_cast<double>(comm->rank() + 1), torch::kDouble);
  comm->allreduce_sum(t);
  EXPECT_TRUE(torch::equal(t, torch::full({5}, n * (n + 1) / 2.0, torch::kDouble)));
  EXPECT_EQ(comm->allreduce_min(10 + comm->rank()), 10);
  std::string s = comm->rank() == 0 ? "from rank zero" : "";
  comm->broadcast(s, 0);
  EXPECT_EQ(s, "from rank zero");
}

TEST(Agreement, AFailureOnOneRankEndsSetupOnEveryRank) {
  auto comm = world();
  if (comm->size() < 2) GTEST_SKIP() << "needs 2+ ranks";
  const int failing = comm->size() - 1;
  try {
    agree(*comm, [&] {
      if (comm->rank() == failing) throw Error("shard x.h5 is broken", "", __FILE__, __LINE__);
    });
    FAIL() << "every rank must throw";
  } catch (const AgreedFailure& f) {
    EXPECT_EQ(f.rank, failing);
  }
  EXPECT_NO_THROW(agree(*comm, [] {}));
  // Every rank exits with the lowest failing rank's code: a usage error 1, odyssey::Error or a
  // filesystem error (permissions, I/O: the OS names the path) 2, any other exception 4.
  auto code_of = [&](const std::function<void()>& step) {
    try {
      agree(*comm, step);
    } catch (const AgreedFailure& f) {
      EXPECT_EQ(f.rank, failing);
      return f.exit_code;
    }
    return -1;
  };
  auto on_failing = [&](const std::function<void()>& raise) {
    return [&, raise] { if (comm->rank() == failing) raise(); };
  };
  EXPECT_EQ(code_of(on_failing([] { throw UsageError("--bad", "", __FILE__, __LINE__); })), kExitUsage);
  EXPECT_EQ(code_of(on_failing([] {
              throw std::filesystem::filesystem_error(
                  "cannot open", "/data/index.toml",
                  std::make_error_code(std::errc::permission_denied));
            })), kExitUserError);
  EXPECT_EQ(code_of(on_failing([] { throw std::runtime_error("c10 says no"); })), kExitInternal);
  // Two ranks failing differently: the lower one's code.
  try {
    agree(*comm, [&] {
      if (comm->rank() == failing) throw std::runtime_error("later rank: internal");
      if (comm->rank() == failing - 1) throw Error("earlier rank: user", "", __FILE__, __LINE__);
    });
    FAIL() << "every rank must throw";
  } catch (const AgreedFailure& f) {
    EXPECT_EQ(f.rank, failing - 1);
    EXPECT_EQ(f.exit_code, kExitUserError);
  }
}

TEST(Agreement, AStopSignalDuringSetupEndsItOnEveryRankWithExit75UnlessARankFailed) {
  // Training's setup told to stop (StopRequested from a long read, or a signal recorded by the
  // step's end) leaves every rank with exit 75 and nothing trained; an error elsewhere wins.
  auto comm = world();
  const int stopping = comm->size() - 1;
  try {
    agree(*comm, [&] {
      if (comm->rank() == stopping) throw StopRequested(SIGUSR1);
    });
    FAIL() << "every rank must throw";
  } catch (const AgreedFailure& f) {
    EXPECT_EQ(f.rank, stopping);
    EXPECT_EQ(f.exit_code, kExitPreempted);
  }
  if (comm->size() < 2) return;
  try {  // the stop on the lower rank, the error on the higher: the error decides
    agree(*comm, [&] {
      if (comm->rank() == 0) throw StopRequested(SIGTERM);
      if (comm->rank() == stopping) throw Error("shard x.h5 is broken", "", __FILE__, __LINE__);
    });
    FAIL() << "every rank must throw";
  } catch (const AgreedFailure& f) {
    EXPECT_EQ(f.rank, stopping);
    EXPECT_EQ(f.exit_code, kExitUserError);
  }
}

TEST(Agreement, NcclSetUpWithoutAGpuFailsOnEveryRankAlike) {
  // The NCCL communicator's local steps (a GPU, its device, rank 0's unique id) are agreed before
  // the id's broadcast: every rank leaves with the lowest failing rank's verdict, none waits.
  if (!nccl_compiled()) GTEST_SKIP() << "built without NCCL";
  if (cuda_usable()) GTEST_SKIP() << "a GPU is visible: the set-up would succeed";
  auto comm = world();
  try {
    make_communicator("nccl", /*mpi_initialised=*/true);
    FAIL() << "a NCCL communicator without a GPU";
  } catch (const AgreedFailure& f) {
    EXPECT_EQ(f.rank, 0);
    EXPECT_EQ(f.exit_code, kExitUserError);
  }
  EXPECT_NO_THROW(agree(*comm, [] {}));  // the world communicator is still in step
}

TEST(CpuShare, EachCpuIsSplitAmongTheRanksThatMayUseIt) {
  // train.threads = 0: every rank's mask whole (unbound), then each rank bound to one CPU (mpirun
  // -np 2's default), then all in a one-CPU set: each CPU counts 1 / its holders.
  auto comm = world();
  ProcessEnv env;  // the ranks of this node share its CPUs (the multi-node test runs 2 per node)
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &env.local_rank);
  MPI_Comm_size(node, &env.local_size);
  MPI_Comm_free(&node);
  env.rank = comm->rank(), env.size = comm->size(), env.mpi = true;
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  auto bind = [&](const std::vector<int>& to) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : to) CPU_SET(c, &set);
    ASSERT_EQ(sched_setaffinity(0, sizeof set, &set), 0);
  };
  // Every CPU of the node (the kernel keeps those of the job's CPU set): the same on every rank.
  std::vector<int> all(std::thread::hardware_concurrency());
  std::iota(all.begin(), all.end(), 0);
  bind(all);
  cpu_set_t widened;
  ASSERT_EQ(sched_getaffinity(0, sizeof widened, &widened), 0);
  all.clear();
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &widened)) all.push_back(c);
  const int n = static_cast<int>(all.size());
  EXPECT_EQ(cpu_share(env).threads, std::max(1, n / env.local_size));
  EXPECT_EQ(cpu_share(env).usable_cpus, n);
  bind({all[env.local_rank % n]});  // a CPU each, shared when the node's ranks > CPUs
  EXPECT_EQ(cpu_share(env).threads, 1);
  EXPECT_EQ(cpu_share(env).usable_cpus, std::min(env.local_size, n));
  bind({all[0]});  // one CPU for everyone: still one thread each
  EXPECT_EQ(cpu_share(env).threads, 1);
  EXPECT_EQ(cpu_share(env).usable_cpus, 1);
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
}
