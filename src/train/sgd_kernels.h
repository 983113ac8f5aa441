// PyTorch's SGD update on one float32 parameter in one pass over memory, for the CPU: where the
// multi-tensor form (train/optimizer.cpp) makes four passes (the decayed gradient, the momentum
// buffer's scale, its sum, the step) and writes a temporary the size of the parameters, this reads
// p, g and buf once and writes p and buf once. It rounds as LibTorch's CPU kernels do - an add with
// a factor as one fused multiply-add, the buffer's scale and its sum rounded separately - so the
// parameters and the buffer get the same bits as the per-operation form (tested; on CPUs where
// LibTorch runs its AVX2 or AVX-512 kernels, whose scaled adds are fused multiply-adds).
#pragma once

#include <cstdint>

namespace odyssey {

struct SgdFactors {
  float weight_decay;  // g' = g + weight_decay * p (0: none)
  float momentum;      // buf = momentum * buf + g' (0: no buffer; the step is g')
  bool nesterov;       // step g' + momentum * buf instead of buf
  float rate;          // p += rate * step (-lr)
};

// p, g (read only), buf (unused without momentum): n floats each.
void sgd_update(float* p, const float* g, float* buf, int64_t n, const SgdFactors& f);

}  // namespace odyssey
