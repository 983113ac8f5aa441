// Entry point of the distributed tests: MPI is initialised once; only rank 0 prints gtest output
// (every rank's result decides mpirun's exit code).
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
