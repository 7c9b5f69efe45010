/// @file diagnostics.hpp
/// @brief What researchers measure about a selection (SPEC.md section 6): advantage
/// collapsing, the non-zero-gradient share of the training batch, pair reuse.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/cpu/shuffle.hpp>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/detail/tokens.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/span.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
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
  for (const T a : advantages)
    below += std::fabs(static_cast<double>(a)) < threshold;
  return static_cast<double>(below) / static_cast<double>(advantages.size());
}

/// Advantage collapsing over a subset of rows (for example the rows of the kept pairs, or the
/// training rows): the share of listed rows r with |advantages[r]| < threshold, counted with
/// multiplicity.
/// @throws error(errc::invalid_argument) for a bad threshold or a row outside [0, B).
/// @par Empty `rows` returns 0. @par Complexity O(rows.size()).
template <class T>
double collapse_ratio(cpu_policy, host_span<const T> advantages, host_span<const std::int64_t> rows,
                      double threshold = 0.1) {
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
  for (const std::int64_t r : rows)
    nonzero += advantages[static_cast<std::size_t>(r)] != T(0);
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
  for (const std::int64_t j : order)
    ++count[static_cast<std::size_t>(j)];
  for (auto& h : histogram)
    h = 0;
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

// ---------------------------------------------------------------------------------------------
// Research diagnostics (docs/research.md): token utilization and the effective sample size of
// the ABS distribution. Pair reuse of any index list (pairs or rows) is pair_multiplicity above.
// ---------------------------------------------------------------------------------------------

/// Token utilization: the share of the response tokens of the listed rows (with multiplicity)
/// that belong to a row with a non-zero advantage, i.e. receive a policy gradient.
///
/// @param advantages B advantages
/// @param lengths B response lengths in tokens (integers >= 0)
/// @param rows rows of the training batch in [0, B), repeats counted
/// @return sum of lengths[r] over rows with advantages[r] != 0, divided by the sum of
///         lengths[r] over all listed rows; 0 when the rows hold no token
/// @throws error errc::size_mismatch (lengths.size() != B), errc::invalid_argument (a negative
///         length or a row outside [0, B), named), errc::out_of_range (token sums beyond 2^63).
/// @par Empty `rows` returns 0. @par Determinism Exact (integer counts, one division).
/// @par Complexity O(B + rows.size()).
template <class T, class L>
double token_utilization(cpu_policy, host_span<const T> advantages, host_span<const L> lengths,
                         host_span<const std::int64_t> rows) {
  constexpr const char* fn = "token_utilization";
  if (lengths.size() != advantages.size())
    detail::fail(errc::size_mismatch, fn, "lengths has ", lengths.size(), " entries, expected ",
                 advantages.size(), " (one per row)");
  (void)detail::checked_tokens(fn, lengths);
  detail::check_rows(fn, rows, advantages.size());
  std::int64_t used = 0, total = 0;
  for (const std::int64_t r : rows) {
    const auto i = static_cast<std::size_t>(r);
    const auto len = static_cast<std::int64_t>(lengths[i]);
    if (len > std::numeric_limits<std::int64_t>::max() - total)
      detail::fail(errc::out_of_range, fn, "the listed rows hold more than 2^63 tokens");
    total += len;
    used += advantages[i] != T(0) ? len : 0;
  }
  return total == 0 ? 0.0 : static_cast<double>(used) / static_cast<double>(total);
}

/// Token utilization over all B rows (each once).
/// @throws error as the overload with rows. @par Empty input returns 0.
/// @par Complexity O(B).
template <class T, class L>
double token_utilization(cpu_policy, host_span<const T> advantages, host_span<const L> lengths) {
  constexpr const char* fn = "token_utilization";
  if (lengths.size() != advantages.size())
    detail::fail(errc::size_mismatch, fn, "lengths has ", lengths.size(), " entries, expected ",
                 advantages.size(), " (one per row)");
  const std::int64_t total = detail::checked_tokens(fn, lengths);
  std::int64_t used = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i)
    used += advantages[i] != T(0) ? static_cast<std::int64_t>(lengths[i]) : 0;
  return total == 0 ? 0.0 : static_cast<double>(used) / static_cast<double>(total);
}

/// Effective sample size (Kish) of the ABS sampling distribution p = q / sum q of K pair
/// weights under `options` (transform, coeff, temperatures, step): (sum q)^2 / sum q^2, in
/// [1, K]. K means uniform sampling; 1 means one pair holds all the mass. It is computed from
/// the integer masses ABS itself draws from (relative error below 2^-40 per mass), so it
/// describes exactly the distribution shuffle_pairs uses.
///
/// @param weights K finite weights >= 0 (from select_pairs)
/// @return the ESS; 0 when K = 0 or every mass is zero
/// @throws error as shuffle_pairs for the weights and options (errc::non_finite,
///         errc::invalid_argument, errc::too_few_pairs when options.per_round > K,
///         errc::out_of_range).
/// @par Determinism Bit-identical across runs and builds (integer masses, sequential sums).
/// @par Complexity O(K) time and memory.
template <class T>
SHUFFLE_R1_STRICT_FP double effective_sample_size(cpu_policy, host_span<const T> weights,
                                                  const shuffle_options& options = {}) {
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "effective_sample_size: weights must be float or double");
  constexpr const char* fn = "effective_sample_size";
  const auto K = static_cast<std::int64_t>(weights.size());
  (void)detail::validate_shuffle_options(fn, K, options);
  const detail::mass_plan plan = detail::cpu::plan_masses(fn, weights, options);
  std::vector<std::uint64_t> mass(static_cast<std::size_t>(K));
  (void)detail::cpu::masses_of(plan, weights.data(), K, mass.data());
  std::uint64_t total = 0;  // < 2^62 by construction of the masses
  double squares = 0.0;
  for (const std::uint64_t m : mass) {
    total += m;
    squares =
        detail::fp::add(squares, detail::fp::mul(static_cast<double>(m), static_cast<double>(m)));
  }
  if (total == 0) return 0.0;
  const double t = static_cast<double>(total);
  return detail::fp::div(detail::fp::mul(t, t), squares);
}

/// Convenience overload: weights from any host container.
template <class Weights, class = std::enable_if_t<is_host_viewable_v<Weights>>>
double effective_sample_size(cpu_policy policy, Weights&& weights,
                             const shuffle_options& options = {}) {
  using T = std::remove_const_t<typename host_view_t<Weights>::element_type>;
  return effective_sample_size<T>(policy, host_span<const T>(as_host_span(weights)), options);
}

}  // namespace shuffle_r1
