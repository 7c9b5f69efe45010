/// @file cpu/advantage_avx2.hpp
/// @brief AVX2 kernel of normalize_advantages for uniform groups of 8, 16 or 32 rows, for CPUs
/// without AVX-512. Internal: include <shuffle_r1/advantage.hpp>.
///
/// The AVX-512 kernel's scheme (cpu/advantage_avx512.hpp) with 256-bit vectors: four groups per
/// block, a group's rows in one vector of 4 doubles per 4 rows. Levels h >= 4 of the canonical
/// stride-halving sum (detail/tree_sum.hpp) are vertical adds of whole vectors; levels h = 2 and
/// h = 1 are done for the block's four groups at once by `reduce4`, with the operand pairs
/// (i, i + h) of the scalar tree. Bit-identical to the portable kernel; tests/test_advantage.cpp
/// compares them on every AVX2 CPU.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/advantage_avx512.hpp>
#include <shuffle_r1/cpu/simd.hpp>

#if SHUFFLE_R1_X86_SIMD

#include <shuffle_r1/detail/advantage_math.hpp>
#include <shuffle_r1/detail/int_math.hpp>
#include <shuffle_r1/types.hpp>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace shuffle_r1::detail::cpu::avx2 {

/// Groups handled per block, and blocks per chunk (a chunk is norm_chunk_groups groups, like the
/// AVX-512 kernel's, so that both fill the same per-chunk scratch).
inline constexpr int block = 4;
inline constexpr int chunk_blocks = norm_chunk_groups / block;

/// Lane L of a reduce4 result holds group kLaneGroup[L]; group g sits in lane kGroupLane[g].
inline constexpr int kGroupLane[4] = {0, 2, 1, 3};

/// Levels h = 2, 1 of the stride-halving tree for four vectors of 4 values (one group each):
/// returns the four group sums, group g in lane kGroupLane[g].
SHUFFLE_R1_AVX2_INLINE __m256d reduce4(const __m256d v[4]) {
  SHUFFLE_R1_STRICT_FP_BODY
  // h = 2: lanes i and i + 2 (128-bit halves), two groups per result
  const __m256d u0 = _mm256_add_pd(_mm256_permute2f128_pd(v[0], v[1], 0x20),
                                   _mm256_permute2f128_pd(v[0], v[1], 0x31));
  const __m256d u1 = _mm256_add_pd(_mm256_permute2f128_pd(v[2], v[3], 0x20),
                                   _mm256_permute2f128_pd(v[2], v[3], 0x31));
  // h = 1: the two lanes of each half; lanes end up as groups 0 2 1 3
  return _mm256_add_pd(_mm256_unpacklo_pd(u0, u1), _mm256_unpackhi_pd(u0, u1));
}

/// Lane of group g of a reduce4 result, broadcast to all lanes.
SHUFFLE_R1_AVX2_INLINE __m256d lane_of(const double* lanes, int g) {
  return _mm256_broadcast_sd(lanes + kGroupLane[g]);
}

/// Four rows starting at p, as doubles.
template <class T>
SHUFFLE_R1_AVX2_INLINE __m256d load4(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return _mm256_cvtps_pd(_mm_loadu_ps(p));
  } else {
    return _mm256_loadu_pd(p);
  }
}

/// Stores four doubles rounded to T; Stream: a non-temporal store (p aligned to the vector).
template <class T, bool Stream = false>
SHUFFLE_R1_AVX2_INLINE void store4(T* p, __m256d v) {
  if constexpr (std::is_same_v<T, float>) {
    const __m128 f = _mm256_cvtpd_ps(v);
    if constexpr (Stream) {
      _mm_stream_ps(p, f);
    } else {
      _mm_storeu_ps(p, f);
    }
  } else if constexpr (Stream) {
    _mm256_stream_pd(p, v);
  } else {
    _mm256_storeu_pd(p, v);
  }
}

/// Levels h >= 4 of a group's sum: vertical adds of its V vectors down to one, halving the
/// stride each time (V = 4: (v0 + v2) + (v1 + v3)).
template <int V>
SHUFFLE_R1_AVX2_INLINE __m256d fold(const __m256d (&v)[V]) {
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(V == 2 || V == 4 || V == 8, "groups of 8, 16 or 32 rows");
  __m256d w[V];
  for (int k = 0; k < V; ++k)
    w[k] = v[k];
  for (int h = V / 2; h >= 1; h /= 2)
    for (int k = 0; k < h; ++k)
      w[k] = _mm256_add_pd(w[k], w[k + h]);
  return w[0];
}

/// Loads group g's rows of a block.
template <class T, int P>
SHUFFLE_R1_AVX2_INLINE void load_group(const T* x, int g, __m256d (&v)[P / 4]) {
  for (int k = 0; k < P / 4; ++k)
    v[k] = load4(x + g * P + 4 * k);
}

/// True when all four lanes of a comparison result are set.
SHUFFLE_R1_AVX2_INLINE bool all_set(__m256d m) {
  return _mm256_movemask_pd(m) == 0xF;
}

