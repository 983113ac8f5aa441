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

// Every 4-d parameter and buffer of m re-laid out channels-last (NHWC), in place: the same
// tensors (optimizers and hooks keep them), other strides.
void to_channels_last(torch::nn::Module& m);

// x in the memory order the model expects: a 4-d batch channels-last when asked, else NCHW with
// NCHW's own strides. (A [N, 1, H, W] batch made by permuting NHWC pixels counts as contiguous
// but keeps channels-last strides; LibTorch's convolutions then run the whole network
// channels-last, which train.channels_last = false must not mean.)
torch::Tensor memory_order(const torch::Tensor& x, bool channels_last);

}  // namespace odyssey
