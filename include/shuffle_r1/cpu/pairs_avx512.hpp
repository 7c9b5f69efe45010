/// @file cpu/pairs_avx512.hpp
/// @brief AVX-512 pair selection for groups of up to 64 rows. Internal.
///
/// The rankers (pass 1 of the two-pass kernel): each group's advantages sit in one to four
/// (float) or eight (double) registers, padded with -infinity by a masked load. The rank of row
/// i, #{j : a_j > a_i} + #{j < i : a_j == a_i}, is accumulated with one broadcast and two
/// compares per row j and vector, and stored with a masked store; pass 2 of the pair kernel
/// inverts the permutation. The ranks are integers computed from the same comparisons as the
/// portable kernel, and the pair weights use the same scalar function, so both kernels give
/// bit-identical outputs.
///
/// Further down: the sorting network of pairs_avx2.hpp over eight float groups of up to 16
/// rows at a time, with 64-bit keys of the same order in 512-bit registers (their order word is
/// made in three instructions, order_ints) and a compare-exchange of two instructions (AVX-512
/// has 64-bit minimum and maximum). It needs no pass 2, and computes the weights in double
/// lanes with pair_weight_of's operations (the same bits as the function).
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/pairs_avx2.hpp>
#include <shuffle_r1/cpu/simd.hpp>
#include <shuffle_r1/types.hpp>

#if SHUFFLE_R1_X86_SIMD

#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

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

// ---------------------------------------------------------------------------------------------
// Float groups of at most 16 rows, eight groups at a time: avx2::sort_four_groups' network
// (pairs_avx2.hpp) in 512-bit registers, over keys of the same order (descending advantage,
// ties in ascending row). Lane g of register s holds key s of group g.

namespace avx512 {

/// All eight 64-bit lanes: the maskz forms of this namespace compute every lane (GCC 12's
/// unmasked forms of these intrinsics warn, -Wmaybe-uninitialized, as in draw_words_avx512).
inline constexpr __mmask8 all = 0xFF;

/// Signed integers of the same order as the floats of `bits` (16 lanes; finite values): the
/// magnitude bits m for a positive float, -m for a negative one. Both zeros map to 0, so that
/// the two zeros, equal as floats, give equal keys up to the row; |result| is the magnitude's
/// bit pattern (abs_key_values). Three instructions, against five for flipping the magnitude
/// bits of negatives and mapping -0 to +0 separately.
SHUFFLE_R1_AVX512_INLINE __m512i order_ints(__m512i bits) {
  const __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF));
  return _mm512_mask_sub_epi32(magnitude, _mm512_movepi32_mask(bits), _mm512_setzero_si512(),
                               magnitude);
}

/// order_ints for 8 lanes.
SHUFFLE_R1_AVX512_INLINE __m256i order_ints(__m256i bits) {
  const __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF));
  return _mm256_mask_sub_epi32(magnitude, _mm256_movepi32_mask(bits), _mm256_setzero_si256(),
                               magnitude);
}

/// Low words of the keys of rows 0..15: 2^32 - 1 - row.
SHUFFLE_R1_AVX512_INLINE __m512i row_words() {
  return _mm512_setr_epi32(~0, ~1, ~2, ~3, ~4, ~5, ~6, ~7, ~8, ~9, ~10, ~11, ~12, ~13, ~14, ~15);
}

/// The keys of the rows of a group of n <= 8 rows at a (only rows < n are read), in row order:
/// (order_ints(a) << 32) | (2^32 - 1 - row), or avx2::no_row_key past the group's end.
SHUFFLE_R1_AVX512_INLINE __m512i group_keys8(const float* a, int n) {
  const auto valid = static_cast<__mmask8>(n >= 8 ? 0xFF : (1u << n) - 1u);
  const __m256i ord = order_ints(_mm256_maskz_loadu_epi32(valid, a));
  const __m512i high = _mm512_maskz_slli_epi64(all, _mm512_maskz_cvtepi32_epi64(all, ord), 32);
  const __m512i low = _mm512_setr_epi64(0xFFFFFFFFll, 0xFFFFFFFEll, 0xFFFFFFFDll, 0xFFFFFFFCll,
                                        0xFFFFFFFBll, 0xFFFFFFFAll, 0xFFFFFFF9ll, 0xFFFFFFF8ll);
  return _mm512_mask_or_epi64(_mm512_set1_epi64(avx2::no_row_key), valid, high, low);
}