/// Pass 1 over `blocks` (1..chunk_blocks) blocks of four uniform groups of P rows at x, like
/// avx512::scan_chunk: validation (finite), the largest magnitude, constant groups (doubles
/// only: float ones are found by normalize_chunk), whether the chunk needs rescaling (doubles
/// only), and the means (one vector per block, group g of block b in lane kGroupLane[g],
/// written to mu[4 b .. 4 b + 4)).
template <class T, int P>
SHUFFLE_R1_AVX2 inline norm_chunk_scan scan_chunk(const T* x, int blocks, double* mu) {
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(P == 8 || P == 16 || P == 32, "AVX2 kernel: groups of 8, 16 or 32 rows");
  constexpr int V = P / 4;
  constexpr bool is_double = std::is_same_v<T, double>;
  norm_chunk_scan res;
  const __m256d n = _mm256_set1_pd(static_cast<double>(P));
  const __m256d sign_off = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFll));
  const __m256d inf = _mm256_set1_pd(HUGE_VAL);
  const __m256d small = _mm256_set1_pd(scale_floor);
  const __m256d zero = _mm256_setzero_pd();
  __m256d amax = zero, tiny = zero, bad = zero;
  for (int b = 0; b < blocks; ++b) {
    const T* xb = x + b * block * P;
    __m256d s[block];
    for (int g = 0; g < block; ++g) {
      __m256d v[V];
      load_group<T, P>(xb, g, v);
      for (int k = 0; k < V; ++k)
        amax = _mm256_max_pd(amax, _mm256_and_pd(v[k], sign_off));
      if constexpr (is_double) {
        const __m256d first = _mm256_set1_pd(xb[g * P]);
        __m256d equal = _mm256_cmp_pd(v[0], first, _CMP_EQ_OQ);
        for (int k = 0; k < V; ++k) {
          if (k > 0) equal = _mm256_and_pd(equal, _mm256_cmp_pd(v[k], first, _CMP_EQ_OQ));
          const __m256d a = _mm256_and_pd(v[k], sign_off);
          bad = _mm256_or_pd(bad, _mm256_cmp_pd(a, inf, _CMP_NLT_UQ));  // infinite or NaN
          tiny = _mm256_or_pd(tiny, _mm256_and_pd(_mm256_cmp_pd(a, small, _CMP_LT_OQ),
                                                  _mm256_cmp_pd(a, zero, _CMP_NEQ_OQ)));
        }
        res.zero_variance |= static_cast<std::uint64_t>(all_set(equal)) << (b * block + g);
      }
      s[g] = fold<V>(v);
    }
    const __m256d sum = reduce4(s);
    // Floats: at most 32 of them, as doubles, cannot overflow a double sum, so a group's sum is
    // finite exactly when all its rows are.
    if constexpr (!is_double)
      bad = _mm256_or_pd(bad, _mm256_cmp_pd(_mm256_and_pd(sum, sign_off), inf, _CMP_NLT_UQ));
    _mm256_storeu_pd(mu + block * b, _mm256_div_pd(sum, n));
  }
  res.finite = _mm256_movemask_pd(bad) == 0;
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, amax);
  for (const double a : lanes)
    res.max_abs = a > res.max_abs ? a : res.max_abs;
  // Doubles outside [scale_floor, scale_ceiling] need the portable kernel's rescaling
  // (conservative, per chunk).
  const std::uint64_t all = blocks == chunk_blocks ? ~0ull : (1ull << (blocks * block)) - 1;
  res.needs_scaling = is_double && res.zero_variance != all &&
                      (res.max_abs > scale_ceiling || _mm256_movemask_pd(tiny) != 0);
  return res;
}

