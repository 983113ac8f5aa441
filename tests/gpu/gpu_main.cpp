// Entry point of the GPU tests, run under mpirun like the distributed tests; each test skips
// where there is no GPU.
#include <gtest/gtest.h>

#include "common/log.h"
#include "dist/process_env.h"

int main(int argc, char** argv) {
  odyssey::configure_allocator();
  odyssey::MpiSession mpi(&argc, &argv);
  odyssey::log::init(mpi.env().rank, mpi.env().size);
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.env().rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  return RUN_ALL_TESTS();
}
