// Where a rank trains: train.device resolved to a torch::Device (GPU local_rank mod visible GPUs),
// and channels-last memory order for a model's weights and inputs (train.channels_last).
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <string>

namespace odyssey {

// Whether this process can train on CUDA: LibTorch built with CUDA and at least one GPU visible.
bool cuda_usable();

// setting: "cpu" or "cuda" ("auto" is decided by the caller, which asks every rank). Throws an
// Error naming train.device (and `source`, the config file) when "cuda" cannot run here.
torch::Device resolve_device(const std::string& setting, int local_rank, const std::string& source);

// What says this host gives the job GPUs, for a warning when train.device = "auto" chose the CPU:
// "CUDA_VISIBLE_DEVICES=0,1", "SLURM_JOB_GPUS=0", "/dev/nvidia0" (outside a SLURM job), or ""
// when nothing does (also when CUDA_VISIBLE_DEVICES is set to hide every GPU: "", "-1",
// "NoDevFiles").
std::string gpu_evidence();

// Why "auto" chose the CPU for a job on GPUs: this LibTorch has no CUDA, it sees no GPU, GPU
// gradients cannot be reduced (no NCCL, or dist.backend = "mpi" with several ranks), or (none of
// those on this rank) another rank has no usable GPU.
std::string cpu_choice_reason(bool gpu_reducible, bool nccl_built, int ranks);

// TensorFloat-32 for CUDA float32 convolutions (cuDNN) and matrix products (cuBLAS), or IEEE
// float32 for both (train.tf32); process-wide, harmless without CUDA.
void set_tf32(bool on);

// Every 4-d parameter and buffer of m re-laid out channels-last (NHWC), in place: the same
// tensors (optimizers and hooks keep them), other strides.
void to_channels_last(torch::nn::Module& m);

// x in the memory order the model expects, with that order's own strides: a 4-d batch
// channels-last when asked, else NCHW. A [N, 1, H, W] batch is contiguous in both orders, and
// LibTorch's convolutions follow its strides, not the weights': one made by permuting NHWC pixels
// keeps channels-last strides and runs the whole network channels-last, a freshly made one keeps
// NCHW strides and runs it NCHW, whatever train.channels_last says, unless re-strided here.
torch::Tensor memory_order(const torch::Tensor& x, bool channels_last);

}  // namespace odyssey