/// The keys of the rows of a group of n <= 16 rows at a (only rows < n are read), as
/// group_keys8's, in two registers: k0 holds rows 0 1 4 5 8 9 12 13, k1 rows 2 3 6 7 10 11
/// 14 15 (the interleaves stay within 128-bit lanes; the order of a group's keys does not
/// matter to the network, since each key carries its row).
SHUFFLE_R1_AVX512_INLINE void group_keys16(const float* a, int n, __m512i& k0, __m512i& k1) {
  const auto valid = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u);
  const __m512i ord = order_ints(_mm512_maskz_loadu_epi32(valid, a));
  k0 = _mm512_maskz_unpacklo_epi32(0xFFFF, row_words(), ord);
  k1 = _mm512_maskz_unpackhi_epi32(0xFFFF, row_words(), ord);
  if (n >= 16) return;
  const __m512i none = _mm512_set1_epi64(avx2::no_row_key);
  const __m512i rows0 = _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13);
  const __m512i count = _mm512_set1_epi64(n);
  k0 = _mm512_mask_mov_epi64(none, _mm512_cmplt_epi64_mask(rows0, count), k0);
  k1 = _mm512_mask_mov_epi64(
      none, _mm512_cmplt_epi64_mask(_mm512_add_epi64(rows0, _mm512_set1_epi64(2)), count), k1);
}

/// In-place transpose of eight registers of eight 64-bit lanes: lane j of x[i] <-> lane i of
/// x[j].
SHUFFLE_R1_AVX512_INLINE void transpose8(__m512i* x) {
  __m512i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_maskz_unpacklo_epi64(all, x[2 * i], x[2 * i + 1]);
    t[2 * i + 1] = _mm512_maskz_unpackhi_epi64(all, x[2 * i], x[2 * i + 1]);
  }
  // 128-bit blocks: u[0] = (t0.0, t0.2, t2.0, t2.2), u[2] = (t0.1, t0.3, t2.1, t2.3), ...
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      u[4 * i + j] = _mm512_maskz_shuffle_i64x2(all, t[4 * i + j], t[4 * i + 2 + j], 0x88);
      u[4 * i + 2 + j] = _mm512_maskz_shuffle_i64x2(all, t[4 * i + j], t[4 * i + 2 + j], 0xDD);
    }
  for (int j = 0; j < 4; ++j) {
    x[j] = _mm512_maskz_shuffle_i64x2(all, u[j], u[4 + j], 0x88);
    x[4 + j] = _mm512_maskz_shuffle_i64x2(all, u[j], u[4 + j], 0xDD);
  }
}

/// Puts the larger of two keys (in each 64-bit lane) in x, the smaller in y.
SHUFFLE_R1_AVX512_INLINE void exchange_keys(__m512i& x, __m512i& y) {
  const __m512i larger = _mm512_maskz_max_epi64(all, x, y);
  y = _mm512_maskz_min_epi64(all, x, y);
  x = larger;
}

template <int N, std::size_t... I>
SHUFFLE_R1_AVX512_INLINE void sort_keys(__m512i* v, std::index_sequence<I...>) {
  constexpr auto& e = avx2::merge_network<N>::exchanges.e;
  (exchange_keys(v[e[I].a], v[e[I].b]), ...);
}

