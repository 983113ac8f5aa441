// Which library computes float32 matrix products on the CPU. LibTorch's addmm/mm call the system
// BLAS; on Debian that is OpenBLAS 0.3.21, which does not know AMD Zen 5 and falls back to its
// AVX2 "Haswell" kernels (95 GFLOP/s on one core here). oneDNN's sgemm (dnnl_sgemm, the library
// LibTorch itself links for convolutions) JIT-compiles for the widest vector ISA the CPU has:
// 175-185 GFLOP/s on the same core for a ViT's layer shapes. Odyssey finds dnnl_sgemm at run
// time in the process (no build dependency; a LibTorch without a shared oneDNN, such as the pip
// wheels, simply keeps LibTorch's products) and models/linear.h routes linear layers through it.
#pragma once

#include <cstdint>
#include <string>

namespace odyssey {

enum class CpuGemm { kLibTorch, kOneDnn };

// Whether this process has oneDNN's dnnl_sgemm loaded.
bool onednn_sgemm_available();

// "oneDNN 2.6.3 sgemm" or "LibTorch (system BLAS)".
std::string cpu_gemm_name(CpuGemm g);

// Row-major C[m x n] = alpha * op(A) op(B) + beta * C, op(A) m x k, op(B) k x n; lda, ldb, ldc
// are row strides. Only where onednn_sgemm_available(); throws on a oneDNN error status.
void onednn_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc);

// train.cpu_gemm: "auto" (oneDNN where available, else LibTorch), "onednn" (an Error naming
// `key` where it is not available) or "libtorch".
CpuGemm resolve_cpu_gemm(const std::string& mode, const std::string& key);

// The process-wide choice (initially "auto" resolved); set once at start-up by the trainer.
CpuGemm cpu_gemm();
void set_cpu_gemm(CpuGemm g);

}  // namespace odyssey
