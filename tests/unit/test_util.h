// Helpers shared by the unit tests: a fresh temporary folder per test, a scoped train.cpu_gemm,
// a count of the calls of one recorded operator, a run at a given intra-op thread count.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "models/cpu_gemm.h"

namespace odyssey::testing {

// How many times operator `name` (LibTorch's, or Odyssey's own, which record themselves: see
// models/record_op.h) ran on this thread while f() ran.
inline thread_local std::string t_counted_op;
inline thread_local int t_op_calls = 0;
template <class F>
int recorded_calls(const std::string& name, F f) {
  t_counted_op = name, t_op_calls = 0;
  const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(
      [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        if (fn.name() == t_counted_op) ++t_op_calls;
        return nullptr;
      }));
  f();
  at::removeCallback(handle);
  return t_op_calls;
}

// f() with n LibTorch intra-op threads, the count restored after; returns f's result.
template <class F>
auto with_threads(int n, F f) {
  const int was = at::get_num_threads();
  at::set_num_threads(n);
  auto result = f();
  at::set_num_threads(was);
  return result;
}

// Sets the process-wide CPU matrix-product choice for one scope and restores it after.
class GemmChoice {
 public:
  explicit GemmChoice(CpuGemm g) : was_(cpu_gemm()) { set_cpu_gemm(g); }
  ~GemmChoice() { set_cpu_gemm(was_); }

 private:
  CpuGemm was_;
};

// A new empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("odyssey-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" +
             std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Runs f and returns the odyssey::Error message it throws ("" when it does not throw).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace odyssey::testing