/// Passes 2 and 3 over a chunk scanned by scan_chunk, like avx512::normalize_chunk: normalizes
/// `blocks` blocks of four consecutive uniform groups of P rows at x with the means mu_in and the
/// constant groups zero_variance; `est` is the estimator, eps its epsilon, batch_den the batch
/// denominator of batch_std. Writes advantages to out (non-temporal stores when Stream: out must
/// then be aligned to 4 values) and, when non-null, the groups' mean and std. Returns the number
/// of constant groups: for doubles those of zero_variance, for floats those with a zero sum of
/// squares (see avx512::normalize_chunk).
template <class T, int P, bool Stream>
SHUFFLE_R1_AVX2 inline int normalize_chunk(const T* x, T* out, int blocks, const double* mu_in,
                                           std::uint64_t zero_variance, estimator est, int ddof,
                                           double eps, double batch_den, double* mean_out,
                                           double* std_out) {
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(P == 8 || P == 16 || P == 32, "AVX2 kernel: groups of 8, 16 or 32 rows");
  constexpr int V = P / 4;  // vectors per group
  // Per block, in reduce4's lane order (like the means mu_in): multipliers of pass 3 (1 / den),
  // stds.
  alignas(32) double den[chunk_blocks][block], sigma[chunk_blocks][block];
  const __m256d n = _mm256_set1_pd(static_cast<double>(P));
  const __m256d zero = _mm256_setzero_pd();
  // Pass 2 keeps the deviations x - mean (as doubles) for pass 3 (8 KB for P = 16, in L1).
  alignas(32) double dev[norm_chunk_groups * P];

  // Pass 2: sums of deviations and squares per block, then (2b) variance and denominators for
  // all blocks in a loop of its own: each block's chain of a division, a square root and a
  // division is long, and separate short iterations let the core overlap the chains.
  __m256d sum_d[chunk_blocks], sum_q[chunk_blocks];
  for (int b = 0; b < blocks; ++b) {
    const T* xb = x + b * block * P;
    __m256d sd[block], sq[block];
    for (int g = 0; g < block; ++g) {
      __m256d v[V], q[V];
      load_group<T, P>(xb, g, v);
      const __m256d m = lane_of(mu_in + block * b, g);
      for (int k = 0; k < V; ++k) {
        v[k] = _mm256_sub_pd(v[k], m);
        _mm256_store_pd(dev + (b * block + g) * P + 4 * k, v[k]);
        q[k] = _mm256_mul_pd(v[k], v[k]);
      }
      sd[g] = fold<V>(v);
      sq[g] = fold<V>(q);
    }
    sum_d[b] = reduce4(sd);
    sum_q[b] = reduce4(sq);
  }
  const __m256d dof = _mm256_set1_pd(static_cast<double>(P - ddof));
  std::uint64_t zv = zero_variance;  // constant groups, bit per group (floats: set below)
  for (int b = 0; b < blocks; ++b) {
    // variance_from_sums: (sum_q - sum_d^2 / n) / (n - ddof), clamped at 0
    const __m256d num =
        _mm256_sub_pd(sum_q[b], _mm256_div_pd(_mm256_mul_pd(sum_d[b], sum_d[b]), n));
    const __m256d var = _mm256_max_pd(_mm256_div_pd(num, dof), zero);
    const __m256d sg = _mm256_sqrt_pd(var);
    _mm256_store_pd(sigma[b], sg);
    // inverse_denominator: 1 / den, den = sigma + eps (grpo) or the batch's (batch_std); a zero
    // den only occurs for constant groups, whose output is zero anyway
    const __m256d d =
        est == estimator::grpo ? _mm256_add_pd(sg, _mm256_set1_pd(eps)) : _mm256_set1_pd(batch_den);
    const __m256d positive = _mm256_cmp_pd(d, zero, _CMP_GT_OQ);
    _mm256_store_pd(den[b], _mm256_and_pd(positive, _mm256_div_pd(_mm256_set1_pd(1.0), d)));
    if constexpr (std::is_same_v<T, float>) {
      // constant float groups: a zero sum of squares (see avx512::normalize_chunk); lanes hold
      // groups 0 2 1 3, so bits 1 and 2 swap into group order
      const auto m =
          static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(sum_q[b], zero, _CMP_EQ_OQ)));
      const std::uint64_t flat = (m & 9u) | ((m & 2u) << 1) | ((m & 4u) >> 1);
      zv |= flat << (b * block);
    }
  }

  // Statistics before pass 3: with out == x (in place), pass 3 overwrites the rewards that a
  // zero-variance group reports as its mean.
  if (mean_out || std_out) {
    for (int b = 0; b < blocks; ++b) {
      for (int g = 0; g < block; ++g) {
        const int i = b * block + g;
        const bool constant = (zv >> i) & 1u;
        // zero-variance groups report their first row as mean and 0 as std, like the
        // portable kernel
        if (mean_out)
          mean_out[i] = constant ? static_cast<double>(x[i * P]) : mu_in[block * b + kGroupLane[g]];
        if (std_out) std_out[i] = constant ? 0.0 : sigma[b][kGroupLane[g]];
      }
    }
  }

  // Pass 3: advantages: d * (1 / den) for grpo/batch_std, d * 1 for mean_only, d * n/(n-1) for
  // rloo, like the portable kernel.
  const bool scaled = est == estimator::grpo || est == estimator::batch_std;
  const __m256d f = _mm256_set1_pd(
      est == estimator::rloo ? static_cast<double>(P) / static_cast<double>(P - 1) : 1.0);
  for (int b = 0; b < blocks; ++b) {
    T* ob = out + b * block * P;
    for (int g = 0; g < block; ++g) {
      const double* d = dev + (b * block + g) * P;
      const __m256d c = scaled ? lane_of(den[b], g) : f;
      const bool constant = (zv >> (b * block + g)) & 1u;
      for (int k = 0; k < V; ++k) {
        const __m256d a = _mm256_mul_pd(_mm256_load_pd(d + 4 * k), c);
        store4<T, Stream>(ob + g * P + 4 * k, constant ? zero : a);
      }
    }
  }
  return popcount64(zv);
}

/// Orders non-temporal stores before what follows.
SHUFFLE_R1_AVX2 inline void store_fence() {
  _mm_sfence();
}

}  // namespace shuffle_r1::detail::cpu::avx2

#endif  // SHUFFLE_R1_X86_SIMD
