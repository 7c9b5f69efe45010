/// @file cpu/pairs_avx512.hpp
/// @brief AVX-512 pair selection for groups of up to 64 rows. Internal.
///
/// Each group's advantages sit in one to four (float) or eight (double) registers, padded with
/// -infinity by a masked load. The rank of row i, #{j : a_j > a_i} + #{j < i : a_j == a_i}, is
/// accumulated with one broadcast and two compares per row j and vector, and stored with a
/// masked store; pass 2 of the pair kernel inverts the permutation. The ranks are integers computed
/// from the same comparisons as the portable kernel, and the pair weights use the same scalar
/// function, so both kernels give bit-identical outputs.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/simd.hpp>

#if SHUFFLE_R1_X86_SIMD

#include <cstdint>
#include <limits>
#include <type_traits>

namespace shuffle_r1::detail::cpu {

/// Register-level operations for one element type.
template <class T>
struct rank_lanes;

template <>
struct rank_lanes<float> {
  static constexpr int width = 16;
  static constexpr int max_vectors = 4;
  using vec = __m512;
  using ivec = __m512i;
  using mask = __mmask16;
  /// The first `valid` lanes (none when valid <= 0).
  static constexpr mask lane_mask(int valid) {
    return valid >= width ? mask(0xFFFF) : valid <= 0 ? mask(0) : mask((1u << valid) - 1u);
  }
  SHUFFLE_R1_AVX512_INLINE static vec load(const float* p, int valid) {
    const mask m = lane_mask(valid);
    return _mm512_mask_loadu_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), m, p);
  }
  SHUFFLE_R1_AVX512_INLINE static vec broadcast(float x) { return _mm512_set1_ps(x); }
  SHUFFLE_R1_AVX512_INLINE static mask greater(vec b, vec v) {
    return _mm512_cmp_ps_mask(b, v, _CMP_GT_OQ);
  }
  SHUFFLE_R1_AVX512_INLINE static mask equal(vec b, vec v) {
    return _mm512_cmp_ps_mask(b, v, _CMP_EQ_OQ);
  }
  SHUFFLE_R1_AVX512_INLINE static ivec zero() { return _mm512_setzero_si512(); }
  SHUFFLE_R1_AVX512_INLINE static ivec add_one(ivec r, mask m) {
    return _mm512_mask_add_epi32(r, m, r, _mm512_set1_epi32(1));
  }
  SHUFFLE_R1_AVX512_INLINE static ivec add(ivec x, ivec y) { return _mm512_add_epi32(x, y); }
  SHUFFLE_R1_AVX512_INLINE static void store(std::int32_t* p, ivec r, int valid) {
    _mm512_mask_storeu_epi32(p, lane_mask(valid), r);
  }
};

template <>
struct rank_lanes<double> {
  static constexpr int width = 8;
  static constexpr int max_vectors = 8;
  using vec = __m512d;
  using ivec = __m256i;
  using mask = __mmask8;
  /// The first `valid` lanes (none when valid <= 0).
  static constexpr mask lane_mask(int valid) {
    return valid >= width ? mask(0xFF) : valid <= 0 ? mask(0) : mask((1u << valid) - 1u);
  }
  SHUFFLE_R1_AVX512_INLINE static vec load(const double* p, int valid) {
    const mask m = lane_mask(valid);
    return _mm512_mask_loadu_pd(_mm512_set1_pd(-std::numeric_limits<double>::infinity()), m, p);
  }
  SHUFFLE_R1_AVX512_INLINE static vec broadcast(double x) { return _mm512_set1_pd(x); }
  SHUFFLE_R1_AVX512_INLINE static mask greater(vec b, vec v) {
    return _mm512_cmp_pd_mask(b, v, _CMP_GT_OQ);
  }
  SHUFFLE_R1_AVX512_INLINE static mask equal(vec b, vec v) {
    return _mm512_cmp_pd_mask(b, v, _CMP_EQ_OQ);
  }
  SHUFFLE_R1_AVX512_INLINE static ivec zero() { return _mm256_setzero_si256(); }
  SHUFFLE_R1_AVX512_INLINE static ivec add_one(ivec r, mask m) {
    return _mm256_mask_add_epi32(r, m, r, _mm256_set1_epi32(1));
  }
  SHUFFLE_R1_AVX512_INLINE static ivec add(ivec x, ivec y) { return _mm256_add_epi32(x, y); }
  SHUFFLE_R1_AVX512_INLINE static void store(std::int32_t* p, ivec r, int valid) {
    _mm256_mask_storeu_epi32(p, lane_mask(valid), r);
  }
};

