// The glibc settings of dist/process_env.h: a large block freed and allocated again comes back
// without fresh pages from the kernel (train.cpu_reuse_large_blocks), or, switched off, with them.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>

#include "dist/process_env.h"

using namespace odyssey;

namespace {

long minor_faults() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

// Page faults while a block of `bytes`, just freed, is allocated again and written.
long faults_to_refill(size_t bytes) {
  auto fill = [&](int value) {
    auto* p = static_cast<char*>(std::malloc(bytes));
    std::memset(p, value, bytes);
    asm volatile("" : : "r"(p) : "memory");  // the writes happen before free
    return p;
  };
  std::free(fill(1));
  const long before = minor_faults();
  char* p = fill(2);
  const long faults = minor_faults() - before;
  std::free(p);
  return faults;
}

}  // namespace

TEST(Allocator, LargeBlocksAreReusedWithoutFreshPages) {
  configure_allocator();
  // Above glibc's 32 MB mmap ceiling and larger than any free heap block earlier tests can leave
  // (without these settings glibc keeps at most twice its mmap threshold free at the heap's top).
  const size_t bytes = size_t{128} << 20;
  // Switched off first: once a block this large sits free in the heap, malloc serves it from
  // there whatever the setting.
  reuse_large_blocks(false);  // glibc's default: mapped at malloc, unmapped at free
  EXPECT_GE(faults_to_refill(bytes), 1000) << "128 MB of fresh 4 KB pages";
  reuse_large_blocks(true);
  EXPECT_LE(faults_to_refill(bytes), 4) << "the same heap memory again";
}
