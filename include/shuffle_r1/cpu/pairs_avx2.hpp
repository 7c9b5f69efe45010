/// @file cpu/pairs_avx2.hpp
/// @brief AVX2 PTS kernels. Internal. Ranks of groups of up to 32 float or 16 double rows
/// (stored, or kept in registers and read back per kept rank), and, further down, a sorting
/// network that orders four float groups of up to 16 rows at a time and writes their pairs.
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
#include <shuffle_r1/types.hpp>

#if SHUFFLE_R1_X86_SIMD

#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

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

// ---------------------------------------------------------------------------------------------
// Float groups of at most 16 rows, four groups at a time: a sorting network over 64-bit keys.
//
// The key of row i with advantage a is (ord(a) << 32) | (2^32 - 1 - i), where ord maps the float
// bits to a signed integer of the same order (after -0 is made +0, so that the two zeros, equal
// as floats, are equal keys up to the row). Keys are distinct within a group, and descending key
// order is exactly PTS's order: descending advantage, ties in ascending row. Rows past a group's
// size get the smallest key and sort last. Lane g of register s holds key s of group g of four;
// Batcher's odd-even merge network (19 compare-exchanges for 8 keys, 63 for 16), three
// instructions per exchange, sorts the four groups at once, with no data-dependent branch. The
// sorted keys give the rows (low words) and the advantages (high words) of the pairs.

/// Compare-exchanges of Batcher's odd-even merge sort of N = 2^m keys, in order: after all of
/// them, position a holds a key >= position b's for every a < b.
template <int N>
struct merge_network {
  struct exchange {
    int a, b;
  };
  /// Visits the exchanges of the network in order.
  template <class F>
  static constexpr void each(F&& f) {
    for (int p = 1; p < N; p *= 2)
      for (int k = p; k >= 1; k /= 2)
        for (int j = k % p; j + k < N; j += 2 * k)
          for (int i = 0; i < k && i + j + k < N; ++i)
            if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) f(i + j, i + j + k);
  }
  static constexpr int count_exchanges() {
    int c = 0;
    each([&c](int, int) { ++c; });
    return c;
  }
  static constexpr int size = count_exchanges();
  struct table {
    exchange e[size];
  };
  static constexpr table make() {
    table t{};
    int c = 0;
    each([&](int a, int b) { t.e[c++] = exchange{a, b}; });
    return t;
  }
  static constexpr table exchanges = make();
};

/// Float bit patterns (32-bit lanes) to signed integers of the same order and back (the map is
/// its own inverse): negative patterns get their magnitude bits flipped.
SHUFFLE_R1_AVX2_INLINE __m256i order_bits(__m256i bits) {
  return _mm256_xor_si256(
      bits, _mm256_and_si256(_mm256_srai_epi32(bits, 31), _mm256_set1_epi32(0x7FFFFFFF)));
}

/// Keys of the smallest order: rows past a group's size.
inline constexpr std::int64_t no_row_key = std::numeric_limits<std::int64_t>::min();

/// Puts the larger of two keys (in each 64-bit lane) in x, the smaller in y.
SHUFFLE_R1_AVX2_INLINE void exchange_keys(__m256i& x, __m256i& y) {
  const __m256d swap = _mm256_castsi256_pd(_mm256_cmpgt_epi64(y, x));
  const __m256d a = _mm256_castsi256_pd(x), b = _mm256_castsi256_pd(y);
  x = _mm256_castpd_si256(_mm256_blendv_pd(a, b, swap));
  y = _mm256_castpd_si256(_mm256_blendv_pd(b, a, swap));
}

template <int N, std::size_t... I>
SHUFFLE_R1_AVX2_INLINE void sort_keys(__m256i* v, std::index_sequence<I...>) {
  constexpr auto& e = merge_network<N>::exchanges.e;
  (exchange_keys(v[e[I].a], v[e[I].b]), ...);
}

/// The keys of the rows 8 * h .. 8 * h + 7 of a group of n rows at a (only rows < n are read),
/// as two registers of four 64-bit keys (rows 8h + {0, 1, 4, 5} and 8h + {2, 3, 6, 7}).
SHUFFLE_R1_AVX2_INLINE void row_keys(const float* a, int n, int h, __m256i* k) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i row = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * h));
  const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), row);
  // -0 becomes +0 by its bit pattern (not by adding +0, whose result is -0 when rounding
  // toward -infinity); the lanes not loaded read as +0 (their keys are replaced below).
  const __m256i loaded = _mm256_castps_si256(_mm256_maskload_ps(a + 8 * h, valid));
  const __m256i bits = _mm256_andnot_si256(
      _mm256_cmpeq_epi32(loaded, _mm256_set1_epi32(std::numeric_limits<std::int32_t>::min())),
      loaded);
  const __m256i ord = order_bits(bits);
  const __m256i low = _mm256_xor_si256(row, _mm256_set1_epi32(-1));  // 2^32 - 1 - row
  k[0] = _mm256_unpacklo_epi32(low, ord);
  k[1] = _mm256_unpackhi_epi32(low, ord);
  if (n < 8 * h + 8) {
    const __m256i none = _mm256_set1_epi64x(no_row_key);
    k[0] = _mm256_castpd_si256(
        _mm256_blendv_pd(_mm256_castsi256_pd(none), _mm256_castsi256_pd(k[0]),
                         _mm256_castsi256_pd(_mm256_unpacklo_epi32(valid, valid))));
    k[1] = _mm256_castpd_si256(
        _mm256_blendv_pd(_mm256_castsi256_pd(none), _mm256_castsi256_pd(k[1]),
                         _mm256_castsi256_pd(_mm256_unpackhi_epi32(valid, valid))));
  }
}

