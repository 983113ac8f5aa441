#include "train/device.h"

#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>

#include "common/error.h"

namespace odyssey {

bool cuda_usable() { return at::hasCUDA() && torch::cuda::is_available(); }

torch::Device resolve_device(const std::string& setting, int local_rank, const std::string& source) {
  if (setting == "cpu") return torch::kCPU;
  ODY_CHECK(setting == "cuda",
            ODY_MSG(source << ": train.device = \"" << setting << "\" is not \"cpu\" or \"cuda\""), "");
  ODY_CHECK(at::hasCUDA(),
            ODY_MSG(source << ": train.device = \"cuda\" but this trainer's LibTorch is built "
                              "without CUDA"),
            "build against a CUDA LibTorch (README: GPU build) or set train.device = \"cpu\"");
  const int64_t gpus = static_cast<int64_t>(torch::cuda::device_count());
  ODY_CHECK(gpus > 0,
            ODY_MSG(source << ": train.device = \"cuda\" but no GPU is visible to this rank "
                              "(CUDA_VISIBLE_DEVICES, driver)"),
            "set train.device = \"cpu\" or \"auto\"");
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(local_rank % gpus));
}

std::string gpu_evidence() {
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    const std::string s = v;
    if (s.empty() || s == "-1" || s == "NoDevFiles") return "";  // GPUs hidden on purpose
    return "CUDA_VISIBLE_DEVICES=" + s;
  }
  for (const char* name : {"SLURM_JOB_GPUS", "SLURM_STEP_GPUS"})
    if (const char* v = std::getenv(name); v && *v) return std::string(name) + "=" + v;
  // A SLURM job's GPUs are named by the variables above: a CPU job on a shared GPU node sees the
  // device files without having asked for a GPU.
  if (!std::getenv("SLURM_JOB_ID") && ::access("/dev/nvidia0", F_OK) == 0) return "/dev/nvidia0";
  return "";
}

std::string cpu_choice_reason(bool gpu_reducible, bool nccl_built, int ranks) {
  if (!at::hasCUDA())
    return "this trainer's LibTorch is built without CUDA (README: GPU build; on a cluster "
           "build-gpu/trainer, or set ODYSSEY_TRAINER)";
  if (!torch::cuda::is_available()) return "LibTorch sees no GPU on this rank (driver, CUDA_VISIBLE_DEVICES)";
  if (!gpu_reducible)
    return nccl_built ? "dist.backend = \"mpi\" reduces host tensors only (set \"auto\" or \"nccl\")"
                      : "this build has no NCCL to reduce GPU gradients over " + std::to_string(ranks) +
                            " ranks (README: GPUs)";
  return "another rank has no usable GPU (every rank needs one)";
}

void set_tf32(bool on) {
  at::globalContext().setAllowTF32CuDNN(on);
  at::globalContext().setAllowTF32CuBLAS(on);
}

void to_channels_last(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  for (auto& b : m.buffers())
    if (b.dim() == 4) b.set_data(b.data().contiguous(torch::MemoryFormat::ChannelsLast));
}

torch::Tensor memory_order(const torch::Tensor& x, bool channels_last) {
  if (x.dim() != 4) return x;
  const auto fmt = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  auto c = x.contiguous(fmt);
  const auto n = c.sizes();
  const std::vector<int64_t> strides =
      channels_last ? std::vector<int64_t>{n[1] * n[2] * n[3], 1, n[3] * n[1], n[1]}
                    : std::vector<int64_t>{n[1] * n[2] * n[3], n[2] * n[3], n[3], 1};
  // Size-1 dimensions make strides free: the same elements, the order's own strides.
  return c.strides() == torch::IntArrayRef(strides) ? c : c.as_strided(n, strides);
}

}  // namespace odyssey
