/// @file pairs.hpp
/// @brief PTS: max-min contrastive pair selection inside each group.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/cpu/pairs.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <cstdint>
#include <type_traits>

namespace shuffle_r1 {

/// Number of pairs select_pairs keeps for this layout: sum over groups of M_g, where
/// M_g = options.keep_pairs or floor(keep_ratio * P_g) and P_g = floor(n_g / 2).
///
/// @throws error errc::invalid_layout (groups), errc::odd_group (odd group under
///         odd_policy::error), errc::too_few_pairs (a group has fewer than keep_pairs pairs),
///         errc::invalid_argument (options).
/// @par Determinism A pure function of the layout and options.
/// @par Complexity O(G) (O(B + R log R) for id_groups, which are resolved first).
template <class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
std::int64_t count_pairs(const Layout& groups, std::int64_t rows,
                         const pair_options& options = {}) {
  constexpr const char* fn = "count_pairs";
  detail::layout_scratch scratch;
  const detail::host_layout L = detail::validate_layout(fn, groups, rows, scratch);
  return detail::validate_pairs_plan(fn, L, options);
}

/// PTS: pairs each group's best row with its worst, second best with second worst, ..., and
/// keeps the outermost M pairs (SPEC.md section 3).
///
/// Per group: rows sorted by advantage, descending and stable (ties keep batch order), giving
/// s_1..s_n; pair k is (s_k, s_{n+1-k}), "hi" first; the first M pairs are kept. For odd n
/// under odd_policy::drop_median the middle row s_{(n+1)/2} is left out. Output: kept pairs in
/// group order, then rank k, as (hi row, lo row) input row indices; weight of each pair per
/// options.weight. Advantages are not recomputed on the kept subset.
///
/// @param advantages B finite advantages (from normalize_advantages or any estimator)
/// @param groups any layout covering exactly B rows
/// @param pairs output, at least 2K entries: [hi_0, lo_0, hi_1, lo_1, ...]
/// @param weights output, at least K entries, or empty to skip
/// @return K, the number of pairs written (count_pairs gives it in advance)
/// @throws error as count_pairs, plus errc::non_finite (an advantage is NaN or infinite: the
///         message names the row) and errc::size_mismatch (outputs too small). Nothing is
///         written on a throw.
/// @par Empty input B = 0 (or only groups with no kept pair) writes nothing and returns 0.
/// @par Determinism A pure function of its inputs; bit-identical on every backend.
/// @par Complexity O(sum n_g^2 / (SIMD width)) for groups of at most 64 rows (rank counting),
///      O(n_g log n_g) above; O(1) extra memory, O(n_g) for a group above 64 rows.
template <class T, class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
std::int64_t select_pairs(cpu_policy, host_span<const T> advantages, const Layout& groups,
                          host_span<std::int64_t> pairs, host_span<T> weights,
                          const pair_options& options = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "select_pairs: advantages must be float or double");
  constexpr const char* fn = "select_pairs";
  detail::layout_scratch scratch;
  const auto B = static_cast<std::int64_t>(advantages.size());
  const detail::host_layout L = detail::validate_layout(fn, groups, B, scratch);
  const std::int64_t K = detail::validate_pairs_plan(fn, L, options);
  if (static_cast<std::int64_t>(pairs.size()) < 2 * K)
    detail::fail(errc::size_mismatch, fn, "pairs has ", pairs.size(), " entries, needs 2 * ", K,
                 " = ", 2 * K);
  if (!weights.empty() && static_cast<std::int64_t>(weights.size()) < K)
    detail::fail(errc::size_mismatch, fn, "weights has ", weights.size(), " entries, needs ", K,
                 " (or 0 to skip)");
  detail::cpu::validate_finite(fn, "advantages", advantages);
  detail::cpu::pairs_scratch ps;
  return detail::cpu::pairs_kernel(advantages.data(), L, options, pairs.data(),
                                   weights.empty() ? nullptr : weights.data(), ps);
}

/// Convenience overload: any host containers (std::vector, Eigen vectors, spans).
template <class Adv, class Layout, class Pairs, class Weights,
          class = std::enable_if_t<is_host_viewable_v<Adv> && is_host_viewable_v<Pairs> &&
                                   is_host_viewable_v<Weights> && is_host_layout_v<Layout>>>
std::int64_t select_pairs(cpu_policy policy, Adv&& advantages, const Layout& groups, Pairs&& pairs,
                          Weights&& weights, const pair_options& options = {}) {
  using T = std::remove_const_t<typename host_view_t<Weights>::element_type>;
  return select_pairs<T>(policy, host_span<const T>(as_host_span(advantages)), groups,
                         host_span<std::int64_t>(as_host_span(pairs)),
                         host_span<T>(as_host_span(weights)), options);
}

}  // namespace shuffle_r1
