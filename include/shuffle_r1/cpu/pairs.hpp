/// @file cpu/pairs.hpp
/// @brief CPU implementation of select_pairs (PTS). Internal: include <shuffle_r1/pairs.hpp>.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/pairs_avx2.hpp>
#include <shuffle_r1/cpu/pairs_avx512.hpp>
#include <shuffle_r1/cpu/simd.hpp>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/detail/tree_sum.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace shuffle_r1 {
namespace detail {

/// Pairs available in a group of n rows: n/2 for even n; (n-1)/2 for odd n (drop_median).
constexpr std::int64_t pairs_available(std::int64_t n) noexcept {
  return n / 2;
}

/// Pairs kept in a group with P available pairs: explicit M, or floor(alpha * P) evaluated in
/// double exactly as the Shuffle-R1 release does (`int(len(pairs) * (1.0 - ratio))`).
inline std::int64_t pairs_kept(std::int64_t P, const pair_options& o) noexcept {
  if (o.keep_pairs >= 0) return std::min(o.keep_pairs, P);
  return static_cast<std::int64_t>(std::floor(static_cast<double>(P) * o.keep_ratio));
}

/// Checks the options and every group's size; returns K, the total number of kept pairs.
/// @throws error for invalid options, an odd group under odd_policy::error, or a group with
///         fewer than keep_pairs pairs.
inline std::int64_t validate_pairs_plan(const char* fn, const host_layout& L,
                                        const pair_options& o) {
  switch (o.weight) {
    case pair_weight::sum:
    case pair_weight::max:
    case pair_weight::mean:
    case pair_weight::pos:
      break;
    default:
      fail(errc::invalid_argument, fn, "options.weight has no valid value (",
           static_cast<int>(o.weight), ")");
  }
  switch (o.odd) {
    case odd_policy::error:
    case odd_policy::drop_median:
      break;
    default:
      fail(errc::invalid_argument, fn, "options.odd has no valid value (", static_cast<int>(o.odd),
           ")");
  }
  if (o.keep_pairs < 0 && !(o.keep_ratio > 0.0 && o.keep_ratio <= 1.0))
    fail(errc::invalid_argument, fn, "options.keep_ratio is ", o.keep_ratio,
         ", expected a value in (0, 1]");
  std::int64_t K = 0;
  // Uniform layouts: every group is group 0's size, so group 0 is the first to fail and
  // K = groups * M (the loop runs once).
  const std::int64_t checked = L.uniform >= 0 ? std::min<std::int64_t>(L.groups, 1) : L.groups;
  for (std::int64_t g = 0; g < checked; ++g) {
    const std::int64_t n = L.size(g);
    if (n % 2 != 0 && o.odd == odd_policy::error)
      fail(errc::odd_group, fn, "group ", g, " (first row ", L.row(L.begin(g)), ") has ", n,
           " rows, an odd number; PTS pairs rows (set the odd policy to drop_median to leave "
           "the median row out)");
    const std::int64_t P = pairs_available(n);
    if (o.keep_pairs > P)
      fail(errc::too_few_pairs, fn, "options.keep_pairs is ", o.keep_pairs, " but group ", g,
           " has ", n, " rows, i.e. only ", P, " pairs");
    K += pairs_kept(P, o);
  }
  return checked == L.groups ? K : K * L.groups;
}

/// Weight of a pair from its advantages (hi >= lo), computed in double, rounded once to T.
template <class T>
inline T pair_weight_of(T hi, T lo, pair_weight w) noexcept {
  const double a = std::fabs(static_cast<double>(hi)), b = std::fabs(static_cast<double>(lo));
  switch (w) {
    case pair_weight::max:
      return static_cast<T>(a > b ? a : b);
    case pair_weight::mean:
      return static_cast<T>((a + b) * 0.5);
    case pair_weight::pos:
      return static_cast<T>(a);
    default:
      return static_cast<T>(a + b);
  }
}

}  // namespace detail

