/// @file selectors.hpp
/// @brief Selection rules beside PTS, for fair comparisons: PODS max-variance down-sampling,
/// DAPO zero-variance filtering, RAGEN std top-k/top-p, the paper's pair ablations (random,
/// top, bottom half of the pairs), importance resampling, and a random shuffle instead of ABS.
///
/// Every rule takes the same inputs (rewards, advantages, a group layout) and writes row
/// indices; each keeps at most 2 M_g rows of group g, M_g being what PTS keeps with the same
/// pair_options, so all rules train on the same budget. docs/research.md describes each rule
/// and where it comes from.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/cpu/pairs.hpp>
#include <shuffle_r1/cpu/selectors.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/research_types.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace shuffle_r1 {

/// Entries select_rows may write for this layout: the sum over groups of 2 M_g (M_g as
/// count_pairs computes it), or of n_g for `dapo` and `std_topk` under keep_all_rows. The
/// filtering rules may write fewer (see selection_summary::rows).
///
/// @throws error errc::invalid_layout (groups), errc::odd_group / errc::too_few_pairs (as
///         count_pairs), errc::invalid_argument (options), errc::out_of_range (more than 2^56
///         groups, or a random rule drawing 2^32 or more items in one group).
/// @par Determinism A pure function of the layout and options.
/// @par Complexity O(G) (O(B + R log R) for id_groups, which are resolved first).
template <class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
std::int64_t count_selected_rows(const Layout& groups, std::int64_t rows,
                                 const selector_options& options = {}) {
  constexpr const char* fn = "count_selected_rows";
  detail::layout_scratch scratch;
  const detail::host_layout L = detail::validate_layout(fn, groups, rows, scratch);
  return detail::selector_plan(fn, L, options);
}

/// Applies one selection rule group by group and writes the selected rows.
///
/// Per group g, with M_g the pairs PTS keeps there (options.pairs) and rows sorted by advantage
/// descending with ties in batch order (as PTS sorts):
/// - `pts`: the M_g outermost max-min pairs, exactly select_pairs; rows as (hi, lo) pairs.
/// - `top` / `bottom`: the M_g max-min pairs of largest / smallest weight (options.pairs.weight;
///   ties: `top` prefers the outer pair, `bottom` the inner one); rows as (hi, lo) pairs in
///   rank order. `top` equals `pts` whenever the weights do not increase with the rank, which
///   is the common case.
/// - `random`: M_g of the max-min pairs uniformly at random without replacement; rows as
///   (hi, lo) pairs in rank order.
/// - `pods`: the 2M_g rows whose advantages have the largest variance, searched over the
///   subsets "top i plus bottom 2M_g - i" with prefix sums (PODS proves one of them is
///   optimal). Variances within a relative 1e-9 of the best count as equal; the tie goes to the
///   i closest to M_g (PTS's rows), then to the smaller i. Rows in descending advantage order.
/// - `dapo`: groups whose rewards satisfy max - min <= tolerance are dropped (DAPO's dynamic
///   sampling); kept groups contribute their first 2M_g rows in batch order (all n_g rows under
///   keep_all_rows). The dropped count is the number of prompts a trainer must refill.
/// - `std_topk`: groups ranked by the sample std (ddof 1; exactly 0 for constant groups) of
///   their rewards, descending, ties in group order; `top_k` keeps the first
///   floor(group_ratio * G') of the G' groups with room for rows, `top_p` the shortest prefix
///   whose std sum reaches group_ratio times the total (none when every std is 0). Kept groups
///   contribute rows as for `dapo`, in group order.
/// - `resample`: 2M_g draws with replacement, row j drawn with probability proportional to
///   |v_j|^power, v the rewards (or the advantages under resample_advantages); rows in draw
///   order. A group whose masses are all zero follows options.zero_mass.
/// Groups are emitted in layout order; a pair rule's output is also a valid `pairs` argument of
/// pair_weights, shuffle_pairs' callers and pairs_to_rows.
///
/// @param rewards B finite rewards; may be empty when the rule does not read them (every rule
///        but dapo, std_topk and resample on rewards)
/// @param advantages B finite advantages (from normalize_advantages); B is their count
/// @param groups any layout covering exactly B rows
/// @param rows output, at least count_selected_rows(groups, B, options) entries
/// @return rows written, groups kept and groups dropped
/// @throws error as count_selected_rows, plus errc::size_mismatch (rewards or rows of the
///         wrong size) and errc::non_finite (a reward or advantage is NaN or infinite: the
///         message names the row). Nothing is written on a throw.
/// @par Empty input B = 0 writes nothing and returns zeros.
/// @par Determinism A pure function of its inputs: `random` and `resample` draw their
///      randomness from Philox4x32-10 of (seed; step, group, item), so the same seed and step
///      give the same rows on every run and build; other steps give independent draws.
/// @par Complexity O(B + sum n_g log n_g) time, O(B) extra memory (allocated per call).
template <class T, class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
selection_summary select_rows(cpu_policy, host_span<const T> rewards, host_span<const T> advantages,
                              const Layout& groups, host_span<std::int64_t> rows,
                              const selector_options& options = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "select_rows: rewards and advantages must be float or double");
  constexpr const char* fn = "select_rows";
  detail::layout_scratch scratch;
  const auto B = static_cast<std::int64_t>(advantages.size());
  const detail::host_layout L = detail::validate_layout(fn, groups, B, scratch);
  const std::int64_t capacity = detail::selector_plan(fn, L, options);
  const bool reads_rewards = detail::selector_reads_rewards(options);
  if (static_cast<std::int64_t>(rewards.size()) != B && !(rewards.empty() && !reads_rewards))
    detail::fail(errc::size_mismatch, fn, "rewards has ", rewards.size(), " entries, expected ", B,
                 reads_rewards ? "" : " (or 0: this rule does not read rewards)");
  if (static_cast<std::int64_t>(rows.size()) < capacity)
    detail::fail(errc::size_mismatch, fn, "rows has ", rows.size(), " entries, needs ", capacity,
                 " (count_selected_rows)");
  detail::cpu::validate_finite(fn, "advantages", advantages);
  if (reads_rewards) detail::cpu::validate_finite(fn, "rewards", rewards);
  selection_summary sum;
  sum.groups = L.groups;
  std::int64_t* out = rows.data();
  switch (options.kind) {
    case selector::pods:
      detail::cpu::pods_kernel(advantages.data(), L, options, out, sum);
      break;
    case selector::dapo:
      detail::cpu::dapo_kernel(rewards.data(), L, options, out, sum);
      break;
    case selector::std_topk:
      detail::cpu::std_topk_kernel(rewards.data(), L, options, out, sum);
      break;
    case selector::resample:
      detail::cpu::resample_kernel(options.resample_advantages ? advantages.data() : rewards.data(),
                                   L, options, out, sum);
      break;
    default:
      detail::cpu::pair_rule_kernel(advantages.data(), L, options, out, sum);
      break;
  }
  return sum;
}

