/// @file cpu/advantage_avx512.hpp
/// @brief AVX-512 kernel of normalize_advantages for uniform groups of 8, 16 or 32 rows.
/// Internal: include <shuffle_r1/advantage.hpp>.
///
/// Eight groups per iteration. A group's rows sit in one vector of 8 doubles per 8 rows; the
/// canonical stride-halving sum (detail/tree_sum.hpp) is evaluated with the same pairings:
/// levels h >= 8 are vertical adds of whole vectors, levels h = 4, 2, 1 are done for eight groups
/// at once by `reduce8`, which interleaves the groups' halves with shuffles and adds exactly the
/// operand pairs (i, i + h) of the scalar tree. The result is bit-identical to the portable
/// kernel; tests/test_advantage.cpp compares them.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/simd.hpp>

#if SHUFFLE_R1_X86_SIMD

#include <shuffle_r1/detail/advantage_math.hpp>
#include <shuffle_r1/detail/int_math.hpp>
#include <shuffle_r1/types.hpp>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace shuffle_r1::detail::cpu {

/// Groups per chunk of the SIMD normalization kernels (AVX-512 and AVX2): a chunk's rewards stay
/// in L1 across its passes, and its constant groups fit one 64-bit mask.
inline constexpr int norm_chunk_groups = 64;

/// What the validation scan of a chunk learns: finiteness, the largest magnitude, and for doubles
/// only the constant groups and whether a group needs rescaling (the normalize pass finds
/// constant float groups, and floats never need rescaling).
struct norm_chunk_scan {
  std::uint64_t zero_variance = 0;  // bit: group index within the chunk
  bool finite = true;
  bool needs_scaling = false;
  double max_abs = 0.0;
};

}  // namespace shuffle_r1::detail::cpu

namespace shuffle_r1::detail::cpu::avx512 {

/// Groups handled per iteration.
inline constexpr int block = 8;

// Zero-masked forms with a full mask: the same results as the plain intrinsics, without the
// undefined merge operand that GCC 12's headers pass (and then warn about) in the plain forms.
constexpr __mmask8 all8 = 0xFF;
#define SR1_SHUF(a, b, imm) _mm512_maskz_shuffle_f64x2(all8, (a), (b), (imm))

/// Lane L of a reduce8 result holds group kLaneGroup[L]; group g sits in lane kGroupLane[g].
inline constexpr long long kGroupLane[8] = {0, 2, 4, 6, 1, 3, 5, 7};

/// Levels h = 4, 2, 1 of the stride-halving tree for eight vectors of 8 values (one group
/// each): returns the eight group sums, group g in lane kGroupLane[g].
SHUFFLE_R1_AVX512_INLINE __m512d reduce8(const __m512d v[8]) {
  SHUFFLE_R1_STRICT_FP_BODY
  // h = 4: lanes i and i + 4 of each vector (256-bit halves), two groups per result
  __m512d u[4];
  for (int k = 0; k < 4; ++k) {
    const __m512d a = SR1_SHUF(v[2 * k], v[2 * k + 1], 0x44);  // lo halves
    const __m512d b = SR1_SHUF(v[2 * k], v[2 * k + 1], 0xEE);  // hi halves
    u[k] = _mm512_add_pd(a, b);
  }
  // h = 2: lanes i and i + 2 of each group's 4 values (128-bit quarters), four groups per result
  __m512d w[2];
  for (int k = 0; k < 2; ++k) {
    const __m512d c = SR1_SHUF(u[2 * k], u[2 * k + 1], 0x88);  // quarters 0, 2
    const __m512d d = SR1_SHUF(u[2 * k], u[2 * k + 1], 0xDD);  // quarters 1, 3
    w[k] = _mm512_add_pd(c, d);
  }
  // h = 1: the two lanes of each quarter; lanes end up as groups 0 4 1 5 2 6 3 7
  return _mm512_add_pd(_mm512_maskz_unpacklo_pd(all8, w[0], w[1]),
                       _mm512_maskz_unpackhi_pd(all8, w[0], w[1]));
}

/// Lane of group g broadcast to all lanes.
SHUFFLE_R1_AVX512_INLINE __m512d lane_of(__m512d v, int g) {
  return _mm512_maskz_permutexvar_pd(all8, _mm512_set1_epi64(kGroupLane[g]), v);
}

/// Eight rows starting at p, as doubles.
template <class T>
SHUFFLE_R1_AVX512_INLINE __m512d load8(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return _mm512_maskz_cvtps_pd(all8, _mm256_loadu_ps(p));
  } else {
    return _mm512_loadu_pd(p);
  }
}

