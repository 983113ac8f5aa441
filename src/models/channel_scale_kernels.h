// The backward of y = x * s (s one factor per image and channel) on float arrays, in plain C++
// that the compiler vectorises; models/channel_scale.h uses it.
#pragma once

#include <cstdint>

namespace odyssey {

// Image n of x and dy ([C, P] planes if !channels_last, [P, C] pixels if channels_last; P pixels
// per image): dx = dy * s[c] and ds[c] = the sum over the image's pixels of dy * x, in pixel order
// (channels-last) or in one running sum per plane (NCHW). s and ds: [C] for image n.
void channel_scale_backward(const float* x, const float* dy, const float* s, float* dx, float* ds,
                            int64_t channels, int64_t pixels, bool channels_last);

}  // namespace odyssey
