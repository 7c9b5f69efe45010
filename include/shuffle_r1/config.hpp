/// @file config.hpp
/// @brief Compiler and platform configuration: host/device annotations, strict floating point.
///
/// Determinism across builds is a promise of this library (see docs/design.md, "Determinism"):
/// the same inputs, seed and step give bit-identical outputs whatever the optimisation level,
/// language standard, instruction set (-march=native or not) or backend. Two things in a
/// compiler can break that, and this header neutralises both for the library's own code:
///
/// - contraction of `a * b + c` into a fused multiply-add, which GCC does by default whenever the
///   target has FMA (for example under -march=native) and clang does within one expression;
/// - `-ffast-math`, which lets the compiler reassociate sums. It is not neutralised (no portable
///   way exists); the library's finiteness checks work on bit patterns so they stay correct, but
///   the bit-identity promise is void under `-ffast-math`.
#pragma once

#include <shuffle_r1/version.hpp>

#if defined(_MSVC_LANG)
#define SHUFFLE_R1_CPLUSPLUS _MSVC_LANG
#else
#define SHUFFLE_R1_CPLUSPLUS __cplusplus
#endif
#if SHUFFLE_R1_CPLUSPLUS < 201703L
#error "shuffle_r1 needs C++17 or later"
#endif

/// Marks functions callable from host and device code when compiled by nvcc.
#if defined(__CUDACC__)
#define SHUFFLE_R1_HD __host__ __device__
#else
#define SHUFFLE_R1_HD
#endif

/// True while compiling device code (nvcc's device pass).
#if defined(__CUDA_ARCH__)
#define SHUFFLE_R1_DEVICE_PASS 1
#else
#define SHUFFLE_R1_DEVICE_PASS 0
#endif

/// SHUFFLE_R1_STRICT_FP goes before a function definition, SHUFFLE_R1_STRICT_FP_BODY at the
/// start of its body. Together they forbid FMA contraction in that function on host compilers:
/// GCC through a per-function option (GCC then refuses to inline the function into a caller
/// with other options, so the guarantee survives), clang through its scoped pragma (which marks
/// the instructions themselves, so it survives inlining). Device code does not rely on these:
/// it spells its arithmetic with the `__dmul_rn`-family intrinsics, which nvcc never fuses.
#if defined(__clang__)
#define SHUFFLE_R1_STRICT_FP
#define SHUFFLE_R1_STRICT_FP_BODY _Pragma("clang fp contract(off)")
#elif defined(__GNUC__) && !defined(__NVCOMPILER) && !defined(__INTEL_COMPILER)
#define SHUFFLE_R1_STRICT_FP __attribute__((optimize("fp-contract=off")))
#define SHUFFLE_R1_STRICT_FP_BODY
#elif defined(_MSC_VER)
// MSVC does not contract unless /fp:contract is given.
#define SHUFFLE_R1_STRICT_FP
#define SHUFFLE_R1_STRICT_FP_BODY
#else
#define SHUFFLE_R1_STRICT_FP
#define SHUFFLE_R1_STRICT_FP_BODY
#endif

/// Forces inlining of small internal helpers (so that an AVX-512 caller compiles them for
/// AVX-512 too).
#if defined(__GNUC__) || defined(__clang__)
#define SHUFFLE_R1_ALWAYS_INLINE __attribute__((always_inline))
#else
#define SHUFFLE_R1_ALWAYS_INLINE
#endif

/// Set by the shuffle_r1::cuda CMake target; the CUDA overloads live in the .cuh headers.
#if defined(SHUFFLE_R1_ENABLE_CUDA) && defined(__CUDACC__)
#define SHUFFLE_R1_HAS_CUDA 1
#else
#define SHUFFLE_R1_HAS_CUDA 0
#endif

/// Guard used by headers under detail/ and cpu/: they refuse direct inclusion.
#define SHUFFLE_R1_CONFIG_INCLUDED 1