namespace detail::cpu {

/// pairs_kept of a group of n rows, recomputed only when n changes from the previous call
/// (it depends on n only; consecutive groups mostly share their size).
struct kept_by_size {
  const pair_options& o;
  std::int64_t n = -1, M = 0;
  std::int64_t operator()(std::int64_t size) noexcept {
    if (size != n) {
      n = size;
      M = pairs_kept(pairs_available(size), o);
    }
    return M;
  }
};

/// The advantages of the n rows of the group starting at position `begin`: in place for
/// contiguous layouts, else gathered through L.rows into buf (room for n values).
template <class T>
inline const T* group_values(const T* adv, const host_layout& L, std::int64_t begin, std::int64_t n,
                             T* buf) noexcept {
  if (!L.rows) return adv + begin;
  for (std::int64_t k = 0; k < n; ++k)
    buf[k] = adv[L.rows[begin + k]];
  return buf;
}

/// Largest group sorted by rank counting; larger groups use a comparison sort.
inline constexpr std::int64_t rank_sort_limit = 64;

/// Reusable scratch of the pair selection.
struct pairs_scratch {
  std::vector<std::int64_t> order;  // sort of one large group
};

/// Rows of small groups ranked per block: pass 1 and pass 2 alternate over blocks of groups of
/// at most this many rows, so the rank buffer lives on the stack and stays in L1.
inline constexpr std::int64_t rank_block_rows = 4096;

/// r[0..P) = rank of each position of a group in the order of descending advantage, ties in
/// batch order: rank(i) = #{j : a_j > a_i} + #{j < i : a_j == a_i}, accumulated column by
/// column so that the inner loop runs over i with a compile-time trip count and vectorizes.
/// The group's n values are padded to P with -infinity, which ranks below every finite value
/// and so cannot change the ranks of real rows.
template <int P, class T>
inline void rank_sort(const T* a, std::int32_t* out) noexcept {
  std::int32_t r[P] = {};
  for (int j = 0; j < P; ++j) {
    const T aj = a[j];
    for (int i = 0; i < P; ++i)
      r[i] +=
          static_cast<std::int32_t>(aj > a[i]) + static_cast<std::int32_t>((aj == a[i]) & (j < i));
  }
  for (int i = 0; i < P; ++i)
    out[i] = r[i];
}

template <class T>
inline void rank_sort_dyn(const T* a, std::int64_t n, std::int32_t* s) noexcept {
  switch (padded_width(n)) {
    case 1:
    case 2:
      rank_sort<2>(a, s);
      break;
    case 4:
      rank_sort<4>(a, s);
      break;
    case 8:
      rank_sort<8>(a, s);
      break;
    case 16:
      rank_sort<16>(a, s);
      break;
    case 32:
      rank_sort<32>(a, s);
      break;
    default:
      rank_sort<64>(a, s);
      break;
  }
}

/// Whether group g is ranked by the small-group kernels (1 < n <= 64 and pairs kept).
inline bool ranked_small(std::int64_t n, std::int64_t M) noexcept {
  return M > 0 && n <= rank_sort_limit;
}

/// Pass 1, portable: the ranks of the rows of every small group of [g0, g1), written at
/// rank[begin - L.begin(g0)].
template <class T>
inline void rank_groups_portable(const T* adv, const host_layout& L, const pair_options& o,
                                 std::int64_t g0, std::int64_t g1, std::int32_t* rank) {
  const std::int64_t base = L.begin(g0);
  T a[rank_sort_limit];
  std::int32_t r[rank_sort_limit];
  for (std::int64_t g = g0; g < g1; ++g) {
    const std::int64_t begin = L.begin(g), n = L.size(g);
    if (!ranked_small(n, pairs_kept(pairs_available(n), o))) continue;
    const int P = padded_width(n);
    for (std::int64_t k = 0; k < n; ++k)
      a[k] = adv[L.row(begin + k)];
    for (std::int64_t k = n; k < P; ++k)
      a[k] = -std::numeric_limits<T>::infinity();
    rank_sort_dyn(a, n, r);
    std::copy(r, r + n, rank + (begin - base));
  }
}

#if SHUFFLE_R1_X86_SIMD
/// Pass 1 with AVX2: groups of up to 32 float or 16 double rows with avx2::rank_group
/// (pairs_avx2.hpp), larger ones with the portable ranker compiled for AVX2 (flatten). The same
/// integer ranks.
template <class T>
SHUFFLE_R1_AVX2 void rank_groups_avx2(const T* adv, const host_layout& L, const pair_options& o,
                                      std::int64_t g0, std::int64_t g1, std::int32_t* rank) {
  const std::int64_t base = L.begin(g0);
  T a[avx2::rank_limit<T>];
  kept_by_size kept{o};
  for (std::int64_t g = g0; g < g1; ++g) {
    const std::int64_t begin = L.begin(g), n = L.size(g);
    if (!ranked_small(n, kept(n))) continue;
    if (n > avx2::rank_limit<T>) {
      rank_groups_portable(adv, L, o, g, g + 1, rank + (begin - base));
      continue;
    }
    avx2::rank_group_any(group_values(adv, L, begin, n, a), static_cast<int>(n),
                         rank + (begin - base));
  }
}

/// Pass 1 for float groups of at most 16 rows on CPUs with AVX512CD and VPOPCNTDQ: ties from
/// the conflict mask, one compare per row (pairs_avx512.hpp). Other groups use the AVX-512
/// ranker.
template <class T>
SHUFFLE_R1_AVX512_CD void rank_groups_avx512_cd(const T* adv, const host_layout& L,
                                                const pair_options& o, std::int64_t g0,
                                                std::int64_t g1, std::int32_t* rank) {
  const std::int64_t base = L.begin(g0);
  T a[rank_sort_limit];
  for (std::int64_t g = g0; g < g1; ++g) {
    const std::int64_t begin = L.begin(g), n = L.size(g);
    if (!ranked_small(n, pairs_kept(pairs_available(n), o))) continue;
    const T* values = group_values(adv, L, begin, n, a);
    if constexpr (std::is_same_v<T, float>) {
      if (n <= 16) {
        rank16_conflict(values, static_cast<int>(n), rank + (begin - base));
        continue;
      }
    }
    rank_group_avx512(values, static_cast<int>(n), rank + (begin - base));
  }
}

/// Pass 1, AVX-512 (pairs_avx512.hpp): the same ranks, 8 or 16 comparisons per instruction.
template <class T>
SHUFFLE_R1_AVX512 void rank_groups_avx512(const T* adv, const host_layout& L, const pair_options& o,
                                          std::int64_t g0, std::int64_t g1, std::int32_t* rank) {
  const std::int64_t base = L.begin(g0);
  T a[rank_sort_limit];
  for (std::int64_t g = g0; g < g1; ++g) {
    const std::int64_t begin = L.begin(g), n = L.size(g);
    if (!ranked_small(n, pairs_kept(pairs_available(n), o))) continue;
    rank_group_avx512(group_values(adv, L, begin, n, a), static_cast<int>(n),
                      rank + (begin - base));
  }
}
#endif

/// f(std::integral_constant<pair_weight, w>{}): the kernels take the weight as a template
/// argument, so that the per-pair weight needs no switch.
template <class F>
inline decltype(auto) with_weight(pair_weight w, F&& f) {
  switch (w) {
    case pair_weight::max:
      return f(std::integral_constant<pair_weight, pair_weight::max>{});
    case pair_weight::mean:
      return f(std::integral_constant<pair_weight, pair_weight::mean>{});
    case pair_weight::pos:
      return f(std::integral_constant<pair_weight, pair_weight::pos>{});
    default:
      return f(std::integral_constant<pair_weight, pair_weight::sum>{});
  }
}

/// Writes pair (rhi, rlo) (batch rows) at out[0..2) and, when w is given, its weight at *w.
template <class T, pair_weight W>
inline void put_pair(const T* adv, std::int64_t rhi, std::int64_t rlo, std::int64_t* out,
                     T* w) noexcept {
  out[0] = rhi;
  out[1] = rlo;
  if (w) *w = pair_weight_of(adv[rhi], adv[rlo], W);
}

#if SHUFFLE_R1_X86_SIMD
/// Every group in one pass with AVX2 when no group has more than avx2::rank_limit<T> rows: each
/// group's ranks stay in registers and its kept pairs are read from them
/// (avx2::outer_pairs_any), so no rank is stored and no sorted order is scattered through
/// memory. The same pairs and weights as the two passes (the same ranks, then the same rows).
template <class T, pair_weight W>
SHUFFLE_R1_AVX2 std::int64_t pairs_small_avx2(const T* adv, const host_layout& L,
                                              const pair_options& o, std::int64_t* pairs,
                                              T* weights) {
  T a[avx2::rank_limit<T>];
  kept_by_size kept{o};
  std::int64_t k_out = 0;
  for (std::int64_t g = 0; g < L.groups; ++g) {
    const std::int64_t begin = L.begin(g), n = L.size(g), M = kept(n);
    if (M == 0) continue;
    std::int64_t* out = pairs + 2 * k_out;
    T* wout = weights ? weights + k_out : nullptr;
    avx2::outer_pairs_any(group_values(adv, L, begin, n, a), static_cast<int>(n),
                          static_cast<int>(M), [&](int k, int hi, int lo) {
                            put_pair<T, W>(adv, L.row(begin + hi), L.row(begin + lo), out + 2 * k,
                                           wout ? wout + k : nullptr);
                          });
    k_out += M;
  }
  return k_out;
}
#endif

#if SHUFFLE_R1_X86_SIMD
/// The M kept pairs of one group of n rows starting at position `begin` from its sorted keys
/// (the s-th largest at keys[s * stride], as the network kernels store them), written at
/// out[0..2M) and, when w is given, w[0..M). Returns M.
template <pair_weight W>
inline std::int64_t put_sorted_pairs(const float* adv, const host_layout& L, std::int64_t begin,
                                     int n, std::int64_t M, const std::int64_t* keys, int stride,
                                     std::int64_t* out, float* w) noexcept {
  for (std::int64_t k = 0; k < M; ++k)
    put_pair<float, W>(adv, L.row(begin + avx2::key_row(keys[k * stride])),
                       L.row(begin + avx2::key_row(keys[(n - 1 - k) * stride])), out + 2 * k,
                       w ? w + k : nullptr);
  return M;
}
#endif

#if SHUFFLE_R1_X86_SIMD
/// Every float group in one pass with AVX2 when no group has more than 8 * H rows (H = 1 or 2):
/// four groups at a time sorted by a network over 64-bit keys (avx2::sort_four_groups), then
/// each group's kept pairs read from its sorted keys. The keys order rows exactly as the ranks
/// do, and the weights come from the same advantages through pair_weight_of: the same pairs and
/// weights as the other kernels.
template <int H, pair_weight W>
SHUFFLE_R1_AVX2 std::int64_t pairs_network_avx2(const float* adv, const host_layout& L,
                                                const pair_options& o, std::int64_t* pairs,
                                                float* weights) {
  float gathered[4][8 * H];
  alignas(32) std::int64_t sorted[8 * H][4];
  kept_by_size kept{o};
  std::int64_t k_out = 0;
  for (std::int64_t g0 = 0; g0 < L.groups; g0 += 4) {
    const float* a[4];
    int n[4];
    std::int64_t begin[4];
    for (int g = 0; g < 4; ++g) {
      begin[g] = g0 + g < L.groups ? L.begin(g0 + g) : 0;
      n[g] = g0 + g < L.groups ? static_cast<int>(L.size(g0 + g)) : 0;
      a[g] = group_values(adv, L, begin[g], n[g], gathered[g]);
    }
    avx2::sort_four_groups<H>(a, n, sorted);
    if (!L.rows && g0 + 4 <= L.groups && n[0] == n[1] && n[0] == n[2] && n[0] == n[3]) {
      const std::int64_t M = kept(n[0]);
      avx2::emit_four_groups<W>(sorted, n[0], M,
                                _mm256_setr_epi64x(begin[0], begin[1], begin[2], begin[3]),
                                pairs + 2 * k_out, weights ? weights + k_out : nullptr);
      k_out += 4 * M;
      continue;
    }
    for (int g = 0; g < 4 && g0 + g < L.groups; ++g)
      k_out += put_sorted_pairs<W>(adv, L, begin[g], n[g], kept(n[g]), &sorted[0][g], 4,
                                   pairs + 2 * k_out, weights ? weights + k_out : nullptr);
  }
  return k_out;
}
#endif

#if SHUFFLE_R1_X86_SIMD
/// pairs_network_avx2 with AVX-512: eight float groups of at most 8 * H rows at a time
/// (avx512::sort_eight_groups). The same keys, network and weight operations: the same pairs
/// and weights.
template <int H, pair_weight W>
SHUFFLE_R1_AVX512 std::int64_t pairs_network_avx512(const float* adv, const host_layout& L,
                                                    const pair_options& o, std::int64_t* pairs,
                                                    float* weights) {
  float gathered[8][8 * H];
  kept_by_size kept{o};
  std::int64_t k_out = 0;
  std::int64_t g0 = 0;
  if (!L.rows && L.uniform == 8 * H) {
    // Full blocks of groups of exactly 8 H rows (the common case): the group starts are
    // arithmetic, and with the constant n the inlined emission reads the sorted keys at
    // compile-time positions, so that they stay in registers.
    constexpr int N = 8 * H;
    const std::int64_t M = kept(N);
    const __m512i step = _mm512_set1_epi64(8 * N);
    __m512i begin = _mm512_setr_epi64(0, N, 2 * N, 3 * N, 4 * N, 5 * N, 6 * N, 7 * N);
    const float* a[8];
    const int n[8] = {N, N, N, N, N, N, N, N};
    for (; g0 + 8 <= L.groups; g0 += 8) {
      for (int g = 0; g < 8; ++g)
        a[g] = adv + (g0 + g) * N;
      __m512i v[N];
      avx512::sort_eight_groups<H>(a, n, v);
      avx512::emit_eight_groups<W>(v, N, M, begin, pairs + 2 * k_out,
                                   weights ? weights + k_out : nullptr);
      k_out += 8 * M;
      begin = _mm512_add_epi64(begin, step);
    }
  }
  for (; g0 < L.groups; g0 += 8) {
    const float* a[8];
    int n[8];
    alignas(64) std::int64_t begin[8];
    for (int g = 0; g < 8; ++g) {
      begin[g] = g0 + g < L.groups ? L.begin(g0 + g) : 0;
      n[g] = g0 + g < L.groups ? static_cast<int>(L.size(g0 + g)) : 0;
      a[g] = group_values(adv, L, begin[g], n[g], gathered[g]);
    }
    __m512i v[8 * H];
    avx512::sort_eight_groups<H>(a, n, v);
    if (!L.rows && g0 + 8 <= L.groups && L.uniform > 0) {
      const std::int64_t M = kept(n[0]);
      avx512::emit_eight_groups<W>(v, n[0], M, _mm512_load_si512(begin), pairs + 2 * k_out,
                                   weights ? weights + k_out : nullptr);
      k_out += 8 * M;
      continue;
    }
    alignas(64) std::int64_t sorted[8 * H][8];
    for (int s = 0; s < 8 * H; ++s)
      _mm512_store_si512(sorted[s], v[s]);
    for (int g = 0; g < 8 && g0 + g < L.groups; ++g)
      k_out += put_sorted_pairs<W>(adv, L, begin[g], n[g], kept(n[g]), &sorted[0][g], 8,
                                   pairs + 2 * k_out, weights ? weights + k_out : nullptr);
  }
  return k_out;
}
#endif

/// Pass 2: the kept pairs and their weights, from the ranks of pass 1 inverted into sorted
/// positions (small groups) or a comparison sort (groups of more than 64 rows).
template <class T, pair_weight W>
inline std::int64_t emit_pairs(const T* adv, const host_layout& L, const pair_options& o,
                               std::int64_t g0, std::int64_t g1, const std::int32_t* rank,
                               std::int64_t* pairs, T* weights, pairs_scratch& scratch) {
  const std::int64_t base = L.begin(g0);
  std::int64_t k_out = 0;
  std::int64_t pos[rank_sort_limit];
  kept_by_size kept{o};
  for (std::int64_t g = g0; g < g1; ++g) {
    const std::int64_t begin = L.begin(g), n = L.size(g), M = kept(n);
    if (M == 0) continue;
    const std::int64_t* sorted;
    if (n <= rank_sort_limit) {
      const std::int32_t* rk = rank + (begin - base);
      if (L.rows) {
        for (std::int64_t i = 0; i < n; ++i)
          pos[rk[i]] = L.rows[begin + i];
      } else {
        for (std::int64_t i = 0; i < n; ++i)
          pos[rk[i]] = begin + i;
      }
      sorted = pos;
    } else {
      scratch.order.resize(static_cast<std::size_t>(n));
      for (std::int64_t k = 0; k < n; ++k)
        scratch.order[k] = k;
      const auto value = [&](std::int64_t k) { return adv[L.row(begin + k)]; };
      std::sort(scratch.order.begin(), scratch.order.end(), [&](std::int64_t x, std::int64_t y) {
        const T vx = value(x), vy = value(y);
        return vx > vy || (vx == vy && x < y);
      });
      for (std::int64_t k = 0; k < n; ++k)
        scratch.order[k] = L.row(begin + scratch.order[k]);
      sorted = scratch.order.data();
    }
    // One pair per iteration, scalar: M is small (n / 4 by default), where vectorized loops
    // with reversed indices cost more than they save.
    std::int64_t* out = pairs + 2 * k_out;
    T* wout = weights ? weights + k_out : nullptr;
    const std::int64_t* lo = sorted + n - 1;
    for (std::int64_t k = 0; k < M; ++k, --lo)
      put_pair<T, W>(adv, sorted[k], *lo, out + 2 * k, wout ? wout + k : nullptr);
    k_out += M;
  }
  return k_out;
}

/// Sizes the sort buffer pairs_kernel uses for groups above rank_sort_limit rows, for groups of
/// at most `largest` rows: after it, pairs_kernel allocates nothing.
inline void size_pairs_scratch(std::int64_t largest, pairs_scratch& scratch) {
  if (largest > rank_sort_limit)
    scratch.order.resize(std::max(scratch.order.size(), static_cast<std::size_t>(largest)));
}

/// Writes the kept pairs of every group. All preconditions checked by the caller. On CPUs with
/// AVX2 (AVX-512 included), when no group exceeds their limits, one pass: the merge network for
/// float groups of at most 16 rows (pairs_network_avx512 with AVX-512, eight groups per
/// register, else pairs_network_avx2, four), else ranks kept in registers for at
/// most 32 float / 16 double rows (pairs_small_avx2). Otherwise blocks of groups are ranked
/// (pass 1, with the widest instruction set available) and emitted (pass 2) in turn. Every
/// kernel orders rows by the same comparisons and computes weights with pair_weight_of's
/// operations, so the output does not depend on the CPU.
template <class T>
inline std::int64_t pairs_kernel(const T* adv, const host_layout& L, const pair_options& o,
                                 std::int64_t* pairs, T* weights, pairs_scratch& scratch,
                                 bool allow_simd = true) {
  const std::int64_t largest = L.largest();
#if SHUFFLE_R1_X86_SIMD
  // AVX-512 hosts too: on a Zen 5 the one pass took 15-43% less time than the AVX-512 rankers
  // and pass 2 for every float group size up to 32 and double up to 16 (docs/design.md, PTS).
  if (allow_simd && has_avx2() && largest <= avx2::rank_limit<T>) {
    return with_weight(o.weight, [&](auto w) {
      constexpr pair_weight W = decltype(w)::value;
      if constexpr (std::is_same_v<T, float>) {
        if (has_avx512()) {
          if (largest <= 8) return pairs_network_avx512<1, W>(adv, L, o, pairs, weights);
          if (largest <= 16) return pairs_network_avx512<2, W>(adv, L, o, pairs, weights);
        }
        if (largest <= 8) return pairs_network_avx2<1, W>(adv, L, o, pairs, weights);
        if (largest <= 16) return pairs_network_avx2<2, W>(adv, L, o, pairs, weights);
      }
      return pairs_small_avx2<T, W>(adv, L, o, pairs, weights);
    });
  }
#endif
  alignas(64) std::int32_t rank[rank_block_rows];
  std::int64_t k_out = 0;
  size_pairs_scratch(largest, scratch);  // before the first write
  for (std::int64_t g0 = 0, g1 = 0; g0 < L.groups; g0 = g1) {
    // The block: g0 and the following groups that end within rank_block_rows rows of its start
    // (a first group larger than that is alone and sorted by comparison, without the buffer).
    const std::int64_t base = L.begin(g0);
    g1 = g0 + 1;
    if (L.uniform > 0)
      g1 = std::min(L.groups, g0 + std::max<std::int64_t>(1, rank_block_rows / L.uniform));
    else
      while (g1 < L.groups && L.begin(g1) + L.size(g1) - base <= rank_block_rows)
        ++g1;
#if SHUFFLE_R1_X86_SIMD
    if (allow_simd && has_avx512_cd())
      rank_groups_avx512_cd(adv, L, o, g0, g1, rank);
    else if (allow_simd && has_avx512())
      rank_groups_avx512(adv, L, o, g0, g1, rank);
    else if (allow_simd && has_avx2())
      rank_groups_avx2(adv, L, o, g0, g1, rank);
    else
      rank_groups_portable(adv, L, o, g0, g1, rank);
#else
    (void)allow_simd;
    rank_groups_portable(adv, L, o, g0, g1, rank);
#endif
    std::int64_t* p = pairs + 2 * k_out;
    T* w = weights ? weights + k_out : nullptr;
    k_out += with_weight(o.weight, [&](auto wt) {
      return emit_pairs<T, decltype(wt)::value>(adv, L, o, g0, g1, rank, p, w, scratch);
    });
  }
  return k_out;
}

/// Checks that every advantage is finite; the message names the first bad row.
template <class T>
inline void validate_finite(const char* fn, const char* what, host_span<const T> v) {
  // Branch-free scan in blocks (vectorizes); the exact row is looked up only on failure.
  constexpr std::size_t block = 256;
  bool all_finite = true;
  for (std::size_t b = 0; b < v.size() && all_finite; b += block) {
    const std::size_t e = std::min(v.size(), b + block);
    unsigned bad = 0;  // an integer OR vectorizes where `bool &=` does not (GCC 12)
    for (std::size_t i = b; i < e; ++i)
      bad |= static_cast<unsigned>(!is_finite(v[i]));
    all_finite = bad == 0;
  }
  if (all_finite) return;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!is_finite(v[i])) {
      const char* kind = v[i] != v[i] ? "NaN" : (v[i] > 0 ? "+inf" : "-inf");
      fail(errc::non_finite, fn, what, "[", i, "] is ", kind);
    }
}

}  // namespace detail::cpu
}  // namespace shuffle_r1
