/// @file shuffle.hpp
/// @brief ABS: advantage-based batch shuffle, S rounds of weighted sampling without replacement.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/cpu/shuffle.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <cstdint>
#include <type_traits>

namespace shuffle_r1 {

/// Entries shuffle_pairs writes to `order` for K pairs: S * T with T = per_round or
/// floor(K / S) (under short_policy::shrink the actual size may be smaller; see the summary).
/// @throws error for invalid options (as shuffle_pairs, without looking at weights).
/// @par Complexity O(1).
inline std::int64_t shuffle_size(std::int64_t num_pairs, const shuffle_options& options = {}) {
  if (num_pairs < 0)
    detail::fail(errc::invalid_argument, "shuffle_size", "num_pairs is ", num_pairs,
                 ", expected >= 0");
  const detail::shuffle_shape shape =
      detail::validate_shuffle_options("shuffle_size", num_pairs, options);
  return shape.rounds * shape.per_round;
}

/// Reusable memory of shuffle_pairs: the masses, prefix sums, guide tables and the bitmap of a
/// round. Each table is sized by the first call that needs it: the main ones by every call, the
/// fill stream's only under short_policy::fill with too few non-zero pairs, a later phase's
/// only when a round needs one (rare; summary.extra_phases). After that, calls with as many
/// pairs or fewer allocate nothing. Not thread-safe: one workspace per concurrent caller.
class shuffle_workspace {
 public:
  /// Bytes currently reserved. @par Complexity O(1). Never throws.
  std::size_t bytes() const noexcept { return scratch_.bytes(); }
  /// Frees all memory. Never throws.
  void release() noexcept { scratch_ = detail::cpu::shuffle_scratch{}; }

  /// Internal buffers (used by shuffle_pairs).
  detail::cpu::shuffle_scratch& scratch() noexcept { return scratch_; }

 private:
  detail::cpu::shuffle_scratch scratch_;
};

/// ABS: draws S independent rounds of T distinct pairs each by successive sampling without
/// replacement with probabilities p_j = q_j / sum q, q = transform(weights) (SPEC.md section 4).
///
/// Within a round the output keeps the **draw order** (heavier pairs tend to come first); a
/// pair may appear in several rounds. Pairs with zero mass are never drawn; when fewer than T
/// pairs have positive mass, options.on_short decides (error, fill, shrink).
///
/// Sampling is exact successive sampling computed from i.i.d. draws with repeats skipped, on
/// integer masses (q_j / q_max quantized to 2^(62 - ceil(log2 K)) units); every random word
/// is Philox4x32-10 of (seed; step, round, stream, phase, draw) (docs/design.md, "ABS sampler").
///
/// @param weights K finite weights >= 0 (from select_pairs)
/// @param order output, at least shuffle_size(K, options) entries: pair indices, round after
///        round, in draw order
/// @param options transform, S, T, short-round policy, seed and step
/// @param workspace reusable memory; once its tables are sized for K pairs (see
///        shuffle_workspace), calls with K or fewer allocate nothing
/// @return the summary: nonzero pairs, S, actual T, entries written, extra phases
/// @throws error errc::non_finite / errc::invalid_argument (a weight is NaN, infinite or
///         negative: the message names it), errc::too_few_pairs (T > K, or fewer than T
///         positive masses under short_policy::error), errc::invalid_argument (options),
///         errc::out_of_range (K >= 2^31, step >= 2^32), errc::size_mismatch. Nothing is
///         written on a throw.
/// @par Empty input K = 0 gives T = 0 and writes nothing.
/// @par Determinism A pure function of (weights, options): the same seed and step give
///      bit-identical orders on every run, build and backend; another step or seed gives an
///      independent shuffle.
/// @par Complexity O(K + S * T) expected when no pair holds a large share of the mass; each
///      extra phase (reported) adds O(K). O(K) extra memory.
template <class T>
shuffle_summary shuffle_pairs(cpu_policy, host_span<const T> weights, host_span<std::int64_t> order,
                              const shuffle_options& options, shuffle_workspace& workspace) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "shuffle_pairs: weights must be float or double");
  constexpr const char* fn = "shuffle_pairs";
  detail::cpu::shuffle_scratch& s = workspace.scratch();
  shuffle_summary sum = detail::cpu::prepare_shuffle(fn, weights, options, s);
  if (static_cast<std::int64_t>(order.size()) < sum.size)
    detail::fail(errc::size_mismatch, fn, "order has ", order.size(), " entries, needs ", sum.size);
  sum.extra_phases = detail::cpu::shuffle_kernel(sum.pairs, sum.nonzero_pairs, sum.rounds,
                                                 sum.per_round, options, s, order.data());
  return sum;
}