/// Convenience overload: any host containers (std::vector, Eigen vectors, spans).
template <class Rewards, class Adv, class Layout, class Rows,
          class = std::enable_if_t<is_host_viewable_v<Rewards> && is_host_viewable_v<Adv> &&
                                   is_host_viewable_v<Rows> && is_host_layout_v<Layout>>>
selection_summary select_rows(cpu_policy policy, Rewards&& rewards, Adv&& advantages,
                              const Layout& groups, Rows&& rows,
                              const selector_options& options = {}) {
  using T = std::remove_const_t<typename host_view_t<Adv>::element_type>;
  return select_rows<T>(policy, host_span<const T>(as_host_span(rewards)),
                        host_span<const T>(as_host_span(advantages)), groups,
                        host_span<std::int64_t>(as_host_span(rows)), options);
}

/// The weight of every pair of a pair list (from select_pairs or a pair rule of select_rows),
/// as select_pairs computes it: `sum` |A_a| + |A_b|, `max` max(|A_a|, |A_b|), `mean` the half
/// sum, `pos` |max(A_a, A_b)|; in double, rounded once to T.
///
/// @param advantages B finite advantages
/// @param pairs 2K row indices in [0, B): (a_0, b_0, a_1, b_1, ...)
/// @param weights output, at least K entries
/// @throws error errc::size_mismatch (odd pair list, weights too small), errc::invalid_argument
///         (a row outside [0, B), named; an invalid weight kind), errc::non_finite (an
///         advantage is NaN or infinite). Nothing is written on a throw.
/// @par Empty input K = 0 writes nothing. @par Determinism Pure.
/// @par Complexity O(B + K).
template <class T>
void pair_weights(cpu_policy, host_span<const T> advantages, host_span<const std::int64_t> pairs,
                  host_span<T> weights, pair_weight kind = pair_weight::sum) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "pair_weights: advantages must be float or double");
  constexpr const char* fn = "pair_weights";
  if (kind != pair_weight::sum && kind != pair_weight::max && kind != pair_weight::mean &&
      kind != pair_weight::pos)
    detail::fail(errc::invalid_argument, fn, "kind has no valid pair_weight value (",
                 static_cast<int>(kind), ")");
  if (pairs.size() % 2 != 0)
    detail::fail(errc::size_mismatch, fn, "pairs has ", pairs.size(),
                 " entries, expected an even number (two rows per pair)");
  const std::size_t K = pairs.size() / 2;
  if (weights.size() < K)
    detail::fail(errc::size_mismatch, fn, "weights has ", weights.size(), " entries, needs ", K);
  for (std::size_t i = 0; i < pairs.size(); ++i)
    if (pairs[i] < 0 || static_cast<std::size_t>(pairs[i]) >= advantages.size())
      detail::fail(errc::invalid_argument, fn, "pairs[", i, "] = ", pairs[i], " is outside [0, ",
                   advantages.size(), ")");
  detail::cpu::validate_finite(fn, "advantages", advantages);
  for (std::size_t k = 0; k < K; ++k) {
    const T a = advantages[static_cast<std::size_t>(pairs[2 * k])];
    const T b = advantages[static_cast<std::size_t>(pairs[2 * k + 1])];
    weights[k] = detail::pair_weight_of(a > b ? a : b, a > b ? b : a, kind);
  }
}