/// Sorts the keys of eight float groups of at most 8 H rows (H = 1 or 2): a[g] and n[g] are
/// group g's advantages and size (0: an absent group). On return lane g of v[s] is the s-th
/// largest key of group g.
template <int H>
SHUFFLE_R1_AVX512_INLINE void sort_eight_groups(const float* const* a, const int* n, __m512i* v) {
  constexpr int N = 8 * H;
  if constexpr (H == 1) {
    for (int g = 0; g < 8; ++g)
      v[g] = group_keys8(a[g], n[g]);
  } else {
    for (int g = 0; g < 8; ++g)
      group_keys16(a[g], n[g], v[g], v[8 + g]);
  }
  for (int h = 0; h < H; ++h)
    transpose8(v + 8 * h);  // lane g of v[8 h + l]: key slot 8 h + l of group g
  sort_keys<N>(v, std::make_index_sequence<avx2::merge_network<N>::size>{});
}

/// Batch rows of eight sorted keys: begin + (2^32 - 1 - low word), as avx2::key_row.
SHUFFLE_R1_AVX512_INLINE __m512i key_rows(__m512i key, __m512i begin) {
  const __m512i low32 = _mm512_set1_epi64(0xFFFFFFFFll);
  return _mm512_add_epi64(begin, _mm512_xor_si512(_mm512_and_si512(key, low32), low32));
}

/// |advantage| of eight keys as doubles: the magnitude bits are |order word| (order_ints),
/// widened exactly.
SHUFFLE_R1_AVX512_INLINE __m512d abs_key_values(__m512i key) {
  const __m256i ord = _mm512_maskz_cvtepi64_epi32(all, _mm512_maskz_srli_epi64(all, key, 32));
  return _mm512_maskz_cvtps_pd(all, _mm256_castsi256_ps(_mm256_abs_epi32(ord)));
}

/// pair_weight_of's operations on eight pairs of keys (hi, lo), as doubles.
template <pair_weight W>
SHUFFLE_R1_AVX512_INLINE __m512d key_weights(__m512i hi, __m512i lo) {
  const __m512d a = abs_key_values(hi), b = abs_key_values(lo);
  if constexpr (W == pair_weight::max)
    return _mm512_maskz_max_pd(all, a, b);  // a > b ? a : b, as pair_weight_of
  else if constexpr (W == pair_weight::mean)
    return _mm512_mul_pd(_mm512_add_pd(a, b), _mm512_set1_pd(0.5));
  else if constexpr (W == pair_weight::pos)
    return a;
  else
    return _mm512_add_pd(a, b);
}

/// Lanes of emit_eight_groups' weight permutation for M kept pairs per group (M = 1..4): output
/// float p = g M + k (group g, pair k) comes from lane g of weight register k, which sits at
/// lane 8 (k % 2) + g of the first (k < 2) or second (k >= 2, + 16) source of permutex2var.
struct weight_lanes {
  std::int32_t lane[5][32];
  constexpr weight_lanes() : lane{} {
    for (int M = 1; M <= 4; ++M)
      for (int p = 0; p < 8 * M; ++p) {
        const int g = p / M, k = p % M;
        lane[M][p] = 16 * (k / 2) + 8 * (k % 2) + g;
      }
  }
};
inline constexpr weight_lanes kWeightLanes{};

