/// @file cpu/simd.hpp
/// @brief Run-time selection of the CPU kernels' instruction set. Internal.
///
/// The hot kernels exist as portable C++ (any compiler, any CPU), AVX2 clones of it and AVX-512
/// versions, compiled with GCC/clang `target` attributes, so that a default (x86-64 baseline)
/// build still uses AVX2 or AVX-512 on CPUs that have them, chosen once at run time with
/// `__builtin_cpu_supports`. All versions perform the same IEEE-754 operations on the same operands
/// in the same order, so they give bit-identical results (tests compare them bit for bit); the
/// choice only changes speed. Define SHUFFLE_R1_NO_SIMD to compile the portable versions only.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#if !defined(SHUFFLE_R1_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && \
    defined(__x86_64__) && !defined(__CUDA_ARCH__) && !defined(__NVCOMPILER)
#define SHUFFLE_R1_X86_SIMD 1
#include <immintrin.h>
#else
#define SHUFFLE_R1_X86_SIMD 0
#endif

#if SHUFFLE_R1_X86_SIMD
#if defined(__clang__)
/// AVX-512 kernels: target attribute; contraction is forbidden by the body pragma.
#define SHUFFLE_R1_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#else
/// AVX-512 kernels: target attribute plus the strict-FP option of config.hpp (GCC contracts
/// intrinsic multiplies and adds like any other under -ffp-contract=fast).
#define SHUFFLE_R1_AVX512 \
  __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"), optimize("fp-contract=off")))
#endif
/// Small AVX-512 helpers that take or return vectors: always inlined into their AVX-512 caller
/// (a vector crossing a call boundary compiled without AVX-512 would change the ABI).
#define SHUFFLE_R1_AVX512_INLINE SHUFFLE_R1_AVX512 __attribute__((always_inline)) inline
/// AVX-512 with conflict detection and vector popcount (Ice Lake, Zen 4 and later).
#if defined(__clang__)
#define SHUFFLE_R1_AVX512_CD \
  __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512cd,avx512vpopcntdq")))
#else
#define SHUFFLE_R1_AVX512_CD                                                            \
  __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512cd,avx512vpopcntdq"), \
                 optimize("fp-contract=off")))
#endif
/// The same for a lambda (placed after the parameter list).
#define SHUFFLE_R1_AVX512_INLINE_LAMBDA SHUFFLE_R1_AVX512 __attribute__((always_inline))
/// AVX2 clones of portable kernels (no FMA: AVX2 does not imply it, and contraction is off
/// anyway). `flatten` inlines the portable code into the clone, so that the compiler
/// vectorizes it with 256-bit registers; the operations stay the portable ones.
#if defined(__clang__)
#define SHUFFLE_R1_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt"), flatten))
#else
#define SHUFFLE_R1_AVX2 \
  __attribute__((target("avx2,bmi,bmi2,popcnt"), optimize("fp-contract=off"), flatten))
#endif
/// Small AVX2 helpers that take or return vectors: always inlined into their AVX2 caller.
#if defined(__clang__)
#define SHUFFLE_R1_AVX2_INLINE __attribute__((target("avx2,bmi,bmi2,popcnt"), always_inline)) inline
#else
#define SHUFFLE_R1_AVX2_INLINE \
  __attribute__((target("avx2,bmi,bmi2,popcnt"), optimize("fp-contract=off"), always_inline)) inline
#endif
#endif

namespace shuffle_r1::detail::cpu {

/// True when the AVX-512 kernels may run: compiled in and supported by this CPU.
inline bool has_avx512() noexcept {
#if SHUFFLE_R1_X86_SIMD
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  return yes;
#else
  return false;
#endif
}

/// True when the AVX2 clones may run: compiled in and supported by this CPU.
inline bool has_avx2() noexcept {
#if SHUFFLE_R1_X86_SIMD
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") &&
                          __builtin_cpu_supports("popcnt");
  return yes;
#else
  return false;
#endif
}

/// True when the AVX-512 kernels that also need AVX512CD and AVX512_VPOPCNTDQ may run.
inline bool has_avx512_cd() noexcept {
#if SHUFFLE_R1_X86_SIMD
  static const bool yes = has_avx512() && __builtin_cpu_supports("avx512cd") &&
                          __builtin_cpu_supports("avx512vpopcntdq");
  return yes;
#else
  return false;
#endif
}

}  // namespace shuffle_r1::detail::cpu
