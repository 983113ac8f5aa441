// StepTimes on the CPU: each part sums the host time between its begin and end over the window,
// take() returns and restarts a part, parts do not mix. (On a GPU it times CUDA events:
// tests/gpu/cuda_step_times_test.cpp.)
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "train/step_times.h"

using namespace odyssey;

TEST(StepTimes, SumsEachPartsHostTimeAndRestartsOnTake) {
  StepTimes t(torch::kCPU);
  EXPECT_FALSE(t.on_device());
  for (int i = 0; i < 2; ++i) {
    t.begin(StepTimes::kForward);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    t.end(StepTimes::kForward);
  }
  t.begin(StepTimes::kOptimizer);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  t.end(StepTimes::kOptimizer);
  const double forward = t.take(StepTimes::kForward);
  EXPECT_GE(forward, 0.060);
  EXPECT_LT(forward, 0.5);
  EXPECT_EQ(t.take(StepTimes::kForward), 0.0);  // restarted
  EXPECT_EQ(t.take(StepTimes::kBackward), 0.0);  // never timed
  const double optimizer = t.take(StepTimes::kOptimizer);
  EXPECT_GE(optimizer, 0.010);
  EXPECT_LT(optimizer, forward);
}
