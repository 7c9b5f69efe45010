/// @file pipeline.hpp
/// @brief The whole selection in one call: advantages, PTS pairs, ABS shuffle, training rows.
#pragma once

#include <shuffle_r1/advantage.hpp>
#include <shuffle_r1/config.hpp>
#include <shuffle_r1/detail/int_math.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/pairs.hpp>
#include <shuffle_r1/shuffle.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace shuffle_r1 {

/// Output sizes of run_pipeline for a layout and config (plan_pipeline computes them).
struct pipeline_sizes {
  std::int64_t rows = 0;           ///< B: entries of `advantages`
  std::int64_t groups = 0;         ///< G
  std::int64_t pairs = 0;          ///< K: entries of `pair_weights`; `pairs` holds 2K
  std::int64_t order = 0;          ///< S * T: entries of `order` (at most, see shrink)
  std::int64_t training_rows = 0;  ///< 2 * S * T: entries of `rows`
};

/// Caller memory run_pipeline writes to. Every view may be empty (not written); a non-empty view
/// must be at least as large as plan_pipeline says.
template <class T>
struct pipeline_outputs {
  host_span<T> advantages;        ///< B advantages in input row order
  host_span<std::int64_t> pairs;  ///< 2K: (hi, lo) rows of each kept pair
  host_span<T> pair_weights;      ///< K: the chosen weight of each pair
  host_span<std::int64_t> order;  ///< S*T: pair indices in ABS draw order
  host_span<std::int64_t> rows;   ///< 2*S*T: training rows, each pair's rows adjacent
  host_span<double> group_mean;   ///< G: optional group statistics
  host_span<double> group_std;    ///< G
};

/// What run_pipeline did.
struct pipeline_summary {
  advantage_summary advantage;           ///< normalization counts
  std::int64_t pairs = 0;                ///< K kept pairs
  shuffle_summary shuffle;               ///< ABS: nonzero pairs, S, T, size
  std::int64_t distinct_pairs_used = 0;  ///< pairs that appear in `order` at least once
};

namespace detail::cpu {
template <class T>
struct pipeline_buffers {
  layout_scratch layout;
  norm_scratch norm;
  pairs_scratch pairs_s;
  shuffle_scratch shuffle;
  std::vector<T> advantages, weights;
  std::vector<std::int64_t> pairs, order;
  std::vector<std::uint64_t> used;
  std::vector<double> group_mean, group_std;
};

/// Whether no check that run_pipeline makes after computing can fail for rewards of largest
/// magnitude max_abs, so that the stages may write the caller's views directly instead of
/// staging them in the workspace. Those checks are ABS's: the short-round check (it can only
/// fail under on_short = error) and the weights' (finite and >= 0, plan_masses). A weight is
/// at most |A_hi| + |A_lo| (pair_weight_of, computed in double and rounded once), and every
/// advantage is at most 2 max_abs f (1 + 2^-20) in magnitude: the mean of a group (below 2^31
/// rows) is at most max_abs (1 + 2^-22), so |x - mean| <= 2 max_abs (1 + 2^-21); f is 1 for
/// mean_only, n / (n - 1) <= 2 for rloo, and 1 / eps for grpo and batch_std (their
/// denominators sigma + eps are at least eps); singletons get x / (1 + eps),
/// x / (sigma_batch + eps) or 0, all below that. So every weight is finite when
/// 4.001 max_abs f <= max(T). Doubles whose magnitudes need rescaling (detail/advantage_math.hpp)
/// take the staged path. @par Complexity O(1).
template <class T>
inline bool late_checks_cannot_fail(const pipeline_config& c, double max_abs) noexcept {
  if (c.shuffle.on_short == short_policy::error) return false;
  if (std::is_same_v<T, double> && max_abs != 0.0 &&
      (max_abs > scale_ceiling || max_abs < scale_floor))
    return false;
  double f = 1.0;
  if (c.advantage.kind == estimator::rloo) {
    f = 2.0;
  } else if (c.advantage.kind != estimator::mean_only) {
    if (!(c.advantage.eps > 0.0)) return false;
    f = 1.0 / c.advantage.eps;  // +inf for a subnormal eps: the test below fails
  }
  return 4.001 * max_abs * f <= static_cast<double>(std::numeric_limits<T>::max());
}

/// Whether the byte ranges [p, p + n) of `views` are pairwise disjoint (empty ones ignored).
/// @par Complexity O(N^2), N <= 8.
inline bool bytes_disjoint(std::initializer_list<std::pair<const void*, std::size_t>> views) {
  for (auto a = views.begin(); a != views.end(); ++a)
    for (auto b = a + 1; b != views.end(); ++b) {
      if (a->second == 0 || b->second == 0) continue;
      const auto a0 = reinterpret_cast<std::uintptr_t>(a->first);
      const auto b0 = reinterpret_cast<std::uintptr_t>(b->first);
      if (a0 < b0 + b->second && b0 < a0 + a->second) return false;
    }
  return true;
}

/// The bytes of a view, for bytes_disjoint.
template <class V>
inline std::pair<const void*, std::size_t> bytes_of(const V& v) noexcept {
  return {v.data(), v.size() * sizeof(*v.data())};
}
}  // namespace detail::cpu

