/// @file cpu/pairs_avx2.hpp
/// @brief AVX2 ranks of PTS for groups of up to 32 float or 16 double rows. Internal.
///
/// The rank of row i is #{j : a_j > a_i} + #{j < i : a_j == a_i}, i.e. #{j > i : a_j > a_i} +
/// #{j < i : a_j >= a_i}. A group's values sit in one to four registers (row i in vector i / W,
/// lane i % W); row j is broadcast and compared with every vector: vectors wholly after j need
/// `>=`, vectors wholly before it `>`, and only the vector that holds j itself needs both and a
/// blend by lane (lanes after j take `>=`). One or two comparisons per vector and row, against
/// the two comparisons, mask and add per element of the portable ranker. The ranks are the same
/// integers; tests/test_pairs.cpp compares the kernels on every size from 1 to 70.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/simd.hpp>

#if SHUFFLE_R1_X86_SIMD

#include <cstdint>
#include <cstring>

namespace shuffle_r1::detail::cpu::avx2 {

/// kAfter32[j][l]: all ones when lane l comes after lane j (l > j), 8 lanes of 32 bits.
alignas(32) inline constexpr std::int32_t kAfter32[8][8] = {
    {0, -1, -1, -1, -1, -1, -1, -1}, {0, 0, -1, -1, -1, -1, -1, -1}, {0, 0, 0, -1, -1, -1, -1, -1},
    {0, 0, 0, 0, -1, -1, -1, -1},    {0, 0, 0, 0, 0, -1, -1, -1},    {0, 0, 0, 0, 0, 0, -1, -1},
    {0, 0, 0, 0, 0, 0, 0, -1},       {0, 0, 0, 0, 0, 0, 0, 0}};
/// The same for 4 lanes of 64 bits.
alignas(32) inline constexpr std::int64_t kAfter64[4][4] = {
    {0, -1, -1, -1}, {0, 0, -1, -1}, {0, 0, 0, -1}, {0, 0, 0, 0}};

/// p[0..count) = t[0..count) for count < 8, without a library call (AVX2's masked stores are
/// slow on AMD, and a plain full-width store would write past the group).
SHUFFLE_R1_AVX2_INLINE void store_first(std::int32_t* p, const std::int32_t* t, int count) {
  if (count & 4) {
    std::memcpy(p, t, 16);
    p += 4;
    t += 4;
  }
  if (count & 2) {
    std::memcpy(p, t, 8);
    p += 2;
    t += 2;
  }
  if (count & 1) *p = *t;
}

/// Register operations of the ranker for one element type (W lanes per vector).
template <class T>
struct rank_ops;

template <>
struct rank_ops<float> {
  static constexpr int W = 8;
  using vec = __m256;
  /// Lanes of vector v that hold rows < n (all ones), as a 32-bit lane mask.
  SHUFFLE_R1_AVX2_INLINE static __m256i valid(int n, int v) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n - W * v),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  SHUFFLE_R1_AVX2_INLINE static vec load(const float* p, __m256i m) {
    return _mm256_maskload_ps(p, m);
  }
  SHUFFLE_R1_AVX2_INLINE static vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  SHUFFLE_R1_AVX2_INLINE static vec gt(vec b, vec x) { return _mm256_cmp_ps(b, x, _CMP_GT_OQ); }
  SHUFFLE_R1_AVX2_INLINE static vec ge(vec b, vec x) { return _mm256_cmp_ps(b, x, _CMP_GE_OQ); }
  SHUFFLE_R1_AVX2_INLINE static vec after(int lane) {
    return _mm256_load_ps(reinterpret_cast<const float*>(kAfter32[lane]));
  }
  SHUFFLE_R1_AVX2_INLINE static vec blend(vec x, vec y, vec m) { return _mm256_blendv_ps(x, y, m); }
  /// c - m: adds 1 to the count of every lane where the comparison m holds (all ones = -1).
  SHUFFLE_R1_AVX2_INLINE static __m256i count(__m256i c, vec m) {
    return _mm256_sub_epi32(c, _mm256_castps_si256(m));
  }
  /// Bit l set where lane l of c equals t.
  SHUFFLE_R1_AVX2_INLINE static std::uint32_t equal(__m256i c, int t) {
    return static_cast<std::uint32_t>(
        _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(c, _mm256_set1_epi32(t)))));
  }
  /// Stores the first `count` (1..8) counts at p.
  SHUFFLE_R1_AVX2_INLINE static void store(std::int32_t* p, __m256i c, int count) {
    if (count >= W) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), c);
    } else {
      alignas(32) std::int32_t t[W];
      _mm256_store_si256(reinterpret_cast<__m256i*>(t), c);
      store_first(p, t, count);
    }
  }
};

template <>
struct rank_ops<double> {
  static constexpr int W = 4;
  using vec = __m256d;
  SHUFFLE_R1_AVX2_INLINE static __m256i valid(int n, int v) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n - W * v), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  SHUFFLE_R1_AVX2_INLINE static vec load(const double* p, __m256i m) {
    return _mm256_maskload_pd(p, m);
  }
  SHUFFLE_R1_AVX2_INLINE static vec broadcast(const double* p) { return _mm256_broadcast_sd(p); }
  SHUFFLE_R1_AVX2_INLINE static vec gt(vec b, vec x) { return _mm256_cmp_pd(b, x, _CMP_GT_OQ); }
  SHUFFLE_R1_AVX2_INLINE static vec ge(vec b, vec x) { return _mm256_cmp_pd(b, x, _CMP_GE_OQ); }
  SHUFFLE_R1_AVX2_INLINE static vec after(int lane) {
    return _mm256_load_pd(reinterpret_cast<const double*>(kAfter64[lane]));
  }
  SHUFFLE_R1_AVX2_INLINE static vec blend(vec x, vec y, vec m) { return _mm256_blendv_pd(x, y, m); }
  SHUFFLE_R1_AVX2_INLINE static __m256i count(__m256i c, vec m) {
    return _mm256_sub_epi64(c, _mm256_castpd_si256(m));
  }
  SHUFFLE_R1_AVX2_INLINE static std::uint32_t equal(__m256i c, int t) {
    return static_cast<std::uint32_t>(
        _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(c, _mm256_set1_epi64x(t)))));
  }
  /// The first `count` (1..4) of the four 64-bit counts, narrowed to 32 bits, stored at p.
  SHUFFLE_R1_AVX2_INLINE static void store(std::int32_t* p, __m256i c, int count) {
    const __m128i narrow = _mm256_castsi256_si128(
        _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
    if (count >= W) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p), narrow);
    } else {
      alignas(16) std::int32_t t[W];
      _mm_store_si128(reinterpret_cast<__m128i*>(t), narrow);
      store_first(p, t, count);
    }
  }
};

