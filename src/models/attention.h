// The core of multi-head self-attention, softmax(Q K^T / sqrt(hd)) V for every head, on the
// projected q, k, v as one tensor [B, T, 3D] (torch.nn.MultiheadAttention's in_proj layout: q,
// k, v stacked on the last dimension, head h in columns h*hd .. (h+1)*hd - 1 of each), returning
// [B, T, D] with the heads side by side, ready for out_proj. With oneDNN's sgemm (models/
// cpu_gemm.h) on CPU float32 tensors outside autocast, one autograd node does it all: its matrix
// products read each head's q, k, v in place through row strides and write the output and the
// gradients in place, so the permute, contiguous and transpose copies of the plain LibTorch path
// are gone; elsewhere it is that plain path (LibTorch 2.x: scaled_dot_product_attention).
#pragma once

#include <torch/torch.h>

namespace odyssey {

torch::Tensor self_attention_core(const torch::Tensor& qkv, int64_t heads);

// The same attention for one query per image: q [B, 1, D] against the keys and values [B, T, 2D]
// (k then v on the last dimension, heads as above), returning [B, 1, D]; LibTorch's operators
// (LibTorch 2.x: scaled_dot_product_attention). A ViT's last block needs no more (models/vit.h).
torch::Tensor single_query_attention(const torch::Tensor& q, const torch::Tensor& kv, int64_t heads);

// Whether self_attention_core runs its oneDNN node for this tensor.
bool onednn_attention_applies(const torch::Tensor& qkv);

}  // namespace odyssey
