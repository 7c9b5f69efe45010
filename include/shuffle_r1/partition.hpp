/// @file partition.hpp
/// @brief Data-parallel partitioning of the training order: R ranks x m mini-batches per rank,
/// the rows of a pair kept together, token counts balanced across the ranks of every
/// mini-batch (Karmarkar-Karp or LPT), deterministic.
///
/// Synchronous data parallelism waits at every optimizer step for the slowest rank, so what
/// matters is the balance of the ranks *within* each mini-batch. The training order (ABS draw
/// order) is kept at the mini-batch level: mini-batch j holds the j-th consecutive slice of the
/// order, as trainers cut mini-batches; only the distribution of that slice over the ranks is
/// optimized. The authors' release splits the order into consecutive chunks
/// (balance_method::contiguous).
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/cpu/partition.hpp>
#include <shuffle_r1/detail/tokens.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/research_types.hpp>
#include <shuffle_r1/span.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace shuffle_r1 {

/// What partition_rows produced. A *cell* is one (rank, mini-batch).
struct partition_summary {
  std::int64_t units = 0;            ///< U = rows.size() / unit_rows
  std::int64_t tokens = 0;           ///< tokens of all training rows
  std::int64_t max_cell_tokens = 0;  ///< tokens of the heaviest cell
  std::int64_t min_cell_tokens = 0;  ///< tokens of the lightest cell
  std::int64_t empty_cells = 0;      ///< cells without a unit (fewer units than R in a mini-batch)
  /// Worst mini-batch: max over its ranks of the tokens divided by their mean (1 = perfect).
  double imbalance = 1.0;
  /// Sum over mini-batches of the max rank tokens divided by the sum of the means: the time of
  /// a synchronous epoch relative to a perfectly balanced one, if time is proportional to tokens.
  double step_imbalance = 1.0;
};

namespace detail {
/// R * m + 1 after checking ranks and minibatches; errors name `fn`.
inline std::int64_t partition_cells(const char* fn, const partition_options& options) {
  if (options.ranks < 1)
    fail(errc::invalid_argument, fn, "options.ranks is ", options.ranks, ", expected >= 1");
  if (options.minibatches < 1)
    fail(errc::invalid_argument, fn, "options.minibatches is ", options.minibatches,
         ", expected >= 1");
  if (options.ranks > (std::int64_t{1} << 31) / options.minibatches)
    fail(errc::out_of_range, fn, "options.ranks * options.minibatches is too large");
  return options.ranks * options.minibatches + 1;
}
}  // namespace detail

/// Entries of `offsets` partition_rows writes: R * m + 1.
/// @throws error(errc::invalid_argument) for ranks or minibatches < 1,
///         error(errc::out_of_range) when R * m > 2^31.
/// @par Complexity O(1).
inline std::int64_t partition_offsets_size(const partition_options& options = {}) {
  return detail::partition_cells("partition_offsets_size", options);
}

