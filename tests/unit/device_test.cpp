// train.device's helpers that need no GPU: what tells a node has GPUs, and why "auto" chose the
// CPU on it (the warning a job on GPUs with a CPU-only trainer prints).
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "train/device.h"

namespace odyssey {
namespace {

// Sets (or unsets, with nullopt) an environment variable for the test's scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? setenv(name, value->c_str(), 1) : unsetenv(name);
  }
  ~ScopedEnv() { old_ ? setenv(name_, old_->c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Device, GpuEvidenceNamesWhatShowsGpus) {
  ScopedEnv job("SLURM_JOB_GPUS", std::nullopt), step("SLURM_STEP_GPUS", std::nullopt);
  {
    ScopedEnv cvd("CUDA_VISIBLE_DEVICES", "0,1");
    EXPECT_EQ(gpu_evidence(), "CUDA_VISIBLE_DEVICES=0,1");
  }
  for (const char* hidden : {"", "-1", "NoDevFiles"}) {  // GPUs hidden on purpose: no warning
    ScopedEnv cvd("CUDA_VISIBLE_DEVICES", hidden), gpus("SLURM_JOB_GPUS", "3");
    EXPECT_EQ(gpu_evidence(), "") << "CUDA_VISIBLE_DEVICES='" << hidden << "'";
  }
  ScopedEnv cvd("CUDA_VISIBLE_DEVICES", std::nullopt);
  {
    ScopedEnv gpus("SLURM_STEP_GPUS", "2,3");
    EXPECT_EQ(gpu_evidence(), "SLURM_STEP_GPUS=2,3");
  }
  const bool dev = ::access("/dev/nvidia0", F_OK) == 0;
  {
    ScopedEnv outside("SLURM_JOB_ID", std::nullopt);
    EXPECT_EQ(gpu_evidence(), dev ? "/dev/nvidia0" : "");
  }
  ScopedEnv job_id("SLURM_JOB_ID", "42");  // a SLURM job without GPU variables asked for none
  EXPECT_EQ(gpu_evidence(), "");
}

TEST(Device, CpuChoiceReason) {  // every branch where a GPU is usable, the first two elsewhere
  auto has = [](const std::string& reason, const char* part) { return reason.find(part) != std::string::npos; };
  if (!at::hasCUDA()) {
    EXPECT_TRUE(has(cpu_choice_reason(true, true, 1), "built without CUDA"));
    EXPECT_TRUE(has(cpu_choice_reason(false, false, 4), "built without CUDA"));
  } else if (!torch::cuda::is_available()) {
    EXPECT_TRUE(has(cpu_choice_reason(true, true, 1), "sees no GPU"));
  } else {
    EXPECT_TRUE(has(cpu_choice_reason(false, true, 4), "dist.backend = \"mpi\" reduces host tensors only"));
    EXPECT_TRUE(has(cpu_choice_reason(false, false, 4), "no NCCL to reduce GPU gradients over 4 ranks"));
    EXPECT_TRUE(has(cpu_choice_reason(true, true, 4), "another rank has no usable GPU"));
  }
}

}  // namespace
}  // namespace odyssey