/// shuffle_pairs with a workspace of its own (allocates O(K) per call; for repeated calls pass
/// a shuffle_workspace). Same parameters, results, errors and determinism.
template <class T>
shuffle_summary shuffle_pairs(cpu_policy policy, host_span<const T> weights,
                              host_span<std::int64_t> order, const shuffle_options& options = {}) {
  shuffle_workspace workspace;
  return shuffle_pairs<T>(policy, weights, order, options, workspace);
}

/// Convenience overload: any host containers (std::vector, Eigen vectors, spans).
template <class Weights, class Order,
          class = std::enable_if_t<is_host_viewable_v<Weights> && is_host_viewable_v<Order>>>
shuffle_summary shuffle_pairs(cpu_policy policy, Weights&& weights, Order&& order,
                              const shuffle_options& options = {}) {
  using T = std::remove_const_t<typename host_view_t<Weights>::element_type>;
  return shuffle_pairs<T>(policy, host_span<const T>(as_host_span(weights)),
                          host_span<std::int64_t>(as_host_span(order)), options);
}

/// Convenience overload with a workspace: any host containers.
template <class Weights, class Order,
          class = std::enable_if_t<is_host_viewable_v<Weights> && is_host_viewable_v<Order>>>
shuffle_summary shuffle_pairs(cpu_policy policy, Weights&& weights, Order&& order,
                              const shuffle_options& options, shuffle_workspace& workspace) {
  using T = std::remove_const_t<typename host_view_t<Weights>::element_type>;
  return shuffle_pairs<T>(policy, host_span<const T>(as_host_span(weights)),
                          host_span<std::int64_t>(as_host_span(order)), options, workspace);
}

/// Expands a pair order into the training row order: rows[2i] = hi row, rows[2i+1] = lo row
/// of pair order[i].
///
/// @param pairs 2K entries from select_pairs
/// @param order pair indices in [0, K)
/// @param rows output, at least 2 * order.size() entries
/// @throws error errc::size_mismatch (sizes), errc::invalid_argument (an order entry outside
///         [0, K), named). Nothing is written on a throw.
/// @par Determinism Pure. @par Complexity O(order.size()).
inline void pairs_to_rows(cpu_policy, host_span<const std::int64_t> pairs,
                          host_span<const std::int64_t> order, host_span<std::int64_t> rows) {
  constexpr const char* fn = "pairs_to_rows";
  if (pairs.size() % 2 != 0)
    detail::fail(errc::size_mismatch, fn, "pairs has ", pairs.size(),
                 " entries, expected an even number (hi, lo per pair)");
  if (rows.size() < 2 * order.size())
    detail::fail(errc::size_mismatch, fn, "rows has ", rows.size(), " entries, needs ",
                 2 * order.size());
  const auto K = static_cast<std::int64_t>(pairs.size() / 2);
  for (std::size_t i = 0; i < order.size(); ++i)
    if (order[i] < 0 || order[i] >= K)
      detail::fail(errc::invalid_argument, fn, "order[", i, "] = ", order[i], " is outside [0, ", K,
                   ")");
  detail::cpu::gather_rows(pairs.data(), K, order.data(), static_cast<std::int64_t>(order.size()),
                           rows.data());
}

}  // namespace shuffle_r1
