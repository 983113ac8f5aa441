// The light training transform and the evaluation transform in one pass over the stored bytes:
// uint8 NHWC in, normalised float NCHW out, each value read from a per-channel table of the 256
// normalised byte values. The table is made by the tensor ops of the general path (to_float_nchw,
// then (x - mean) / std), so the output is bit-identical to that path's, at one read and one write
// per value instead of a pass per stage.
#pragma once

#include <torch/types.h>

#include "data/augment.h"

namespace odyssey {

// images_u8: uint8 [B,H,W,C] on the CPU. Optional, per image: a crop of the zero-padded image at
// offsets (dy, dx: int64 [B] in [0, 2*pad]; the padding is the byte value 0, as crop_padded's
// zeros), then a horizontal flip where flips (bool [B]) is set. Undefined tensors skip a stage.
// Threads: LibTorch's intra-op pool, over images.
torch::Tensor normalize_u8(const torch::Tensor& images_u8, const Normalize& norm, int64_t pad = 0,
                           const torch::Tensor& dy = {}, const torch::Tensor& dx = {},
                           const torch::Tensor& flips = {});

}  // namespace odyssey
