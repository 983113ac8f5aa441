// Helpers shared by the unit tests: a fresh temporary folder per test, a scoped train.cpu_gemm.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "models/cpu_gemm.h"

namespace odyssey::testing {

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
