// Stop signals (SIGTERM, SIGUSR1, SIGINT) arriving while oneDNN's JIT-compiled sgemm runs.
// oneDNN 2.x's f32 GEMM kernels point the stack pointer into a heap workspace; a signal handler
// that runs on such a thread writes its frame there and corrupts the heap (oneDNN issue 4845,
// fixed in oneDNN 3.x; Debian's LibTorch links 2.6). dist/coordinator.h routes the signals to a
// thread of its own, so no handler ever runs on a computing thread.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>
#include <vector>

#include <unistd.h>

#include "common/exit_codes.h"
#include "data/convert.h"
#include "data/split_reader.h"
#include "dist/agreement.h"
#include "dist/communicator.h"
#include "dist/coordinator.h"
#include "models/cpu_gemm.h"
#include "test_util.h"

using namespace odyssey;

namespace {
// Clears the recorded stop signal when a test ends, however it ends (an ASSERT returns early),
// for the tests after it where they share the process.
struct ClearStopSignal {
  ~ClearStopSignal() { record_stop_signal(0); }
};
}  // namespace

// Each run of ctest starts this test in a process of its own: route_stop_signals() comes before
// the threads it starts, as in the trainer's main().
TEST(StopSignals, SignalsDuringOneDnnProductsLeaveTheHeapIntact) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  ClearStopSignal clear;
  route_stop_signals();
  arm_stop_signals();
  at::set_num_threads(1);
  std::atomic<bool> done{false};
  std::atomic<int64_t> sent{0};
  std::thread sender([&] {
    while (!done.load()) {
      kill(getpid(), SIGUSR1);
      ++sent;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  // The Winograd products of the quickstart CNN's 32->64 layer at 14 px and 64->128 layer at 7 px,
  // batch 32 (a preempted run crashed in them): forward M = V U^T, backward dV = dM U and
  // dU = dM^T V, each against LibTorch's product.
  struct Product {
    bool ta, tb;
    int64_t m, n, k;
  };
  const Product shapes[] = {{false, true, 1568, 64, 32}, {false, false, 1568, 32, 64},
                            {true, false, 64, 32, 1568}, {false, true, 512, 128, 64},
                            {false, false, 512, 64, 128}, {true, false, 128, 64, 512}};
  torch::manual_seed(0);
  std::vector<torch::Tensor> as, bs, wants;
  for (const auto& s : shapes) {
    as.push_back(s.ta ? torch::randn({s.k, s.m}) : torch::randn({s.m, s.k}));
    bs.push_back(s.tb ? torch::randn({s.n, s.k}) : torch::randn({s.k, s.n}));
    wants.push_back(torch::mm(s.ta ? as.back().t() : as.back(), s.tb ? bs.back().t() : bs.back()));
  }
  const auto start = std::chrono::steady_clock::now();
  int64_t products = 0;
  double worst = 0;
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1500)) {
    for (size_t i = 0; i < std::size(shapes); ++i) {
      const auto& s = shapes[i];
      auto c = torch::empty({s.m, s.n});
      onednn_sgemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, as[i].data_ptr<float>(), s.ta ? s.m : s.k,
                   bs[i].data_ptr<float>(), s.tb ? s.k : s.n, 0.0f, c.data_ptr<float>(), s.n);
      worst = std::max(worst, ((c - wants[i]).abs().max() / wants[i].abs().max()).item<double>());
      ++products;
    }
  }
  done = true;
  sender.join();
  EXPECT_GT(sent.load(), 1000);
  EXPECT_GT(products, 100);
  EXPECT_LT(worst, 1e-5);
  EXPECT_EQ(stop_signal(), SIGUSR1);
}

TEST(StopSignals, ASignalDuringSetupEndsItWithExit75AndEndsAReadIntoMemory) {
  // A job preempted while it reads its data or loads its checkpoint: the signal, recorded once
  // training armed it, ends setup at its next agreement (every rank exit 75) and the read of a
  // split into memory where it is; streaming readers open as before.
  ClearStopSignal clear;
  odyssey::testing::TempDir dir;
  torch::manual_seed(0);
  write_dataset(dir.str(), "toy", "unit test", {"a", "b"},
                {{"train", torch::randint(0, 256, {40, 4, 4, 1}, torch::kByte),
                  torch::randint(0, 2, {40}, torch::kLong), 2}});
  const DatasetIndex index = read_index(dir.str());
  auto comm = make_communicator("single", false);
  route_stop_signals();
  arm_stop_signals();
  EXPECT_NO_THROW(agree(*comm, [] {}));
  EXPECT_TRUE(SplitReader(dir.str(), index, "train", 0, int64_t{1} << 20).cached());
  kill(getpid(), SIGUSR1);  // taken by the signal thread
  for (int i = 0; i < 5000 && stop_signal() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(stop_signal(), SIGUSR1);
  bool ran = false;
  try {
    agree(*comm, [&] { ran = true; });
    ADD_FAILURE() << "setup must stop";
  } catch (const AgreedFailure& f) {
    EXPECT_EQ(f.exit_code, kExitPreempted);
  }
  EXPECT_TRUE(ran);  // the step itself runs: the stop comes at its end
  try {
    SplitReader(dir.str(), index, "train", 0, int64_t{1} << 20);
    ADD_FAILURE() << "the read into memory must stop";
  } catch (const StopRequested& s) {
    EXPECT_EQ(s.signal, SIGUSR1);
  }
  EXPECT_EQ(SplitReader(dir.str(), index, "train", 0, 0).size(), 40);  // streaming: nothing read yet
  record_stop_signal(0);
  EXPECT_NO_THROW(agree(*comm, [] {}));
}
