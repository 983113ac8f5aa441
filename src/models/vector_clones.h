// ODYSSEY_VECTOR_CLONES: put before a plain C++ kernel so GCC builds it for AVX-512, AVX2 and
// baseline x86-64 and picks the widest the machine has at load time (one binary runs everywhere).
// Empty on other compilers and architectures.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ODYSSEY_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ODYSSEY_VECTOR_CLONES
#endif