/// Reusable memory of run_pipeline. The first call sizes it; later calls with the same or
/// smaller sizes allocate nothing. Not thread-safe: one workspace per concurrent caller.
template <class T>
class pipeline_workspace {
 public:
  /// Bytes currently reserved. @par Complexity O(1). Never throws.
  std::size_t bytes() const noexcept {
    const auto& b = buffers_;
    return (b.advantages.capacity() + b.weights.capacity()) * sizeof(T) +
           (b.pairs.capacity() + b.order.capacity() + b.pairs_s.order.capacity()) *
               sizeof(std::int64_t) +
           b.used.capacity() * sizeof(std::uint64_t) +
           (b.group_mean.capacity() + b.group_std.capacity()) * sizeof(double) + b.layout.bytes() +
           b.norm.bytes() + b.shuffle.bytes();
  }
  /// Frees all memory. Never throws.
  void release() noexcept { buffers_ = detail::cpu::pipeline_buffers<T>{}; }

  /// Internal buffers (used by run_pipeline).
  detail::cpu::pipeline_buffers<T>& buffers() noexcept { return buffers_; }

 private:
  detail::cpu::pipeline_buffers<T> buffers_;
};

/// Output sizes for a batch of `rows` rows in `groups` under `config`.
/// @throws error as run_pipeline for the layout and the options (without looking at rewards).
/// @par Complexity O(G) (O(B + R log R) for id_groups).
template <class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
pipeline_sizes plan_pipeline(const Layout& groups, std::int64_t rows,
                             const pipeline_config& config = {}) {
  constexpr const char* fn = "plan_pipeline";
  detail::layout_scratch scratch;
  const detail::host_layout L = detail::validate_layout(fn, groups, rows, scratch);
  pipeline_sizes s;
  s.rows = rows;
  s.groups = L.groups;
  s.pairs = detail::validate_pairs_plan(fn, L, config.pairs);
  const detail::shuffle_shape shape = detail::validate_shuffle_options(fn, s.pairs, config.shuffle);
  s.order = shape.rounds * shape.per_round;
  s.training_rows = 2 * s.order;
  return s;
}

