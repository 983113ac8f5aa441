#include "models/cpu_gemm.h"

#include <dlfcn.h>

#include <atomic>

#include "common/error.h"

namespace odyssey {
namespace {

// oneDNN's C API (dnnl.h, dnnl_types.h): dnnl_dim_t is int64_t, dnnl_success is 0.
using SgemmFn = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t,
                        const float*, int64_t, float, float*, int64_t);
struct DnnlVersion {
  int major, minor, patch;
  const char* hash;
  unsigned cpu_runtime, gpu_runtime;
};
using VersionFn = const DnnlVersion* (*)();

SgemmFn sgemm_fn() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  return fn;
}

std::atomic<int> g_choice{-1};  // -1: not set yet, "auto"

}  // namespace

bool onednn_sgemm_available() { return sgemm_fn() != nullptr; }

std::string cpu_gemm_name(CpuGemm g) {
  if (g == CpuGemm::kLibTorch) return "LibTorch (system BLAS)";
  auto version = reinterpret_cast<VersionFn>(dlsym(RTLD_DEFAULT, "dnnl_version"));
  if (!version) return "oneDNN sgemm";
  const DnnlVersion* v = version();
  return ODY_MSG("oneDNN " << v->major << "." << v->minor << "." << v->patch << " sgemm");
}

void onednn_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc) {
  const int status = sgemm_fn()(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda,
                                b, ldb, beta, c, ldc);
  ODY_CHECK(status == 0,
            ODY_MSG("oneDNN sgemm failed with status " << status << " (m " << m << ", n " << n
                                                       << ", k " << k << ")"),
            "set train.cpu_gemm = \"libtorch\" to use LibTorch's matrix products");
}

CpuGemm resolve_cpu_gemm(const std::string& mode, const std::string& key) {
  if (mode == "libtorch") return CpuGemm::kLibTorch;
  if (mode == "onednn") {
    ODY_CHECK(onednn_sgemm_available(),
              key + " = \"onednn\" but this process has no oneDNN (dnnl_sgemm not found)",
              "LibTorch builds that link oneDNN statically hide it; use \"auto\" or \"libtorch\"");
    return CpuGemm::kOneDnn;
  }
  ODY_CHECK(mode == "auto", key + " = \"" + mode + "\" is not one of auto, onednn, libtorch", "");
  return onednn_sgemm_available() ? CpuGemm::kOneDnn : CpuGemm::kLibTorch;
}

CpuGemm cpu_gemm() {
  int c = g_choice.load(std::memory_order_relaxed);
  if (c < 0) return resolve_cpu_gemm("auto", "cpu_gemm");
  return static_cast<CpuGemm>(c);
}

void set_cpu_gemm(CpuGemm g) { g_choice.store(static_cast<int>(g), std::memory_order_relaxed); }

}  // namespace odyssey
