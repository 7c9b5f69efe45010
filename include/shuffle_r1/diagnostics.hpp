/// @file diagnostics.hpp
/// @brief What researchers measure about a selection (SPEC.md section 6): advantage
/// collapsing, the non-zero-gradient share of the training batch, pair reuse.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/span.hpp>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace shuffle_r1 {

namespace detail {
inline void check_threshold(const char* fn, double threshold) {
  if (!is_finite(threshold) || threshold < 0.0)
    fail(errc::invalid_argument, fn, "threshold is ", threshold, ", expected a finite value >= 0");
}
inline void check_rows(const char* fn, host_span<const std::int64_t> rows, std::size_t B) {
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (rows[i] < 0 || static_cast<std::size_t>(rows[i]) >= B)
      fail(errc::invalid_argument, fn, "rows[", i, "] = ", rows[i], " is outside [0, ", B, ")");
}
}  // namespace detail

/// Advantage collapsing: the share of `advantages` with |A| < threshold (the paper uses 0.1).
/// @throws error(errc::invalid_argument) for a negative or non-finite threshold.
/// @par Empty input returns 0. @par Determinism Exact (a count). @par Complexity O(B).
template <class T>
double collapse_ratio(cpu_policy, host_span<const T> advantages, double threshold = 0.1) {
  detail::check_threshold("collapse_ratio", threshold);
  if (advantages.empty()) return 0.0;
  std::int64_t below = 0;
  for (const T a : advantages) below += std::fabs(static_cast<double>(a)) < threshold;
  return static_cast<double>(below) / static_cast<double>(advantages.size());
}

/// Advantage collapsing over a subset of rows (for example the rows of the kept pairs, or the
/// training rows): the share of listed rows r with |advantages[r]| < threshold, counted with
/// multiplicity.
/// @throws error(errc::invalid_argument) for a bad threshold or a row outside [0, B).
/// @par Empty `rows` returns 0. @par Complexity O(rows.size()).
template <class T>
double collapse_ratio(cpu_policy, host_span<const T> advantages,
                      host_span<const std::int64_t> rows, double threshold = 0.1) {
  constexpr const char* fn = "collapse_ratio";
  detail::check_threshold(fn, threshold);
  detail::check_rows(fn, rows, advantages.size());
  if (rows.empty()) return 0.0;
  std::int64_t below = 0;
  for (const std::int64_t r : rows)
    below += std::fabs(static_cast<double>(advantages[static_cast<std::size_t>(r)])) < threshold;
  return static_cast<double>(below) / static_cast<double>(rows.size());
}

/// Rollout silencing: the share of training rows whose advantage is non-zero (they carry a
/// policy gradient). GRPO falls towards 81% during training; Shuffle-R1 keeps about 99%.
/// @throws error(errc::invalid_argument) for a row outside [0, B).
/// @par Empty `rows` returns 0. @par Complexity O(rows.size()).
template <class T>
double nonzero_gradient_ratio(cpu_policy, host_span<const T> advantages,
                              host_span<const std::int64_t> rows) {
  detail::check_rows("nonzero_gradient_ratio", rows, advantages.size());
  if (rows.empty()) return 0.0;
  std::int64_t nonzero = 0;
  for (const std::int64_t r : rows) nonzero += advantages[static_cast<std::size_t>(r)] != T(0);
  return static_cast<double>(nonzero) / static_cast<double>(rows.size());
}

/// Pair reuse: how often each of K pairs appears in an ABS order.
///
/// @param histogram output: histogram[m] = number of pairs used exactly m times, for
///        m < histogram.size(); pairs used more often are counted in the last entry. Size S + 1
///        covers every count of an S-round order.
/// @return the number of distinct pairs used (multiplicity >= 1)
/// @throws error(errc::invalid_argument) for an order entry outside [0, K) or K < 0.
/// @par Complexity O(K + order.size()) time, O(K) memory.
inline std::int64_t pair_multiplicity(cpu_policy, host_span<const std::int64_t> order,
                                      std::int64_t num_pairs, host_span<std::int64_t> histogram) {
  constexpr const char* fn = "pair_multiplicity";
  if (num_pairs < 0)
    detail::fail(errc::invalid_argument, fn, "num_pairs is ", num_pairs, ", expected >= 0");
  for (std::size_t i = 0; i < order.size(); ++i)
    if (order[i] < 0 || order[i] >= num_pairs)
      detail::fail(errc::invalid_argument, fn, "order[", i, "] = ", order[i], " is outside [0, ",
                   num_pairs, ")");
  std::vector<std::int64_t> count(static_cast<std::size_t>(num_pairs), 0);
  for (const std::int64_t j : order) ++count[static_cast<std::size_t>(j)];
  for (auto& h : histogram) h = 0;
  std::int64_t distinct = 0;
  for (const std::int64_t c : count) {
    distinct += c > 0;
    if (!histogram.empty()) {
      const auto slot = std::min<std::size_t>(static_cast<std::size_t>(c), histogram.size() - 1);
      ++histogram[slot];
    }
  }
  return distinct;
}

}  // namespace shuffle_r1
