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

#include "dist/coordinator.h"
#include "models/cpu_gemm.h"

using namespace odyssey;

// Each run of ctest starts this test in a process of its own: route_stop_signals() comes before
// the threads it starts, as in the trainer's main().
TEST(StopSignals, SignalsDuringOneDnnProductsLeaveTheHeapIntact) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
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