/// Stores eight doubles rounded to T; Stream: a non-temporal store (p aligned to the vector).
template <class T, bool Stream = false>
SHUFFLE_R1_AVX512_INLINE void store8(T* p, __m512d v) {
  if constexpr (std::is_same_v<T, float>) {
    const __m256 f = _mm512_maskz_cvtpd_ps(all8, v);
    if constexpr (Stream) {
      _mm256_stream_ps(p, f);
    } else {
      _mm256_storeu_ps(p, f);
    }
  } else if constexpr (Stream) {
    _mm512_stream_pd(p, v);
  } else {
    _mm512_storeu_pd(p, v);
  }
}

/// Levels h >= 8 of a group's sum: vertical adds of its V vectors down to one (stride halving:
/// for V = 4, (v0 + v2) + (v1 + v3)).
template <int V>
SHUFFLE_R1_AVX512_INLINE __m512d fold(const __m512d (&v)[V]) {
  SHUFFLE_R1_STRICT_FP_BODY
  if constexpr (V == 1) {
    return v[0];
  } else if constexpr (V == 2) {
    return _mm512_add_pd(v[0], v[1]);
  } else {
    static_assert(V == 4, "groups of 8, 16 or 32 rows");
    return _mm512_add_pd(_mm512_add_pd(v[0], v[2]), _mm512_add_pd(v[1], v[3]));
  }
}

/// Blocks of eight groups per chunk: the three passes below run over a chunk whose rewards stay
/// in L1, so that every pass works on independent blocks and the out-of-order core overlaps them
/// (one block alone is a long dependent chain of sums, a square root and divisions).
inline constexpr int chunk_blocks = norm_chunk_groups / block;

/// Loads group g's rows of a block.
template <class T, int P>
SHUFFLE_R1_AVX512_INLINE void load_group(const T* x, int g, __m512d (&v)[P / 8]) {
  for (int k = 0; k < P / 8; ++k)
    v[k] = load8(x + g * P + 8 * k);
}

/// Pass 1 over `blocks` (1..chunk_blocks) blocks of eight uniform groups of P rows at x: the
/// validation of the rewards (finite) fused with the means, so that a memory-bound batch is
/// read for validation and for the means at once. Writes the means to mu[0..8 * blocks), block
/// b's in the lane order of reduce8 (group g of the block at mu[8 * b + kGroupLane[g]]).
///
/// Floats: a group's double sum is finite exactly when its rewards are (32 floats cannot
/// overflow a double), so finiteness is one class test of the eight means per block; and
/// constant groups are left to normalize_chunk (zero_variance stays 0), which finds them
/// from their sums of squares. Doubles: every value is tested, and constant groups are found
/// here (a sum of doubles can overflow, and their squares can underflow).
template <class T, int P>
SHUFFLE_R1_AVX512 inline norm_chunk_scan scan_chunk(const T* x, int blocks, double* mu) {
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(P == 8 || P == 16 || P == 32, "AVX-512 kernel: groups of 8, 16 or 32 rows");
  constexpr int V = P / 8;
  norm_chunk_scan res;
  const __m512d inv_n = _mm512_set1_pd(1.0 / P);
  const __m512d sign_off = _mm512_castsi512_pd(_mm512_set1_epi64(0x7FFFFFFFFFFFFFFFll));
  const __m512d inf = _mm512_set1_pd(HUGE_VAL);
  __m512d amax = _mm512_setzero_pd();
  __mmask8 tiny = 0, bad = 0;
  // Floats: the largest magnitude is taken on the floats, 16 per register (the widening is
  // exact), and floats never need rescaling.
  constexpr bool as_float = std::is_same_v<T, float>;
  constexpr int VF = P >= 16 ? P / 16 : 1;                    // float registers per group
  constexpr __mmask16 float_lanes = P >= 16 ? 0xFFFF : 0xFF;  // the lanes a register holds
  __m512 amax_f = _mm512_setzero_ps();
  __mmask8 bad_f = 0;
  for (int b = 0; b < blocks; ++b) {
    const T* xb = x + b * block * P;
    __m512d s[block];
    for (int g = 0; g < block; ++g) {
      __m512d v[V];
      load_group<T, P>(xb, g, v);
      if constexpr (as_float) {
        // largest magnitude: vrangeps 0x0B = max(|a|, |b|) with the sign cleared
        for (int k = 0; k < VF; ++k)
          amax_f = _mm512_maskz_range_ps(
              0xFFFF, amax_f, _mm512_maskz_loadu_ps(float_lanes, xb + g * P + 16 * k), 0x0B);
      } else {
        const __m512d first = _mm512_set1_pd(static_cast<double>(xb[g * P]));
        __mmask8 equal = all8;
        for (int k = 0; k < V; ++k) {
          equal &= _mm512_cmp_pd_mask(v[k], first, _CMP_EQ_OQ);
          const __m512d a = _mm512_and_pd(v[k], sign_off);
          bad |= _mm512_cmp_pd_mask(a, inf, _CMP_NLT_UQ);  // infinite or NaN
          amax = _mm512_maskz_max_pd(all8, amax, a);
          tiny |= _mm512_cmp_pd_mask(a, _mm512_set1_pd(scale_floor), _CMP_LT_OQ) &
                  _mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_NEQ_OQ);
        }
        res.zero_variance |= static_cast<std::uint64_t>(equal == all8) << (b * block + g);
      }
      s[g] = fold<V>(v);
    }
    const __m512d means = _mm512_mul_pd(reduce8(s), inv_n);  // = sum / n: n is a power of 2
    if constexpr (as_float) bad_f |= _mm512_fpclass_pd_mask(means, 0x99);  // NaN or +-inf
    _mm512_storeu_pd(mu + 8 * b, means);
  }
  res.finite = bad == 0 && bad_f == 0;
  if constexpr (as_float) {
    alignas(64) float lanes[16];  // not _mm512_reduce_max_ps: GCC 12 warns inside it
    _mm512_store_ps(lanes, amax_f);
    for (const float a : lanes)
      res.max_abs = a > res.max_abs ? a : res.max_abs;
  } else {
    alignas(64) double lanes[8];  // not _mm512_reduce_max_pd: GCC 12 warns inside it
    _mm512_store_pd(lanes, amax);
    for (const double a : lanes)
      res.max_abs = a > res.max_abs ? a : res.max_abs;
  }
  // Doubles outside [scale_floor, scale_ceiling] need the portable kernel's rescaling
  // (conservative, per chunk).
  const std::uint64_t all = blocks == chunk_blocks ? ~0ull : (1ull << (blocks * block)) - 1;
  res.needs_scaling = std::is_same_v<T, double> && res.zero_variance != all &&
                      (res.max_abs > scale_ceiling || tiny != 0);
  return res;
}

