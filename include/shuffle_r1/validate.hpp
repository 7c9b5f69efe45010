/// @file validate.hpp
/// @brief Invariant checks a caller can run on any selection result (SPEC.md sections 3 and 4).
///
/// A selection bug in a trainer is silent. `validate_selection` re-checks, independently of the
/// kernels that produced them, the properties every correct output has: pairs disjoint and inside
/// their group, hi advantage >= lo advantage, the number of pairs of every group, weights equal
/// to the configured pair weight, order indices in range and distinct within a round, training
/// rows equal to the ordered pairs. It never throws for a bad *result*: it returns the first
/// violation found, as a message naming the entry. It is used by the tests and the fuzzers.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/cpu/pairs.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/pipeline.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace shuffle_r1 {

/// The outcome of validate_selection: `ok`, or the first violated invariant in `message`.
struct validation {
  bool ok = true;       ///< every invariant holds
  std::string message;  ///< empty when ok; otherwise "what is wrong, at which index"
  /// True when every invariant holds.
  explicit operator bool() const noexcept { return ok; }
};

/// What to check: the outputs of a selection over a batch. Empty spans are not checked (and
/// `order`/`rows` only when given).
template <class T>
struct selection_view {
  host_span<const T> advantages;        ///< B advantages (the values PTS ranked)
  host_span<const std::int64_t> pairs;  ///< 2K: [hi, lo] batch rows, group by group
  host_span<const T> pair_weights;      ///< K, or empty
  host_span<const std::int64_t> order;  ///< S*T pair indices, or empty
  host_span<const std::int64_t> rows;   ///< 2*S*T training rows, or empty
  std::int64_t rounds = 1;              ///< S: order is S rounds of order.size() / S pairs
};

namespace detail {
template <class... Parts>
validation violated(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return validation{false, s.str()};
}
}  // namespace detail