/// The kept pairs of eight groups of the same size n from sort_eight_groups' keys, without
/// indexed rows: group g's pair k at out[2 (g M + k)] as rows (begin[g] + hi row, begin[g] + lo
/// row), its weight, when w is given, at w[g M + k] (pair_weight_of's operations). For M <= 4
/// (the paper's groups of 8 and 16 rows keep 2 and 4) a group's 2M rows are one register after
/// a transpose, and the 8M weights two permutations: whole-vector stores instead of one
/// 128-bit store per pair and one scalar store per weight. (Always inlined: where the caller's
/// n is a constant, the keys are read at constant positions and stay in registers.)
template <pair_weight W>
SHUFFLE_R1_AVX512_INLINE void emit_eight_groups(const __m512i* v, int n, std::int64_t M,
                                                __m512i begin, std::int64_t* out, float* w) {
  if (M == 0) return;
  if (M <= 4) {
    const int m = static_cast<int>(M);
    __m512i x[8];
    __m256 q[4];
    for (int k = 0; k < 4; ++k) {  // registers past the M pairs are zeros, never stored
      const bool kept_pair = k < m;
      x[2 * k] = kept_pair ? key_rows(v[k], begin) : _mm512_setzero_si512();
      x[2 * k + 1] = kept_pair ? key_rows(v[n - 1 - k], begin) : _mm512_setzero_si512();
      q[k] = kept_pair && w ? _mm512_maskz_cvtpd_ps(all, key_weights<W>(v[k], v[n - 1 - k]))
                            : _mm256_setzero_ps();
    }
    transpose8(x);  // lane 2 k + h of x[g]: group g's pair k, hi (h = 0) or lo row
    const auto rows = static_cast<__mmask8>((1u << (2 * m)) - 1);
    for (int g = 0; g < 8; ++g)
      _mm512_mask_storeu_epi64(out + 2 * m * g, rows, x[g]);
    if (w) {
      const __m512 a = _mm512_maskz_insertf32x8(
          0xFFFF, _mm512_maskz_insertf32x8(0xFFFF, _mm512_setzero_ps(), q[0], 0), q[1], 1);
      const __m512 b = _mm512_maskz_insertf32x8(
          0xFFFF, _mm512_maskz_insertf32x8(0xFFFF, _mm512_setzero_ps(), q[2], 0), q[3], 1);
      const std::int32_t* lane = kWeightLanes.lane[m];
      const int count = 8 * m;  // 8, 16, 24 or 32 floats
      const auto first = static_cast<__mmask16>(count >= 16 ? 0xFFFF : (1u << count) - 1);
      _mm512_mask_storeu_ps(w, first,
                            _mm512_maskz_permutex2var_ps(0xFFFF, a, _mm512_loadu_si512(lane), b));
      if (count > 16)
        _mm512_mask_storeu_ps(
            w + 16, static_cast<__mmask16>((1u << (count - 16)) - 1),
            _mm512_maskz_permutex2var_ps(0xFFFF, a, _mm512_loadu_si512(lane + 16), b));
    }
    return;
  }
  for (std::int64_t k = 0; k < M; ++k) {
    const __m512i hi = v[k], lo = v[n - 1 - k];
    const __m512i rhi = key_rows(hi, begin), rlo = key_rows(lo, begin);
    // 128-bit block i of `even` is group 2i's pair, of `odd` group 2i + 1's
    const __m512i even = _mm512_maskz_unpacklo_epi64(all, rhi, rlo),
                  odd = _mm512_maskz_unpackhi_epi64(all, rhi, rlo);
    auto* o = reinterpret_cast<__m128i*>(out + 2 * k);
    _mm_storeu_si128(o, _mm512_maskz_extracti64x2_epi64(3, even, 0));
    _mm_storeu_si128(o + M, _mm512_maskz_extracti64x2_epi64(3, odd, 0));
    _mm_storeu_si128(o + 2 * M, _mm512_maskz_extracti64x2_epi64(3, even, 1));
    _mm_storeu_si128(o + 3 * M, _mm512_maskz_extracti64x2_epi64(3, odd, 1));
    _mm_storeu_si128(o + 4 * M, _mm512_maskz_extracti64x2_epi64(3, even, 2));
    _mm_storeu_si128(o + 5 * M, _mm512_maskz_extracti64x2_epi64(3, odd, 2));
    _mm_storeu_si128(o + 6 * M, _mm512_maskz_extracti64x2_epi64(3, even, 3));
    _mm_storeu_si128(o + 7 * M, _mm512_maskz_extracti64x2_epi64(3, odd, 3));
    if (w) {
      alignas(32) float f[8];
      _mm256_store_ps(f, _mm512_maskz_cvtpd_ps(all, key_weights<W>(hi, lo)));
      for (int g = 0; g < 8; ++g)
        w[g * M + k] = f[g];
    }
  }
}

}  // namespace avx512

}  // namespace shuffle_r1::detail::cpu

#endif  // SHUFFLE_R1_X86_SIMD