/// Passes 2 and 3 over a chunk scanned by scan_chunk (means in mu_in, in its lane order; for
/// doubles, constant groups in zero_variance): normalizes `blocks` blocks of eight consecutive
/// uniform groups of P rows (P = 8, 16 or 32) at x. `est` is the estimator, eps its epsilon,
/// batch_den the batch denominator of batch_std. Writes advantages to out (with non-temporal
/// stores when Stream: out must then be aligned to 8 values) and, when non-null, the groups'
/// mean and std. Returns the number of constant groups.
///
/// Per-group values are broadcast from memory (a load, not a shuffle), and pass 3 multiplies
/// the deviations that pass 2 computed and kept in L1: the same operations on the same operands
/// as the portable kernel, with fewer shuffles and subtractions.
///
/// Float constant groups are found here: a group is constant exactly when its sum of squared
/// deviations is zero (docs/design.md: the sum of P equal floats is exact in double and P is a
/// power of 2, so their deviations are zeros; a nonzero deviation of float data is at least
/// 2^-154, whose square is a normal double). Like the doubles' constant groups they then get
/// +0 advantages (a zero-masked multiply, so +0 whatever the signs of zero rows or the
/// rounding mode), their first row as mean and 0 as std, as in the portable kernel.
template <class T, int P, bool Stream>
SHUFFLE_R1_AVX512 inline int normalize_chunk(const T* x, T* out, int blocks, const double* mu_in,
                                             std::uint64_t zero_variance, estimator est, int ddof,
                                             double eps, double batch_den, double* mean_out,
                                             double* std_out) {
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(P == 8 || P == 16 || P == 32, "AVX-512 kernel: groups of 8, 16 or 32 rows");
  constexpr int V = P / 8;  // vectors per group
  constexpr bool is_float = std::is_same_v<T, float>;
  // The deviations x - mu, from pass 2 to pass 3 (16 KB at most: 64 groups of 32 doubles, or
  // of 16 floats widened, in L1), and the factors c of pass 3, in reduce8's lane order.
  alignas(64) double dev[norm_chunk_groups * P];
  alignas(64) double factor[norm_chunk_groups];
  __m512d sigma[chunk_blocks];
  const __m512d inv_n = _mm512_set1_pd(1.0 / P);  // x / n == x * (1 / n): n is a power of 2
  const bool scaled = est == estimator::grpo || est == estimator::batch_std;
  // rloo: d * n/(n-1); mean_only: d * 1 (like the portable kernel)
  const double plain =
      est == estimator::rloo ? static_cast<double>(P) / static_cast<double>(P - 1) : 1.0;
  std::uint64_t zv = zero_variance;  // constant groups, bit per group (floats: set below)
  const __m512i order = _mm512_loadu_si512(kGroupLane);  // lane order -> group order

  // Pass 2: deviations, sums of deviations and squares, variance, factors.
  for (int b = 0; b < blocks; ++b) {
    const T* xb = x + b * block * P;
    __m512d sd[block], sq[block];
    for (int g = 0; g < block; ++g) {
      __m512d v[V], q[V];
      load_group<T, P>(xb, g, v);
      const __m512d m = _mm512_set1_pd(mu_in[8 * b + kGroupLane[g]]);
      for (int k = 0; k < V; ++k) {
        v[k] = _mm512_sub_pd(v[k], m);
        q[k] = _mm512_mul_pd(v[k], v[k]);
        _mm512_store_pd(dev + (b * block + g) * P + 8 * k, v[k]);
      }
      sd[g] = fold<V>(v);
      sq[g] = fold<V>(q);
    }
    const __m512d sum_d = reduce8(sd), sum_q = reduce8(sq);
    // variance_from_sums: (sum_q - sum_d^2 / n) / (n - ddof), clamped at 0
    const __m512d num = _mm512_sub_pd(sum_q, _mm512_mul_pd(_mm512_mul_pd(sum_d, sum_d), inv_n));
    __m512d var = ddof == 0 ? _mm512_mul_pd(num, inv_n)
                            : _mm512_div_pd(num, _mm512_set1_pd(static_cast<double>(P - 1)));
    var = _mm512_maskz_max_pd(all8, var, _mm512_setzero_pd());
    sigma[b] = _mm512_maskz_sqrt_pd(all8, var);
    if constexpr (is_float) {
      // zero sums of squares, in group order
      const __mmask8 flat = _mm512_cmp_pd_mask(_mm512_maskz_permutexvar_pd(all8, order, sum_q),
                                               _mm512_setzero_pd(), _CMP_EQ_OQ);
      zv |= static_cast<std::uint64_t>(flat) << (b * block);
    }
    __m512d c = _mm512_set1_pd(plain);
    if (scaled) {
      // inverse_denominator: 1 / den, den = sigma + eps (grpo) or the batch's (batch_std); a
      // zero den only occurs for constant groups, whose output is zero anyway (and a tiny one,
      // whose inverse overflows, too: pass 3 does not multiply constant groups)
      const __m512d d = est == estimator::grpo ? _mm512_add_pd(sigma[b], _mm512_set1_pd(eps))
                                               : _mm512_set1_pd(batch_den);
      const __mmask8 positive = _mm512_cmp_pd_mask(d, _mm512_setzero_pd(), _CMP_GT_OQ);
      c = _mm512_maskz_div_pd(positive, _mm512_set1_pd(1.0), d);
    }
    _mm512_store_pd(factor + 8 * b, c);
  }

  // Statistics before pass 3: with out == x (in place), pass 3 overwrites the rewards that a
  // zero-variance group reports as its mean.
  if (mean_out || std_out) {
    for (int b = 0; b < blocks; ++b) {
      alignas(64) double m[8], sdv[8];
      _mm512_store_pd(m, _mm512_maskz_permutexvar_pd(all8, order, _mm512_loadu_pd(mu_in + 8 * b)));
      _mm512_store_pd(sdv, _mm512_maskz_permutexvar_pd(all8, order, sigma[b]));
      for (int g = 0; g < block; ++g) {
        const int i = b * block + g;
        const bool constant = (zv >> i) & 1u;
        // zero-variance groups report their first row as mean and 0 as std, like the
        // portable kernel
        if (mean_out) mean_out[i] = constant ? static_cast<double>(x[i * P]) : m[g];
        if (std_out) std_out[i] = constant ? 0.0 : sdv[g];
      }
    }
  }

  // Pass 3: advantages d * c; +0 for constant groups (their lanes are not multiplied).
  for (int b = 0; b < blocks; ++b) {
    T* ob = out + b * block * P;
    for (int g = 0; g < block; ++g) {
      const __m512d c = _mm512_set1_pd(factor[8 * b + kGroupLane[g]]);
      const auto live = static_cast<__mmask8>(((zv >> (b * block + g)) & 1u) - 1u);
      for (int k = 0; k < V; ++k)
        store8<T, Stream>(
            ob + g * P + 8 * k,
            _mm512_maskz_mul_pd(live, _mm512_load_pd(dev + (b * block + g) * P + 8 * k), c));
    }
  }
  return popcount64(zv);
}

/// Orders non-temporal stores before what follows.
SHUFFLE_R1_AVX512 inline void store_fence() {
  _mm_sfence();
}

#undef SR1_SHUF

}  // namespace shuffle_r1::detail::cpu::avx512

#endif  // SHUFFLE_R1_X86_SIMD