/// rank[i] = rank of row i among the n <= V * width values at a (a need not be padded: lanes
/// past n are loaded as -infinity by masked loads, and rank[n..) is not written).
template <class T, int V>
SHUFFLE_R1_AVX512_INLINE void rank_sort_avx512(const T* a, int n, std::int32_t* rank) {
  using R = rank_lanes<T>;
  constexpr int W = R::width;
  typename R::vec v[V];
  typename R::ivec r[V];
  for (int q = 0; q < V; ++q) {
    v[q] = R::load(a + q * W, n - q * W);
    r[q] = R::zero();
  }
  constexpr unsigned all = W == 16 ? 0xFFFFu : 0xFFu;
  // Two accumulators per vector (even and odd j) halve the dependency chain of the adds.
  typename R::ivec r2[V];
  for (int q = 0; q < V; ++q)
    r2[q] = R::zero();
  const auto count = [&](int j, typename R::ivec* acc) SHUFFLE_R1_AVX512_INLINE_LAMBDA {
    const typename R::vec b = R::broadcast(a[j]);
    for (int q = 0; q < V; ++q) {
      // Lanes i = q * W + lane with i > j take the ties of row j.
      const int rel = j - q * W;
      const unsigned later = rel < 0 ? all : rel >= W - 1 ? 0u : (all << (rel + 1)) & all;
      const typename R::mask m =
          static_cast<typename R::mask>(R::greater(b, v[q]) | (R::equal(b, v[q]) & later));
      acc[q] = R::add_one(acc[q], m);
    }
  };
  int j = 0;
  for (; j + 1 < n; j += 2) {
    count(j, r);
    count(j + 1, r2);
  }
  if (j < n) count(j, r);
  for (int q = 0; q < V; ++q)
    r[q] = R::add(r[q], r2[q]);
  for (int q = 0; q < V; ++q)
    R::store(rank + q * W, r[q], n - q * W);
}

/// Ranks one group of 1 <= n <= 64 rows (values contiguous at a) with ceil(n / width)
/// registers.
template <class T>
SHUFFLE_R1_AVX512_INLINE void rank_group_avx512(const T* a, int n, std::int32_t* s) {
  // s receives the ranks; the caller inverts them later, when the stores have retired (reading
  // lanes of a just-stored vector back one by one stalls store forwarding).
  switch ((n + rank_lanes<T>::width - 1) / rank_lanes<T>::width) {
    case 1:
      rank_sort_avx512<T, 1>(a, n, s);
      break;
    case 2:
      rank_sort_avx512<T, 2>(a, n, s);
      break;
    case 3:
      rank_sort_avx512<T, 3>(a, n, s);
      break;
    case 4:
      rank_sort_avx512<T, 4>(a, n, s);
      break;
    case 5:
      rank_sort_avx512<T, 5>(a, n, s);
      break;
    case 6:
      rank_sort_avx512<T, 6>(a, n, s);
      break;
    case 7:
      rank_sort_avx512<T, 7>(a, n, s);
      break;
    default:
      rank_sort_avx512<T, 8>(a, n, s);
      break;
  }
}

/// Ranks of a group of 1 <= n <= 16 floats with one compare per row: rank(i) =
/// #{j : a_j > a_i} + #{j < i : a_j == a_i}, the second term being the population count of the
/// conflict mask of lane i (earlier lanes with the same bit pattern; -0.0 is first turned into
/// +0.0 by its bit pattern, so that bit equality is numeric equality in every rounding mode, and
/// the values are finite).
SHUFFLE_R1_AVX512_CD inline void rank16_conflict(const float* a, int n, std::int32_t* rank) {
  const __mmask16 valid = rank_lanes<float>::lane_mask(n);
  // Padding lanes: distinct NaN-free patterns below every real value are not needed, because
  // their conflicts and ranks are masked off; load them as -infinity like the other kernels.
  __m512 v =
      _mm512_mask_loadu_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), valid, a);
  // -0.0 -> +0.0 on the bits (-0.0 + 0.0 is -0.0 when rounding toward -infinity); the
  // comparisons below treat both zeros alike anyway.
  const __m512i loaded = _mm512_castps_si512(v);
  const __m512i bits = _mm512_maskz_mov_epi32(
      _mm512_cmpneq_epi32_mask(loaded, _mm512_set1_epi32(std::numeric_limits<std::int32_t>::min())),
      loaded);
  const __m512i ties = _mm512_maskz_popcnt_epi32(0xFFFF, _mm512_maskz_conflict_epi32(valid, bits));
  __m512i r0 = ties, r1 = _mm512_setzero_si512();
  const __m512i one = _mm512_set1_epi32(1);
  int j = 0;
  for (; j + 1 < n; j += 2) {
    r0 =
        _mm512_mask_add_epi32(r0, _mm512_cmp_ps_mask(_mm512_set1_ps(a[j]), v, _CMP_GT_OQ), r0, one);
    r1 = _mm512_mask_add_epi32(r1, _mm512_cmp_ps_mask(_mm512_set1_ps(a[j + 1]), v, _CMP_GT_OQ), r1,
                               one);
  }
  if (j < n)
    r0 =
        _mm512_mask_add_epi32(r0, _mm512_cmp_ps_mask(_mm512_set1_ps(a[j]), v, _CMP_GT_OQ), r0, one);
  _mm512_mask_storeu_epi32(rank, valid, _mm512_add_epi32(r0, r1));
}

}  // namespace shuffle_r1::detail::cpu

#endif  // SHUFFLE_R1_X86_SIMD
