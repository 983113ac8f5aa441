// The filter gradient of a depthwise 2-D convolution on float data (one filter per channel, zero
// padding, no dilation), in plain C++ that the compiler vectorises: NCHW one channel across the
// whole batch at a time, or channels-last a block of channels at a time. LibTorch 1.13's CPU filter gradient takes a slow generic path for every
// 5x5 filter and for 3x3 filters on small planes (20-80x its forward; 7-11 ms where this takes
// 0.2-2 ms for EfficientNet-B0's layers at 64 px, batch 32); models/depthwise_conv.h uses them.
#pragma once

#include <cstdint>

namespace odyssey {

struct DepthwiseGeometry {
  int64_t in_h, in_w;    // input plane
  int64_t out_h, out_w;  // output plane
  int64_t kernel_h, kernel_w;
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
};

// One channel over `batch` images: plane n of the input starts at input + n * in_stride, of the
// output at out + n * out_stride (channels x plane size in NCHW).
struct ChannelPlanes {
  int64_t batch, in_stride, out_stride;
};

// grad_filter (kernel_h x kernel_w, overwritten) of one channel: the correlation of its input
// planes with its output-gradient planes, summed over the batch in a fixed order (whatever the
// thread count). For planes of at least ~16x16 (one long vector loop per tap).
void depthwise_grad_filter_channel(const float* grad_out, const float* input, float* grad_filter,
                                   const ChannelPlanes& planes, const DepthwiseGeometry& g);

// The same for channels [c0, c1) at once from channels-last copies of the output gradient
// [batch, out_h, out_w, channels] and the input [batch, in_h, in_w, channels] (vector loops run
// across channels); grad_filter is [channels, kernel_h * kernel_w] as the weight. For small
// planes (8x8 and below), where the per-channel layout spends its time copying.
void depthwise_grad_filter_nhwc(const float* grad_out, const float* input, float* grad_filter,
                                int64_t batch, int64_t channels, int64_t c0, int64_t c1,
                                const DepthwiseGeometry& g);

}  // namespace odyssey