/// Row (0-based in its group) of a sorted key.
inline int key_row(std::int64_t key) noexcept {
  return static_cast<int>(~static_cast<std::uint32_t>(key));
}

/// Sorts the keys of four float groups of at most 8 * H rows (H = 1 or 2): a[g] and n[g] are
/// group g's advantages and size (n[g] = 0: an absent group). On return sorted[s][g] is the s-th
/// largest key of group g.
template <int H>
SHUFFLE_R1_AVX2_INLINE void sort_four_groups(const float* const* a, const int* n,
                                             std::int64_t (*sorted)[4]) {
  constexpr int N = 8 * H, V = N / 4;  // keys per group, registers per group
  __m256i k[4][V];
  for (int g = 0; g < 4; ++g)
    for (int h = 0; h < H; ++h)
      row_keys(a[g], n[g], h, k[g] + 2 * h);
  // Transpose: lane g of each register holds one key of group g, the same slot of every group
  // (slot 4q + t holds rows 8h + {0, 1, 4, 5, 2, 3, 6, 7}[4 (q % 2) + t] for h = q / 2; the
  // order of slots does not matter, since each key carries its row).
  __m256i v[N];
  for (int q = 0; q < V; ++q) {
    const __m256i t0 = _mm256_unpacklo_epi64(k[0][q], k[1][q]);
    const __m256i t1 = _mm256_unpackhi_epi64(k[0][q], k[1][q]);
    const __m256i t2 = _mm256_unpacklo_epi64(k[2][q], k[3][q]);
    const __m256i t3 = _mm256_unpackhi_epi64(k[2][q], k[3][q]);
    v[4 * q + 0] = _mm256_permute2x128_si256(t0, t2, 0x20);
    v[4 * q + 1] = _mm256_permute2x128_si256(t1, t3, 0x20);
    v[4 * q + 2] = _mm256_permute2x128_si256(t0, t2, 0x31);
    v[4 * q + 3] = _mm256_permute2x128_si256(t1, t3, 0x31);
  }
  sort_keys<N>(v, std::make_index_sequence<merge_network<N>::size>{});
  for (int s = 0; s < N; ++s)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sorted[s]), v[s]);
}

/// Batch rows of four sorted keys: begin + (2^32 - 1 - low word), as key_row.
SHUFFLE_R1_AVX2_INLINE __m256i key_rows(__m256i key, __m256i begin) {
  const __m256i low32 = _mm256_set1_epi64x(0xFFFFFFFFll);
  return _mm256_add_epi64(begin, _mm256_xor_si256(_mm256_and_si256(key, low32), low32));
}

/// |advantage| of four keys as doubles: the high words' order bits mapped back to float bits,
/// with the sign cleared, widened exactly.
SHUFFLE_R1_AVX2_INLINE __m256d abs_key_values(__m256i key) {
  const __m256i ord = _mm256_permutevar8x32_epi32(key, _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7));
  const __m256i bits = _mm256_and_si256(order_bits(ord), _mm256_set1_epi32(0x7FFFFFFF));
  return _mm256_cvtps_pd(_mm_castsi128_ps(_mm256_castsi256_si128(bits)));
}

/// The kept pairs of four groups of the same size n, from sort_four_groups' keys, without
/// indexed rows: group g's pair k is written at out[2 * (g * M + k)] as rows (begin[g] + hi row,
/// begin[g] + lo row), and its weight, when w is given, at w[g * M + k] (computed as
/// pair_weight_of does: absolute values widened to double, one rounding to float).
template <pair_weight W>
SHUFFLE_R1_AVX2_INLINE void emit_four_groups(const std::int64_t (*sorted)[4], int n, std::int64_t M,
                                             __m256i begin, std::int64_t* out, float* w) {
  for (std::int64_t k = 0; k < M; ++k) {
    const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(sorted[k]));
    const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(sorted[n - 1 - k]));
    const __m256i rhi = key_rows(hi, begin), rlo = key_rows(lo, begin);
    const __m256i p02 = _mm256_unpacklo_epi64(rhi, rlo), p13 = _mm256_unpackhi_epi64(rhi, rlo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * k), _mm256_castsi256_si128(p02));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * (M + k)), _mm256_castsi256_si128(p13));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * (2 * M + k)),
                     _mm256_extracti128_si256(p02, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * (3 * M + k)),
                     _mm256_extracti128_si256(p13, 1));
    if (w) {
      const __m256d a = abs_key_values(hi), b = abs_key_values(lo);
      __m256d q;
      if constexpr (W == pair_weight::max)
        q = _mm256_max_pd(a, b);  // a > b ? a : b, as pair_weight_of
      else if constexpr (W == pair_weight::mean)
        q = _mm256_mul_pd(_mm256_add_pd(a, b), _mm256_set1_pd(0.5));
      else if constexpr (W == pair_weight::pos)
        q = a;
      else
        q = _mm256_add_pd(a, b);
      const __m128 f = _mm256_cvtpd_ps(q);
      w[k] = _mm_cvtss_f32(f);
      w[M + k] = _mm_cvtss_f32(_mm_shuffle_ps(f, f, 1));
      w[2 * M + k] = _mm_cvtss_f32(_mm_shuffle_ps(f, f, 2));
      w[3 * M + k] = _mm_cvtss_f32(_mm_shuffle_ps(f, f, 3));
    }
  }
}

}  // namespace shuffle_r1::detail::cpu::avx2

#endif  // SHUFFLE_R1_X86_SIMD
