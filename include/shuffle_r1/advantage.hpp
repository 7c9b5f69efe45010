/// @file advantage.hpp
/// @brief Group advantage normalization: GRPO and its common variants.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/cpu/advantage.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <type_traits>

namespace shuffle_r1 {

/// Reusable memory of normalize_advantages: what the validation scan of the SIMD path keeps per
/// group (about 8 bytes per group), the values of groups larger than 32 rows, batch_std's
/// copies of the rewards, the resolved layout of id_groups and the validation bitmap of
/// indexed_groups. A call sizes what it needs; later calls with the same or smaller sizes, the
/// same kind of layout and the same estimator (for id_groups: no more runs of equal ids)
/// allocate nothing. Not thread-safe: one workspace per concurrent caller.
class normalize_workspace {
 public:
  /// Bytes currently reserved. @par Complexity O(1). Never throws.
  std::size_t bytes() const noexcept { return norm_.bytes() + layout_.bytes(); }
  /// Frees all memory. Never throws.
  void release() noexcept {
    norm_ = detail::cpu::norm_scratch{};
    layout_ = detail::layout_scratch{};
  }

  /// Internal buffers (used by normalize_advantages).
  detail::cpu::norm_scratch& scratch() noexcept { return norm_; }
  detail::layout_scratch& layout() noexcept { return layout_; }

 private:
  detail::cpu::norm_scratch norm_;
  detail::layout_scratch layout_;
};

/// Turns per-row rewards into per-row advantages, group by group.
///
/// For a group with rewards x_1..x_n, mean mu and standard deviation sigma (with `ddof`):
/// `grpo` gives (x_i - mu) / (sigma + eps); `mean_only` x_i - mu; `rloo` n/(n-1) (x_i - mu);
/// `batch_std` (x_i - mu) / (sigma_batch + eps) with sigma_batch over all B rewards.
/// A group whose rewards are all equal gets advantages of exactly 0 under every estimator.
/// Singleton groups follow `options.singleton` (error, verl: mu = 0 and scale 1, zero).
///
/// Numerics: all arithmetic in double whatever T is, sums in the canonical pairwise order of
/// detail/tree_sum.hpp, corrected two-pass variance; double groups whose largest magnitude is
/// below 2^-400 or above 2^500 are rescaled by exact powers of two so that squares neither overflow
/// nor underflow. Results are within 1 ulp of T of the exactly rounded value in typical cases.
///
/// @param rewards B finite rewards
/// @param groups any layout of groups.hpp covering exactly B rows
/// @param advantages output, B elements; may be the same memory as `rewards` (in place),
///        must not partially overlap it
/// @param options estimator, ddof, eps, singleton policy
/// @param stats optional per-group mean and std outputs (G elements each, or empty)
/// @param workspace reusable memory (see normalize_workspace): once sized, calls of the same
///        or smaller sizes, layout kind and estimator allocate nothing
/// @return counts: groups, zero-variance, singleton and empty groups, batch sigma
///
/// @pre ddof is 0 or 1; eps finite and >= 0; sizes as above.
/// @throws error errc::size_mismatch (output sizes), errc::invalid_layout (groups),
///         errc::non_finite (a reward is NaN or infinite: the message names the row),
///         errc::singleton_group (policy error), errc::out_of_range (mean_only/rloo rewards
///         above max(T)/4; batch_std with the verl policy: a singleton whose advantage
///         x / (sigma_batch + eps) T cannot hold), errc::invalid_argument (options). Nothing is
///         written on a throw.
/// @par Empty input B = 0 with G = 0 (or G empty groups) writes nothing and returns zeros.
/// @par Determinism Bit-identical across runs, builds (-O0..-O3, -march=native, C++17/20) and
///      the CPU and CUDA backends.
/// @par Complexity O(B) time. Extra memory (kept by the workspace): about 8 bytes per group
///      for uniform groups of 8, 16 or 32 rows on an AVX2 or AVX-512 CPU (the validation
///      scan's means and flags), otherwise O(1) for groups of at most 32 rows; O(n) for a group
///      of n > 32 rows, O(B) for batch_std or an indexed layout (validation bitmap: B/8 bytes).
template <class T, class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
advantage_summary normalize_advantages(cpu_policy, host_span<const T> rewards, const Layout& groups,
                                       host_span<T> advantages, const advantage_options& options,
                                       const group_stats_out& stats,
                                       normalize_workspace& workspace) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "normalize_advantages: rewards must be float or double");
  constexpr const char* fn = "normalize_advantages";
  detail::cpu::norm_scratch& scratch = workspace.scratch();
  const auto B = static_cast<std::int64_t>(rewards.size());
  const detail::host_layout L = detail::validate_layout(fn, groups, B, workspace.layout());
  const double max_abs =
      detail::cpu::validate_normalize(fn, rewards, L, advantages.size(), options, stats, scratch);
  detail::cpu::norm_plan plan;
  plan.kind = options.kind;
  plan.ddof = options.ddof;
  plan.eps = options.eps;
  plan.singleton = options.singleton;
  detail::cpu::plan_normalize(fn, rewards.data(), B, L, max_abs, plan, scratch);
  advantage_summary summary;
  detail::cpu::normalize_kernel(rewards.data(), B, L, advantages.data(), plan, stats, scratch,
                                summary);
  return summary;
}

/// normalize_advantages with a workspace of its own (allocates per call what the workspace
/// would keep; for repeated calls pass a normalize_workspace). Same parameters, results, errors
/// and determinism.
template <class T, class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
advantage_summary normalize_advantages(cpu_policy policy, host_span<const T> rewards,
                                       const Layout& groups, host_span<T> advantages,
                                       const advantage_options& options = {},
                                       const group_stats_out& stats = {}) {
  normalize_workspace workspace;
  return normalize_advantages<T>(policy, rewards, groups, advantages, options, stats, workspace);
}

/// Convenience overload: any host containers (std::vector, Eigen vectors, spans).
template <class Rewards, class Layout, class Out,
          class = std::enable_if_t<is_host_viewable_v<Rewards> && is_host_viewable_v<Out> &&
                                   is_host_layout_v<Layout>>>
advantage_summary normalize_advantages(cpu_policy policy, Rewards&& rewards, const Layout& groups,
                                       Out&& advantages, const advantage_options& options = {},
                                       const group_stats_out& stats = {}) {
  using T = std::remove_const_t<typename host_view_t<Out>::element_type>;
  return normalize_advantages<T>(policy, host_span<const T>(as_host_span(rewards)), groups,
                                 host_span<T>(as_host_span(advantages)), options, stats);
}

/// Convenience overload with a workspace: any host containers.
template <class Rewards, class Layout, class Out,
          class = std::enable_if_t<is_host_viewable_v<Rewards> && is_host_viewable_v<Out> &&
                                   is_host_layout_v<Layout>>>
advantage_summary normalize_advantages(cpu_policy policy, Rewards&& rewards, const Layout& groups,
                                       Out&& advantages, const advantage_options& options,
                                       const group_stats_out& stats,
                                       normalize_workspace& workspace) {
  using T = std::remove_const_t<typename host_view_t<Out>::element_type>;
  return normalize_advantages<T>(policy, host_span<const T>(as_host_span(rewards)), groups,
                                 host_span<T>(as_host_span(advantages)), options, stats, workspace);
}

}  // namespace shuffle_r1