/// Runs normalize_advantages, select_pairs and shuffle_pairs and expands the training rows.
///
/// @param rewards B finite rewards
/// @param groups any layout (uniform, ragged, indexed, id_groups) covering B rows
/// @param config options of the three stages (defaults: GRPO ddof 1 eps 1e-6; alpha 0.5,
///        weight sum; S = 8, T = floor(K/8), power kappa 1, seed 0, step 0)
/// @param workspace reusable memory; after the first call with given sizes, no allocation
/// @param out caller memory to write (each view optional)
/// @return counts of every stage and the number of distinct pairs used
/// @throws error anything the three stages throw (the message names the stage's function);
///         all checks, including the short-round check of ABS, happen before any output is
///         written, so on a throw `out` is untouched.
/// @par Memory The results are staged in the workspace and copied to `out` after the last
///      check, except when no later check can fail (on_short shrink or fill, and weights
///      bounded by the rewards' magnitude: late_checks_cannot_fail) and the views overlap
///      neither each other, nor the rewards, nor the layout's arrays: then they are written to
///      `out` directly. Either way the results are the same bits (advantages may, for example,
///      be written over the rewards: that call is staged).
/// @par Empty input B = 0 gives K = 0 and an empty order.
/// @par Determinism As the three stages: bit-identical for the same inputs, seed and step.
/// @par Complexity O(B + K + S*T) time for groups of at most 64 rows; O(B) workspace memory.
template <class T, class Layout, class = std::enable_if_t<is_host_layout_v<Layout>>>
pipeline_summary run_pipeline(cpu_policy, host_span<const T> rewards, const Layout& groups,
                              const pipeline_config& config, pipeline_workspace<T>& workspace,
                              const pipeline_outputs<T>& out) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "run_pipeline: rewards must be float or double");
  constexpr const char* fn = "run_pipeline";
  auto& b = workspace.buffers();
  const auto B = static_cast<std::int64_t>(rewards.size());
  // 1. Every check that does not need computed values.
  const detail::host_layout L = detail::validate_layout(fn, groups, B, b.layout);
  const group_stats_out stats{out.group_mean, out.group_std};
  const double max_abs = detail::cpu::validate_normalize(
      fn, rewards, L, static_cast<std::size_t>(B), config.advantage, stats, b.norm);
  if (!out.advantages.empty() && static_cast<std::int64_t>(out.advantages.size()) != B)
    detail::fail(errc::size_mismatch, fn, "out.advantages has ", out.advantages.size(),
                 " entries, expected ", B, " (or 0 to skip)");
  const std::int64_t K = detail::validate_pairs_plan(fn, L, config.pairs);
  const detail::shuffle_shape shape = detail::validate_shuffle_options(fn, K, config.shuffle);
  const std::int64_t max_order = shape.rounds * shape.per_round;
  const auto check_size = [&](std::size_t have, std::int64_t need, const char* what) {
    if (have != 0 && static_cast<std::int64_t>(have) < need)
      detail::fail(errc::size_mismatch, fn, what, " has ", have, " entries, needs ", need,
                   " (or 0 to skip)");
  };
  check_size(out.pairs.size(), 2 * K, "out.pairs");
  check_size(out.pair_weights.size(), K, "out.pair_weights");
  check_size(out.order.size(), max_order, "out.order");
  check_size(out.rows.size(), 2 * max_order, "out.rows");

  // 2. Compute. Outputs are staged in the workspace and copied out after the last check, so
  //    that a failing check leaves `out` untouched, unless no check after this point can fail
  //    (late_checks_cannot_fail) and the views do not overlap: then the stages write the
  //    caller's views directly, after every buffer is sized (an allocation that fails must
  //    find nothing written either).
  pipeline_summary sum;
  // The layout's arrays are read until PTS ends: they may not overlap a direct output either.
  const std::size_t layout_words =
      L.offsets ? static_cast<std::size_t>(L.groups + 1) : std::size_t{0};
  const std::size_t layout_rows = L.rows ? static_cast<std::size_t>(B) : std::size_t{0};
  const bool direct = detail::cpu::late_checks_cannot_fail<T>(config, max_abs) &&
                      detail::cpu::bytes_disjoint({detail::cpu::bytes_of(rewards),
                                                   detail::cpu::bytes_of(out.advantages),
                                                   detail::cpu::bytes_of(out.pairs),
                                                   detail::cpu::bytes_of(out.pair_weights),
                                                   detail::cpu::bytes_of(out.order),
                                                   detail::cpu::bytes_of(out.rows),
                                                   {L.offsets, layout_words * sizeof(std::int64_t)},
                                                   {L.rows, layout_rows * sizeof(std::int64_t)}});
  // Every buffer is sized (or reserved) on both paths, so that a workspace that served one path
  // allocates nothing on the other; a staging buffer the direct path does not use is only
  // reserved (not filled).
  const auto target = [direct](auto view, auto& staging, std::int64_t n) {
    if (direct && !view.empty()) {
      staging.reserve(static_cast<std::size_t>(n));
      return view.data();
    }
    staging.resize(static_cast<std::size_t>(n));
    return staging.data();
  };
  T* const adv = target(out.advantages, b.advantages, B);
  std::int64_t* const pairs = target(out.pairs, b.pairs, 2 * K);
  T* const weights = target(out.pair_weights, b.weights, K);
  detail::cpu::size_pairs_scratch(L.largest(), b.pairs_s);
  detail::cpu::reserve_shuffle(K, config.shuffle.on_short == short_policy::fill, b.shuffle);
  if (out.order.empty()) b.order.reserve(static_cast<std::size_t>(max_order));
  b.used.reserve(static_cast<std::size_t>((K + 63) / 64));
  detail::cpu::norm_plan plan;
  plan.kind = config.advantage.kind;
  plan.ddof = config.advantage.ddof;
  plan.eps = config.advantage.eps;
  plan.singleton = config.advantage.singleton;
  // Statistics go to the caller only after the last check: stage them in the workspace.
  group_stats_out staged;
  if (!stats.mean.empty()) {
    b.group_mean.resize(stats.mean.size());
    staged.mean = host_span<double>(b.group_mean.data(), b.group_mean.size());
  }
  if (!stats.std.empty()) {
    b.group_std.resize(stats.std.size());
    staged.std = host_span<double>(b.group_std.data(), b.group_std.size());
  }
  detail::cpu::plan_normalize(fn, rewards.data(), B, L, max_abs, plan, b.norm);
  detail::cpu::normalize_kernel(rewards.data(), B, L, adv, plan, staged, b.norm, sum.advantage);
  sum.pairs = detail::cpu::pairs_kernel(adv, L, config.pairs, pairs, weights, b.pairs_s);
  sum.shuffle = detail::cpu::prepare_shuffle(
      fn, host_span<const T>(weights, static_cast<std::size_t>(K)), config.shuffle, b.shuffle);

  // 3. Nothing can fail from here on: write the outputs.
  std::int64_t* order = out.order.empty() ? nullptr : out.order.data();
  if (!order) {
    b.order.resize(static_cast<std::size_t>(sum.shuffle.size));
    order = b.order.data();
  }
  b.used.assign(static_cast<std::size_t>((K + 63) / 64), 0);
  // Below 2^20 pairs (16 MiB of them) the training rows are gathered as the pairs are drawn
  // (row_gather; a drawn pair's line is requested with the draw's table lookups beyond L2),
  // instead of a second pass of random reads over the order (65536 x 16: 3151 -> 2914 us, A/B
  // minima). Beyond, the pairs come from DRAM and those requests come too late: the separate
  // pass, which requests its lines further ahead, is faster (1048576 x 16: 145 -> 127 ms).
  constexpr std::int64_t fused_gather_pairs = std::int64_t{1} << 20;
  const bool fused = K < fused_gather_pairs;
  detail::cpu::row_gather gather;
  if (!out.rows.empty() && fused) gather = {pairs, out.rows.data()};
  sum.shuffle.extra_phases = detail::cpu::shuffle_kernel(
      K, sum.shuffle.nonzero_pairs, sum.shuffle.rounds, sum.shuffle.per_round, config.shuffle,
      b.shuffle, order, b.used.data(), gather);
  if (!out.rows.empty() && !fused)
    detail::cpu::gather_rows(pairs, K, order, sum.shuffle.size, out.rows.data());
  for (const std::uint64_t w : b.used)
    sum.distinct_pairs_used += detail::popcount64(w);
  // memcpy with a count of 0 still needs valid pointers (an empty vector's data() may be null).
  const auto copy_out = [](auto* to, const auto* from, std::int64_t n) {
    if (n > 0 && to != from) std::memcpy(to, from, static_cast<std::size_t>(n) * sizeof(*from));
  };
  if (!out.advantages.empty()) copy_out(out.advantages.data(), adv, B);
  if (!out.pairs.empty()) copy_out(out.pairs.data(), pairs, 2 * K);
  if (!out.pair_weights.empty()) copy_out(out.pair_weights.data(), weights, K);
  if (!stats.mean.empty()) std::copy(b.group_mean.begin(), b.group_mean.end(), stats.mean.begin());
  if (!stats.std.empty()) std::copy(b.group_std.begin(), b.group_std.end(), stats.std.begin());
  return sum;
}

/// Convenience overload: rewards from any host container.
template <class Rewards, class T, class Layout,
          class = std::enable_if_t<is_host_viewable_v<Rewards> && is_host_layout_v<Layout>>>
pipeline_summary run_pipeline(cpu_policy policy, Rewards&& rewards, const Layout& groups,
                              const pipeline_config& config, pipeline_workspace<T>& workspace,
                              const pipeline_outputs<T>& out) {
  return run_pipeline<T>(policy, host_span<const T>(as_host_span(rewards)), groups, config,
                         workspace, out);
}

}  // namespace shuffle_r1
