// ODYSSEY_VECTOR_CLONES: put before a plain C++ kernel so GCC builds it for AVX-512, AVX2 and
// baseline x86-64 and picks the widest the machine has at load time (one binary runs everywhere).
// Empty on other compilers and architectures.
#pragma once

// ODYSSEY_FMA_CLONES: the same with FMA in the middle clone (AVX2 does not imply it), for kernels
// whose std::fma must be one instruction (baseline x86-64 gets glibc's exact software fma).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ODYSSEY_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define ODYSSEY_FMA_CLONES __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define ODYSSEY_VECTOR_CLONES
#define ODYSSEY_FMA_CLONES
#endif