/// Convenience overload: any host containers.
template <class Adv, class Pairs, class Weights,
          class = std::enable_if_t<is_host_viewable_v<Adv> && is_host_viewable_v<Pairs> &&
                                   is_host_viewable_v<Weights>>>
void pair_weights(cpu_policy policy, Adv&& advantages, Pairs&& pairs, Weights&& weights,
                  pair_weight kind = pair_weight::sum) {
  using T = std::remove_const_t<typename host_view_t<Weights>::element_type>;
  pair_weights<T>(policy, host_span<const T>(as_host_span(advantages)),
                  host_span<const std::int64_t>(as_host_span(pairs)),
                  host_span<T>(as_host_span(weights)), kind);
}

/// Random shuffle instead of ABS (the paper's ablation): a uniformly random permutation of the
/// K pairs, each used exactly once. (ABS with transform::power and coeff = 0 is the other
/// uniform control: S rounds of uniform draws, where a pair can repeat or be left out.)
///
/// Pair j gets the 64-bit key Philox4x32-10(seed; j, step) (stream `permute`); the order is by
/// key ascending, ties (probability about K^2 / 2^65) by index.
///
/// @param num_pairs K, 0 <= K < 2^32
/// @param order output, at least K entries: a permutation of [0, K)
/// @throws error errc::invalid_argument (K or step out of range), errc::size_mismatch (order
///         too small). Nothing is written on a throw.
/// @par Empty input K = 0 writes nothing.
/// @par Determinism A pure function of (K, seed, step).
/// @par Complexity O(K log K) time, O(K) extra memory.
inline void permute_pairs(cpu_policy, std::int64_t num_pairs, host_span<std::int64_t> order,
                          std::uint64_t seed = 0, std::int64_t step = 0) {
  constexpr const char* fn = "permute_pairs";
  if (num_pairs < 0 || num_pairs > 0xFFFFFFFFll)
    detail::fail(errc::invalid_argument, fn, "num_pairs is ", num_pairs,
                 ", expected 0 <= num_pairs < 2^32");
  if (step < 0 || step > 0xFFFFFFFFll)
    detail::fail(errc::invalid_argument, fn, "step is ", step, ", expected 0 <= step < 2^32");
  if (static_cast<std::int64_t>(order.size()) < num_pairs)
    detail::fail(errc::size_mismatch, fn, "order has ", order.size(), " entries, needs ",
                 num_pairs);
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(num_pairs));
  for (std::int64_t j = 0; j < num_pairs; ++j)
    keys[j] =
        detail::research_word(seed, static_cast<std::uint32_t>(step),
                              detail::research_stream::permute, 0, static_cast<std::uint32_t>(j));
  for (std::int64_t j = 0; j < num_pairs; ++j)
    order[j] = j;
  std::sort(order.begin(), order.begin() + num_pairs, [&](std::int64_t a, std::int64_t b) {
    return keys[a] < keys[b] || (keys[a] == keys[b] && a < b);
  });
}

}  // namespace shuffle_r1
