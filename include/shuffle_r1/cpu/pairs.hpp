/// @file cpu/pairs.hpp
/// @brief CPU implementation of select_pairs (PTS). Internal: include <shuffle_r1/pairs.hpp>.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

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
constexpr std::int64_t pairs_available(std::int64_t n) noexcept { return n / 2; }

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
  for (std::int64_t g = 0; g < L.groups; ++g) {
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
  return K;
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

/// Largest group sorted by rank counting; larger groups use a comparison sort.
inline constexpr std::int64_t rank_sort_limit = 64;

/// Reusable scratch of the pair selection.
struct pairs_scratch {
  std::vector<std::int64_t> order;  // sort of one large group
};

/// s[0..P) = positions of a group in the order of descending advantage, ties in batch order.
/// Rank counting, rank(i) = #{j : a_j > a_i} + #{j < i : a_j == a_i}, accumulated column by
/// column so that the inner loop runs over i with a compile-time trip count and vectorizes.
/// The group's n values are padded to P with -infinity, which ranks below every finite value
/// and so cannot change the ranks of real rows (they occupy s[n..P)).
template <int P, class T>
inline void rank_sort(const T* a, std::int32_t* s) noexcept {
  std::int32_t r[P] = {};
  for (int j = 0; j < P; ++j) {
    const T aj = a[j];
    for (int i = 0; i < P; ++i)
      r[i] += static_cast<std::int32_t>(aj > a[i]) +
              static_cast<std::int32_t>((aj == a[i]) & (j < i));
  }
  for (int i = 0; i < P; ++i) s[r[i]] = i;
}

template <class T>
inline void rank_sort_dyn(const T* a, std::int64_t n, std::int32_t* s) noexcept {
  switch (padded_width(n)) {
    case 1:
    case 2: rank_sort<2>(a, s); break;
    case 4: rank_sort<4>(a, s); break;
    case 8: rank_sort<8>(a, s); break;
    case 16: rank_sort<16>(a, s); break;
    case 32: rank_sort<32>(a, s); break;
    default: rank_sort<64>(a, s); break;
  }
}

/// Writes the kept pairs of every group. All preconditions checked by the caller.
template <class T>
inline std::int64_t pairs_kernel(const T* adv, const host_layout& L, const pair_options& o,
                                 std::int64_t* pairs, T* weights, pairs_scratch& scratch) {
  T a[rank_sort_limit];
  std::int32_t s[rank_sort_limit];
  std::int64_t k_out = 0;
  for (std::int64_t g = 0; g < L.groups; ++g) {
    const std::int64_t begin = L.begin(g), n = L.size(g);
    const std::int64_t M = pairs_kept(pairs_available(n), o);
    if (M == 0) continue;
    const T* values = a;
    const std::int32_t* small = s;
    const std::int64_t* large = nullptr;
    if (n <= rank_sort_limit) {
      const int P = padded_width(n < 2 ? 2 : n);
      for (std::int64_t k = 0; k < n; ++k) a[k] = adv[L.row(begin + k)];
      for (std::int64_t k = n; k < P; ++k) a[k] = -std::numeric_limits<T>::infinity();
      rank_sort_dyn(a, n, s);
    } else {
      scratch.order.resize(static_cast<std::size_t>(n));
      for (std::int64_t k = 0; k < n; ++k) scratch.order[k] = k;
      const auto value = [&](std::int64_t k) { return adv[L.row(begin + k)]; };
      std::sort(scratch.order.begin(), scratch.order.end(), [&](std::int64_t x, std::int64_t y) {
        const T vx = value(x), vy = value(y);
        return vx > vy || (vx == vy && x < y);
      });
      large = scratch.order.data();
      values = nullptr;
      small = nullptr;
    }
    const auto sorted = [&](std::int64_t k) -> std::int64_t { return small ? small[k] : large[k]; };
    for (std::int64_t k = 0; k < M; ++k) {
      const std::int64_t hi = sorted(k), lo = sorted(n - 1 - k);
      pairs[2 * k_out] = L.row(begin + hi);
      pairs[2 * k_out + 1] = L.row(begin + lo);
      if (weights) {
        const T ahi = values ? values[hi] : adv[L.row(begin + hi)];
        const T alo = values ? values[lo] : adv[L.row(begin + lo)];
        weights[k_out] = pair_weight_of(ahi, alo, o.weight);
      }
      ++k_out;
    }
  }
  return k_out;
}

/// Checks that every advantage is finite; the message names the first bad row.
template <class T>
inline void validate_finite(const char* fn, const char* what, host_span<const T> v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!is_finite(v[i])) {
      const char* kind = v[i] != v[i] ? "NaN" : (v[i] > 0 ? "+inf" : "-inf");
      fail(errc::non_finite, fn, what, "[", i, "] is ", kind);
    }
}

}  // namespace detail::cpu
}  // namespace shuffle_r1