/// Splits the training order into R ranks x m mini-batches, keeping each unit (unit_rows
/// consecutive rows: a pair by default) whole and balancing tokens across the ranks of every
/// mini-batch.
///
/// The U units are cut into m consecutive mini-batches, mini-batch j holding units
/// [j U / m, (j + 1) U / m). The units of a mini-batch go to the R ranks by options.method, each
/// rank receiving floor or ceil of (units / R) of them (`karmarkar_karp` and `lpt` balance the
/// token sums; `contiguous` takes consecutive chunks). The output is rank-major: cell
/// c = r * m + j (rank r, mini-batch j) holds out_rows[offsets[c], offsets[c + 1]), its units in
/// training order. So rank r's rows are out_rows[offsets[r m], offsets[(r + 1) m]).
///
/// @param rows the training order (e.g. pairs_to_rows), entries in [0, B), a multiple of
///        unit_rows long
/// @param lengths B token counts (integers >= 0) of the batch rows
/// @param out_rows output, at least rows.size() entries; must not overlap `rows`
/// @param offsets output, at least partition_offsets_size(options) entries
/// @return the balance achieved
/// @throws error errc::invalid_argument (options, a negative length or a row outside [0, B),
///         named), errc::size_mismatch (rows not a multiple of unit_rows, outputs too small),
///         errc::out_of_range (token sums beyond 2^63). Nothing is written on a throw.
/// @par Empty input U = 0 writes offsets of zeros; every cell is empty.
/// @par Determinism A pure function of (rows, lengths, options): every tie is broken by
///      position, so the partition is the same on every run, build and platform.
/// @par Complexity O(B + U log U + U R) time for lpt, O(B + U log U) for karmarkar_karp;
///      O(B + U) extra memory.
template <class L>
partition_summary partition_rows(cpu_policy, host_span<const std::int64_t> rows,
                                 host_span<const L> lengths, host_span<std::int64_t> out_rows,
                                 host_span<std::int64_t> offsets,
                                 const partition_options& options = {}) {
  static_assert(std::is_integral_v<L>, "partition_rows: lengths must be integers (tokens)");
  constexpr const char* fn = "partition_rows";
  const std::int64_t cells = detail::partition_cells(fn, options) - 1;
  if (options.unit_rows < 1)
    detail::fail(errc::invalid_argument, fn, "options.unit_rows is ", options.unit_rows,
                 ", expected >= 1");
  if (options.method != balance_method::karmarkar_karp && options.method != balance_method::lpt &&
      options.method != balance_method::contiguous)
    detail::fail(errc::invalid_argument, fn, "options.method has no valid value (",
                 static_cast<int>(options.method), ")");
  const auto n = static_cast<std::int64_t>(rows.size());
  if (n % options.unit_rows != 0)
    detail::fail(errc::size_mismatch, fn, "rows has ", n, " entries, not a multiple of ",
                 "options.unit_rows = ", options.unit_rows);
  if (static_cast<std::int64_t>(out_rows.size()) < n)
    detail::fail(errc::size_mismatch, fn, "out_rows has ", out_rows.size(), " entries, needs ", n);
  if (static_cast<std::int64_t>(offsets.size()) < cells + 1)
    detail::fail(errc::size_mismatch, fn, "offsets has ", offsets.size(), " entries, needs ",
                 cells + 1, " (ranks * minibatches + 1)");
  (void)detail::checked_tokens(fn, lengths);
  for (std::int64_t i = 0; i < n; ++i)
    if (rows[i] < 0 || static_cast<std::size_t>(rows[i]) >= lengths.size())
      detail::fail(errc::invalid_argument, fn, "rows[", i, "] = ", rows[i], " is outside [0, ",
                   lengths.size(), ")");
  // Tokens per unit, with an overflow check on the total.
  const std::int64_t U = n / options.unit_rows, R = options.ranks, m = options.minibatches;
  std::vector<std::int64_t> unit_tokens(static_cast<std::size_t>(U), 0);
  partition_summary sum;
  sum.units = U;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto len = static_cast<std::int64_t>(lengths[static_cast<std::size_t>(rows[i])]);
    if (len > std::numeric_limits<std::int64_t>::max() - sum.tokens)
      detail::fail(errc::out_of_range, fn, "the training rows hold more than 2^63 tokens");
    sum.tokens += len;
    unit_tokens[i / options.unit_rows] += len;
  }

  // Assign ranks mini-batch by mini-batch.
  std::vector<std::int64_t> rank(static_cast<std::size_t>(U), 0), cell_of(rank.size(), 0);
  for (std::int64_t j = 0; j < m; ++j) {
    const std::int64_t u0 = j * U / m, u1 = (j + 1) * U / m, c = u1 - u0;
    switch (options.method) {
      case balance_method::karmarkar_karp:
        detail::cpu::karmarkar_karp(unit_tokens.data() + u0, c, R, rank.data() + u0);
        break;
      case balance_method::lpt:
        detail::cpu::lpt(unit_tokens.data() + u0, c, R, rank.data() + u0);
        break;
      case balance_method::contiguous:
        detail::cpu::contiguous(c, R, rank.data() + u0);
        break;
    }
    for (std::int64_t u = u0; u < u1; ++u)
      cell_of[u] = rank[u] * m + j;
  }

  // Counting sort of the units by cell, stable: units keep training order inside a cell.
  std::vector<std::int64_t> cell_units(static_cast<std::size_t>(cells) + 1, 0);
  std::vector<std::int64_t> cell_tokens(static_cast<std::size_t>(cells), 0);
  for (std::int64_t u = 0; u < U; ++u) {
    ++cell_units[cell_of[u] + 1];
    cell_tokens[cell_of[u]] += unit_tokens[u];
  }
  for (std::int64_t c = 0; c < cells; ++c)
    cell_units[c + 1] += cell_units[c];
  std::vector<std::int64_t> cursor(cell_units.begin(), cell_units.end() - 1);
  for (std::int64_t u = 0; u < U; ++u) {
    const std::int64_t at = cursor[cell_of[u]]++ * options.unit_rows;
    for (std::int64_t k = 0; k < options.unit_rows; ++k)
      out_rows[at + k] = rows[u * options.unit_rows + k];
  }
  for (std::int64_t c = 0; c <= cells; ++c)
    offsets[c] = cell_units[c] * options.unit_rows;

  // Balance report.
  sum.max_cell_tokens = *std::max_element(cell_tokens.begin(), cell_tokens.end());
  sum.min_cell_tokens = *std::min_element(cell_tokens.begin(), cell_tokens.end());
  double worst = 1.0, max_total = 0.0, mean_total = 0.0;
  for (std::int64_t j = 0; j < m; ++j) {
    std::int64_t hi = 0, total = 0;
    for (std::int64_t r = 0; r < R; ++r) {
      hi = std::max(hi, cell_tokens[r * m + j]);
      total += cell_tokens[r * m + j];
      sum.empty_cells += cell_units[r * m + j + 1] == cell_units[r * m + j];
    }
    const double mean = static_cast<double>(total) / static_cast<double>(R);
    if (mean > 0.0) worst = std::max(worst, static_cast<double>(hi) / mean);
    max_total += static_cast<double>(hi);
    mean_total += mean;
  }
  sum.imbalance = worst;
  sum.step_imbalance = mean_total > 0.0 ? max_total / mean_total : 1.0;
  return sum;
}

/// Convenience overload: any host containers (std::vector, spans).
template <class Rows, class Lengths, class OutRows, class Offsets,
          class = std::enable_if_t<is_host_viewable_v<Rows> && is_host_viewable_v<Lengths> &&
                                   is_host_viewable_v<OutRows> && is_host_viewable_v<Offsets>>>
partition_summary partition_rows(cpu_policy policy, Rows&& rows, Lengths&& lengths,
                                 OutRows&& out_rows, Offsets&& offsets,
                                 const partition_options& options = {}) {
  using L = std::remove_const_t<typename host_view_t<Lengths>::element_type>;
  return partition_rows<L>(policy, host_span<const std::int64_t>(as_host_span(rows)),
                           host_span<const L>(as_host_span(lengths)),
                           host_span<std::int64_t>(as_host_span(out_rows)),
                           host_span<std::int64_t>(as_host_span(offsets)), options);
}

}  // namespace shuffle_r1