/// Ranks of the n rows at a (V vectors: (V - 1) * W < n <= V * W) in the lanes of c[0..V): row
/// i in vector i / W, lane i % W. Lanes past n are not read (masked loads) and rows j >= n are
/// never broadcast, so they count for nothing; those lanes end with unspecified counts.
template <class T, int V>
SHUFFLE_R1_AVX2_INLINE void rank_vectors(const T* a, int n, __m256i* c) {
  using O = rank_ops<T>;
  constexpr int W = O::W;
  typename O::vec x[V];
  for (int v = 0; v < V; ++v) {
    x[v] = O::load(a + W * v, O::valid(n, v));
    c[v] = _mm256_setzero_si256();
  }
  for (int d = 0; d < V; ++d) {  // rows j of vector d
    const int end = n < W * (d + 1) ? n : W * (d + 1);
    for (int j = W * d; j < end; ++j) {
      const typename O::vec b = O::broadcast(a + j);
      for (int v = 0; v < V; ++v) {
        if (v < d) {
          c[v] = O::count(c[v], O::gt(b, x[v]));  // rows i < j
        } else if (v > d) {
          c[v] = O::count(c[v], O::ge(b, x[v]));  // rows i > j
        } else {
          c[v] = O::count(c[v], O::blend(O::gt(b, x[v]), O::ge(b, x[v]), O::after(j - W * d)));
        }
      }
    }
  }
}

/// Ranks of the n rows at a (V vectors: (V - 1) * W < n <= V * W), written to out[0..n); nothing
/// is written past n.
template <class T, int V>
SHUFFLE_R1_AVX2_INLINE void rank_group(const T* a, int n, std::int32_t* out) {
  constexpr int W = rank_ops<T>::W;
  __m256i c[V];
  rank_vectors<T, V>(a, n, c);
  for (int v = 0; v < V; ++v)
    rank_ops<T>::store(out + W * v, c[v], n - W * v);
}

/// The row (0-based in its group) of rank t, 0 <= t < n, from rank_vectors' counts: the lowest
/// lane whose count is t. The ranks of the n rows are a permutation of 0..n-1, so exactly one
/// row's lane matches; lanes past n may match too, but they come after every row.
template <class T, int V>
SHUFFLE_R1_AVX2_INLINE int row_of_rank(const __m256i* c, int t) {
  constexpr int W = rank_ops<T>::W;
  std::uint32_t lanes = 0;
  for (int v = 0; v < V; ++v)
    lanes |= rank_ops<T>::equal(c[v], t) << (W * v);
  return static_cast<int>(_tzcnt_u32(lanes));
}

/// The outermost pairs of one group without writing its ranks: ranks in registers
/// (rank_vectors), then for k = 0..M-1 the rows of ranks k and n-1-k, passed to
/// emit(k, hi row, lo row) (rows 0-based in the group). 1 <= M <= n / 2.
template <class T, int V, class Emit>
SHUFFLE_R1_AVX2_INLINE void outer_pairs(const T* a, int n, int M, Emit&& emit) {
  __m256i c[V];
  rank_vectors<T, V>(a, n, c);
  for (int k = 0; k < M; ++k)
    emit(k, row_of_rank<T, V>(c, k), row_of_rank<T, V>(c, n - 1 - k));
}

/// outer_pairs with V chosen from n (2 <= n <= rank_limit<T>).
template <class T, class Emit>
SHUFFLE_R1_AVX2_INLINE void outer_pairs_any(const T* a, int n, int M, Emit&& emit) {
  constexpr int W = rank_ops<T>::W;
  switch ((n + W - 1) / W) {
    case 1:
      return outer_pairs<T, 1>(a, n, M, emit);
    case 2:
      return outer_pairs<T, 2>(a, n, M, emit);
    case 3:
      return outer_pairs<T, 3>(a, n, M, emit);
    default:
      return outer_pairs<T, 4>(a, n, M, emit);
  }
}

/// Largest group rank_group handles: four vectors.
template <class T>
inline constexpr int rank_limit = 4 * rank_ops<T>::W;

/// rank_group with V chosen from n (1 <= n <= rank_limit<T>).
template <class T>
SHUFFLE_R1_AVX2_INLINE void rank_group_any(const T* a, int n, std::int32_t* out) {
  constexpr int W = rank_ops<T>::W;
  switch ((n + W - 1) / W) {
    case 1:
      return rank_group<T, 1>(a, n, out);
    case 2:
      return rank_group<T, 2>(a, n, out);
    case 3:
      return rank_group<T, 3>(a, n, out);
    default:
      return rank_group<T, 4>(a, n, out);
  }
}

}  // namespace shuffle_r1::detail::cpu::avx2

#endif  // SHUFFLE_R1_X86_SIMD
