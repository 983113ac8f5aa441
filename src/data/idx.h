// Readers of the IDX format (MNIST, Fashion-MNIST), plain or gzip-compressed.
#pragma once

#include <torch/types.h>

#include <string>

namespace odyssey {

// IDX3 images (magic 0x00000803) -> uint8 [N, rows, cols, 1].
torch::Tensor read_idx_images(const std::string& path);
// IDX1 labels (magic 0x00000801) -> int64 [N].
torch::Tensor read_idx_labels(const std::string& path);

}  // namespace odyssey