/// Checks a selection against its batch's layout and the PTS options that produced it.
///
/// @param groups   the group layout of the batch (rows = advantages.size())
/// @param options  the PTS options used (keep ratio or keep pairs, odd policy, weight)
/// @param s        the outputs to check
/// @return `ok`, or the first violation: advantages not finite; a pair count other than
///         count_pairs(groups, B, options) or other than M pairs in some group; a pair row outside
///         [0, B) or outside the group whose pairs are being read; a row used twice; adv[hi] <
///         adv[lo]; a weight other than the configured pair weight of its pair (bit-exact: the
///         library computes it in double and rounds once); `order` not a multiple of `rounds`, an
///         index outside [0, K) or repeated within a round; `rows` other than 2 * order.size()
///         entries or not the ordered pairs.
/// @throws error only when the *inputs of the check* are unusable: an invalid layout for B rows
///         (errc::invalid_layout, size_mismatch), invalid pair options (as count_pairs), rounds
///         < 1 (errc::invalid_argument).
/// @par Determinism Pure function of its arguments.
/// @par Complexity O(B + K + order.size()) time, O(B) memory.
template <class T, class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
validation validate_selection(const Layout& groups, const pair_options& options,
                              const selection_view<T>& s) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "validate_selection: advantages must be float or double");
  constexpr const char* fn = "validate_selection";
  const auto B = static_cast<std::int64_t>(s.advantages.size());
  detail::layout_scratch scratch;
  const detail::host_layout L = detail::validate_layout(fn, groups, B, scratch);
  const std::int64_t K = detail::validate_pairs_plan(fn, L, options);
  if (s.rounds < 1)
    detail::fail(errc::invalid_argument, fn, "rounds is ", s.rounds, ", expected >= 1");

  for (std::int64_t i = 0; i < B; ++i)
    if (!detail::is_finite(s.advantages[i]))
      return detail::violated("advantages[", i, "] = ", s.advantages[i], " is not finite");
  if (static_cast<std::int64_t>(s.pairs.size()) != 2 * K)
    return detail::violated("pairs has ", s.pairs.size(), " entries, expected 2 * ", K);
  if (!s.pair_weights.empty() && static_cast<std::int64_t>(s.pair_weights.size()) != K)
    return detail::violated("pair_weights has ", s.pair_weights.size(), " entries, expected ", K);

  // Group of every row, then walk the pairs group by group.
  std::vector<std::int64_t> group_of(static_cast<std::size_t>(B), -1);
  for (std::int64_t g = 0; g < L.groups; ++g)
    for (std::int64_t k = L.begin(g); k < L.begin(g) + L.size(g); ++k)
      group_of[L.row(k)] = g;
  std::vector<char> used(static_cast<std::size_t>(B), 0);
  std::int64_t k = 0;
  for (std::int64_t g = 0; g < L.groups; ++g) {
    const std::int64_t M = detail::pairs_kept(detail::pairs_available(L.size(g)), options);
    for (std::int64_t m = 0; m < M; ++m, ++k) {
      const std::int64_t hi = s.pairs[2 * k], lo = s.pairs[2 * k + 1];
      for (const std::int64_t r : {hi, lo}) {
        if (r < 0 || r >= B)
          return detail::violated("pair ", k, " has row ", r, ", outside [0, ", B, ")");
        if (group_of[r] != g)
          return detail::violated("pair ", k, " (pair ", m, " of group ", g, ") has row ", r,
                                  " of group ", group_of[r]);
        if (used[r]++)
          return detail::violated("row ", r, " is in two pairs (again in pair ", k, ")");
      }
      if (!(s.advantages[hi] >= s.advantages[lo]))
        return detail::violated("pair ", k, ": advantage of hi row ", hi, " (", s.advantages[hi],
                                ") is below that of lo row ", lo, " (", s.advantages[lo], ")");
      if (!s.pair_weights.empty()) {
        const T want = detail::pair_weight_of(s.advantages[hi], s.advantages[lo], options.weight);
        if (!(s.pair_weights[k] == want))
          return detail::violated("pair_weights[", k, "] = ", s.pair_weights[k], ", expected ",
                                  want, " (", to_string(options.weight), " of the pair)");
      }
    }
  }

  const auto n_order = static_cast<std::int64_t>(s.order.size());
  if (n_order % s.rounds != 0)
    return detail::violated("order has ", n_order,
                            " entries, not a multiple of rounds = ", s.rounds);
  const std::int64_t T_round = n_order / s.rounds;
  std::vector<std::int64_t> seen_in(static_cast<std::size_t>(K), -1);  // last round seen
  for (std::int64_t i = 0; i < n_order; ++i) {
    const std::int64_t j = s.order[i];
    if (j < 0 || j >= K)
      return detail::violated("order[", i, "] = ", j, " is outside [0, ", K, ")");
    const std::int64_t round = i / T_round;
    if (seen_in[j] == round)
      return detail::violated("order[", i, "] = ", j, " repeats a pair within round ", round);
    seen_in[j] = round;
  }
  if (!s.rows.empty()) {
    if (static_cast<std::int64_t>(s.rows.size()) != 2 * n_order)
      return detail::violated("rows has ", s.rows.size(), " entries, expected 2 * ", n_order);
    for (std::int64_t i = 0; i < n_order; ++i)
      for (int h = 0; h < 2; ++h)
        if (s.rows[2 * i + h] != s.pairs[2 * s.order[i] + h])
          return detail::violated("rows[", 2 * i + h, "] = ", s.rows[2 * i + h], ", expected row ",
                                  s.pairs[2 * s.order[i] + h], " of pair ", s.order[i]);
  }
  return validation{};
}

/// validate_selection on the outputs of run_pipeline (the spans given to it, all non-empty
/// except the group statistics), with the configuration and summary of that call.
/// @throws as validate_selection. @par Complexity O(B + K + S*T).
template <class T, class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
validation validate_pipeline(const Layout& groups, const pipeline_config& config,
                             const pipeline_summary& summary, const pipeline_outputs<T>& out) {
  selection_view<T> s;
  s.advantages = host_span<const T>(out.advantages.data(), out.advantages.size());
  s.pairs =
      host_span<const std::int64_t>(out.pairs.data(), static_cast<std::size_t>(2 * summary.pairs));
  if (!out.pair_weights.empty())
    s.pair_weights =
        host_span<const T>(out.pair_weights.data(), static_cast<std::size_t>(summary.pairs));
  s.order = host_span<const std::int64_t>(out.order.data(),
                                          static_cast<std::size_t>(summary.shuffle.size));
  if (!out.rows.empty())
    s.rows = host_span<const std::int64_t>(out.rows.data(),
                                           static_cast<std::size_t>(2 * summary.shuffle.size));
  s.rounds = summary.shuffle.rounds;
  if (validation v = validate_selection(groups, config.pairs, s); !v) return v;
  if (summary.shuffle.size != summary.shuffle.rounds * summary.shuffle.per_round)
    return detail::violated("summary: size ", summary.shuffle.size, " != rounds ",
                            summary.shuffle.rounds, " * per_round ", summary.shuffle.per_round);
  if (summary.shuffle.per_round > summary.pairs)
    return detail::violated("summary: per_round ", summary.shuffle.per_round, " > pairs ",
                            summary.pairs);
  return validation{};
}

}  // namespace shuffle_r1
