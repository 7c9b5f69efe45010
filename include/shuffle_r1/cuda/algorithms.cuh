/// @file cuda/algorithms.cuh
/// @brief The CUDA overloads of the single-stage algorithms: groups_from_ids, count_pairs,
/// normalize_advantages, select_pairs, shuffle_pairs, pairs_to_rows. Internal: include
/// <shuffle_r1/cuda.cuh>.
///
/// Each call checks on the host everything the host can (options, sizes, uniform layouts),
/// enqueues its kernels on the policy's stream with temporaries from the policy's memory
/// resource, waits for the stream once, and then returns the CPU overload's result or throws
/// the CPU overload's exception (same code, same message). Checks of device data (non-finite
/// values, ragged / indexed / id layouts, the range of batch_std verl singletons) run on the
/// device before any output is written.
#pragma once

#ifndef SHUFFLE_R1_CUDA_INCLUDED
#error "shuffle_r1/cuda headers are internal: include <shuffle_r1/cuda.cuh>"
#endif

#include <shuffle_r1/advantage.hpp>
#include <shuffle_r1/cuda/advantage.cuh>
#include <shuffle_r1/cuda/layout.cuh>
#include <shuffle_r1/cuda/pairs.cuh>
#include <shuffle_r1/cuda/report.cuh>
#include <shuffle_r1/cuda/runtime.cuh>
#include <shuffle_r1/cuda/shuffle.cuh>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/pairs.hpp>
#include <shuffle_r1/shuffle.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <cstdint>
#include <type_traits>

namespace shuffle_r1 {

namespace detail::gpu {

/// Kept pairs per group of a uniform layout, with the CPU's checks and messages (a uniform
/// layout's groups are all alike, so the first group stands for all). @throws error.
inline std::int64_t uniform_kept_pairs(const char* fn, const uniform_groups& g,
                                       const pair_options& o) {
  const uniform_groups first{g.num_groups > 0 ? 1 : 0, g.group_size};
  return validate_pairs_plan(fn, to_host_layout(first), o);
}

/// The PTS option checks of validate_pairs_plan (no groups). @throws error.
inline void check_pair_options(const char* fn, const pair_options& o) {
  (void)validate_pairs_plan(fn, host_layout{}, o);
}

/// B rows as the kernels' index type allows. @throws error.
inline std::int64_t batch_rows(const char* fn, std::size_t size) {
  const auto B = static_cast<std::int64_t>(size);
  check_rows_limit(fn, B);
  return B;
}

template <class T>
inline constexpr bool is_real_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

/// gathers rows[2i], rows[2i+1] = pairs[2 order[i]], pairs[2 order[i] + 1] (after the checks).
template <int = 0>
__global__ void __launch_bounds__(tuning::block_threads)
    gather_rows_kernel(const std::int64_t* pairs, std::int64_t K, const std::int64_t* order,
                       std::int64_t n, std::int64_t* rows, bool check_only, device_status* st) {
  if (check_only ? blocked(st, check_id::order_range) : failed(st)) return;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t j = order[i];
    if (check_only) {
      if (j < 0 || j >= K) record(st, check_id::order_range, static_cast<unsigned long long>(i));
    } else {
      rows[2 * i] = pairs[2 * j];
      rows[2 * i + 1] = pairs[2 * j + 1];
    }
  }
}

}  // namespace detail::gpu

/// Builds, on the device, the indexed layout of a batch whose rows carry group ids
/// (verl/EasyR1 `uid`): groups by first appearance of their id, rows in batch order.
///
/// @param ids one id per row (B entries, device memory)
/// @param offsets output, at least B + 1 entries (G + 1 are written)
/// @param rows output, at least B entries (B are written)
/// @return the layout, viewing the first G + 1 offsets and the first B rows (device memory)
/// @pre the outputs do not overlap `ids`.
/// @throws error(errc::size_mismatch) when an output is too small (nothing written),
///         error(errc::out_of_range) for B >= 2^31, cuda_error.
/// @par Empty input B = 0 gives G = 0 and offsets = {0}.
/// @par Determinism A pure function of the ids: the CPU overload's offsets and rows exactly.
/// @par Complexity O(B) work (a 64-bit radix sort of the ids and scans); temporaries of about
///      60 B bytes; synchronizes the stream once.
template <class I>
device_indexed_groups groups_from_ids(cuda_policy policy, device_span<const I> ids,
                                      device_span<std::int64_t> offsets,
                                      device_span<std::int64_t> rows) {
  static_assert(std::is_integral_v<I>, "groups_from_ids: ids must be integers");
  constexpr const char* fn = "groups_from_ids";
  namespace g = detail::gpu;
  const std::int64_t n = g::batch_rows(fn, ids.size());
  if (static_cast<std::int64_t>(offsets.size()) < n + 1)
    detail::fail(errc::size_mismatch, fn, "offsets has ", offsets.size(),
                 " entries, needs at least ids.size() + 1 = ", n + 1);
  if (static_cast<std::int64_t>(rows.size()) < n)
    detail::fail(errc::size_mismatch, fn, "rows has ", rows.size(),
                 " entries, needs at least ids.size() = ", n);
  if (n == 0) {
    SHUFFLE_R1_CUDA_CHECK(fn,
                          cudaMemsetAsync(offsets.data(), 0, sizeof(std::int64_t), policy.stream));
    SHUFFLE_R1_CUDA_CHECK(fn, cudaStreamSynchronize(policy.stream));
    return device_indexed_groups{device_span<const std::int64_t>(offsets.data(), 1),
                                 device_span<const std::int64_t>(rows.data(), 0)};
  }
  g::carver measure;
  (void)measure.take<g::device_status>(1);
  (void)g::reserve_ids(fn, measure, n);
  g::temporary tmp(policy, measure.size());
  g::carver ws(tmp.data());
  g::device_status* st = ws.take<g::device_status>(1);
  const g::ids_buffers b = g::reserve_ids(fn, ws, n);
  g::status_context ctx;
  ctx.rows = n;
  g::init_status(fn, policy.stream, st, ctx, 0, 0);
  g::launch_ids(fn, policy.stream, ids.data(), n, b, rows.data(), offsets.data(), st);
  const g::device_status s = g::read_status(fn, policy.stream, st);
  return device_indexed_groups{
      device_span<const std::int64_t>(offsets.data(), static_cast<std::size_t>(s.groups + 1)),
      device_span<const std::int64_t>(rows.data(), static_cast<std::size_t>(n))};
}

/// @copydoc groups_from_ids(cuda_policy, device_span<const I>, device_span<std::int64_t>,
/// device_span<std::int64_t>)
template <class I, class = std::enable_if_t<!std::is_const_v<I>>>
device_indexed_groups groups_from_ids(cuda_policy policy, device_span<I> ids,
                                      device_span<std::int64_t> offsets,
                                      device_span<std::int64_t> rows) {
  return groups_from_ids<I>(policy, device_span<const I>(ids), offsets, rows);
}

/// Number of pairs select_pairs keeps for a device layout: the CPU count_pairs, with the layout
/// validated on the device.
///
/// @throws error as the CPU count_pairs (errc::invalid_layout, errc::odd_group,
///         errc::too_few_pairs, errc::invalid_argument), cuda_error.
/// @par Determinism A pure function of the layout and options.
/// @par Complexity O(B + G) device work; synchronizes the stream once. For uniform_groups no
///      device work at all.
template <class Layout, class = std::enable_if_t<is_device_layout_v<Layout>>>
std::int64_t count_pairs(cuda_policy policy, const Layout& groups, std::int64_t rows,
                         const pair_options& options = {}) {
  constexpr const char* fn = "count_pairs";
  namespace g = detail::gpu;
  if constexpr (std::is_same_v<Layout, uniform_groups>) {
    (void)policy;
    return count_pairs(groups, rows, options);
  } else {
    g::check_rows_limit(fn, rows);
    const g::layout_info info = g::host_layout_info(fn, groups, rows);
    g::check_pair_options(fn, options);
    g::carver measure;
    (void)measure.take<g::device_status>(1);
    (void)g::reserve_layout(fn, measure, groups, rows);
    (void)g::reserve_pair_plan(fn, measure, info.groups);
    g::temporary tmp(policy, measure.size());
    g::carver ws(tmp.data());
    g::device_status* st = ws.take<g::device_status>(1);
    const g::layout_buffers lb = g::reserve_layout(fn, ws, groups, rows);
    const g::pair_plan_buffers pb = g::reserve_pair_plan(fn, ws, info.groups);
    g::status_context ctx;
    ctx.rows = rows;
    ctx.keep_pairs = options.keep_pairs;
    g::init_status(fn, policy.stream, st, ctx, info.groups_exact ? info.groups : 0, 0);
    const g::dev_layout L = g::launch_layout(fn, policy.stream, groups, rows, lb, st);
    g::launch_pair_plan(fn, policy.stream, L, info.groups, options, false, {}, pb, st);
    g::describe_inputs d;
    d.layout = L;
    g::launch_describe(fn, policy.stream, d, st);
    const g::device_status s = g::read_status(fn, policy.stream, st);
    if (s.error) g::raise(fn, s, false);
    return s.pairs;
  }
}

/// Turns per-row rewards into per-row advantages, group by group, on the device: the CUDA
/// overload of normalize_advantages (advantage.hpp), same options and semantics.
///
/// @param rewards B finite rewards (device memory)
/// @param groups uniform_groups or a device layout (device_ragged_groups,
///        device_indexed_groups, device_id_groups<I>) covering exactly B rows
/// @param advantages output, B elements (device memory); may be the same memory as `rewards`
///        (in place: every group is read before any of its rows is written), must not
///        partially overlap it
/// @param options estimator, ddof, eps, singleton policy
/// @param stats optional per-group mean and std outputs (G elements each, or empty)
/// @return counts: groups, zero-variance, singleton and empty groups, batch sigma
/// @throws error exactly as the CPU overload (same codes and messages), checked before any
///         output is written; cuda_error for a failed CUDA call. When several preconditions
///         fail at once, host-checkable ones (options, sizes, uniform layouts) are reported
///         first.
/// @par Empty input B = 0 writes nothing and returns zeros.
/// @par Determinism Bit-identical to the CPU overload (advantages, statistics and counts), on
///      every run and GPU.
/// @par Complexity O(B) work: one validation pass and one normalization pass over the rewards
///      (batch_std: two more), one thread per group of at most 32 rows, one warp per larger
///      group; synchronizes the stream once; temporaries from the policy's resource (a few
///      hundred bytes for uniform layouts).
template <class R, class T, class Layout,
          class = std::enable_if_t<std::is_same_v<std::remove_const_t<R>, T> &&
                                   is_device_layout_v<Layout>>>
advantage_summary normalize_advantages(cuda_policy policy, device_span<R> rewards,
                                       const Layout& groups, device_span<T> advantages,
                                       const advantage_options& options = {},
                                       const device_group_stats_out& stats = {}) {
  static_assert(detail::gpu::is_real_v<T>, "normalize_advantages: rewards must be float or double");
  constexpr const char* fn = "normalize_advantages";
  namespace g = detail::gpu;
  const std::int64_t B = g::batch_rows(fn, rewards.size());
  const g::layout_info info = g::host_layout_info(fn, groups, B);
  g::check_advantage_options<T>(fn, options);
  if (advantages.size() != rewards.size())
    detail::fail(errc::size_mismatch, fn, "advantages has ", advantages.size(),
                 " elements, expected ", rewards.size(), " (one per reward)");
  g::status_context ctx;
  ctx.rows = B;
  const g::norm_params p = g::make_norm_params<T>(options);
  g::norm_context<T>(options, ctx);
  if (info.groups_exact) {
    const auto G = static_cast<std::size_t>(info.groups);
    if (!stats.mean.empty() && stats.mean.size() != G)
      detail::fail(errc::size_mismatch, fn, "stats.mean has ", stats.mean.size(),
                   " elements, expected ", G, " (one per group) or 0");
    if (!stats.std.empty() && stats.std.size() != G)
      detail::fail(errc::size_mismatch, fn, "stats.std has ", stats.std.size(),
                   " elements, expected ", G, " (one per group) or 0");
  } else {
    ctx.stats_cap[0] = stats.mean.empty() ? -1 : static_cast<std::int64_t>(stats.mean.size());
    ctx.stats_cap[1] = stats.std.empty() ? -1 : static_cast<std::int64_t>(stats.std.size());
  }
  g::carver measure;
  (void)measure.take<g::device_status>(1);
  (void)g::reserve_layout(fn, measure, groups, B);
  (void)g::reserve_normalize(measure, B, options.kind);
  g::temporary tmp(policy, measure.size());
  g::carver ws(tmp.data());
  g::device_status* st = ws.take<g::device_status>(1);
  const g::layout_buffers lb = g::reserve_layout(fn, ws, groups, B);
  const g::norm_buffers nb = g::reserve_normalize(ws, B, options.kind);
  const cudaStream_t s = policy.stream;
  const int threads = g::tuning::block_threads;
  g::init_status(fn, s, st, ctx, info.groups_exact ? info.groups : 0, 0);
  const g::dev_layout L = g::launch_layout(fn, s, groups, B, lb, st);
  const bool singleton_error = options.singleton == singleton_policy::error;
  if (info.uniform < 0) {
    g::group_check_params gp;
    gp.singleton_error = singleton_error;
    g::group_checks_kernel<><<<g::grid_for(fn, info.groups + 1, threads), threads, 0, s>>>(
        L, info.groups, gp, nullptr, st);
    g::check_launch(fn);
    if (!info.groups_exact) {
      g::stats_check_kernel<><<<1, 1, 0, s>>>(st);
      g::check_launch(fn);
    }
  } else if (info.uniform == 1 && info.groups > 0 && singleton_error) {
    g::record_kernel<><<<1, 1, 0, s>>>(st, g::check_id::singleton, 0);
    g::check_launch(fn);
  }
  g::scan_rewards_kernel<T>
      <<<g::grid_for(fn, B, threads), threads, 0, s>>>(rewards.data(), B, p, st);
  g::check_launch(fn);
  if (options.kind == estimator::batch_std) {
    g::launch_batch_std(fn, s, rewards.data(), B, options.ddof, options.eps, nb, st);
    g::launch_singleton_range(fn, s, rewards.data(), L, info, p, st);
  }
  g::launch_group_normalize<T>(fn, s, rewards.data(), L, info, p, advantages.data(),
                               stats.mean.empty() ? nullptr : stats.mean.data(),
                               stats.std.empty() ? nullptr : stats.std.data(), st);
  g::describe_inputs d;
  d.values = rewards.data();
  d.values_double = std::is_same_v<T, double>;
  d.layout = L;
  g::launch_describe(fn, s, d, st);
  const g::device_status r = g::read_status(fn, s, st);
  if (r.error) g::raise(fn, r, false);
  advantage_summary sum;
  sum.rows = B;
  sum.groups = r.groups;
  sum.zero_variance_groups = static_cast<std::int64_t>(r.zero_variance);
  sum.singleton_groups = static_cast<std::int64_t>(r.singleton);
  sum.empty_groups = static_cast<std::int64_t>(r.empty);
  sum.batch_std = options.kind == estimator::batch_std ? r.batch_sigma : 0.0;
  return sum;
}

/// PTS on the device: the CUDA overload of select_pairs (pairs.hpp), same options and
/// semantics.
///
/// @param advantages B finite advantages (device memory)
/// @param groups uniform_groups or a device layout covering exactly B rows
/// @param pairs output, at least 2K entries: [hi_0, lo_0, hi_1, lo_1, ...] (device memory)
/// @param weights output, at least K entries, or empty to skip (device memory)
/// @return K, the number of pairs written
/// @throws error exactly as the CPU overload, before any output is written; cuda_error.
/// @par Empty input B = 0 writes nothing and returns 0.
/// @par Determinism Pairs and weights bit-identical to the CPU overload.
/// @par Complexity O(sum n_g^2) work for groups of at most 64 rows (one thread per group), a
///      two radix sorts of the batch for larger groups; synchronizes the stream once.
template <class A, class T, class Layout,
          class = std::enable_if_t<std::is_same_v<std::remove_const_t<A>, T> &&
                                   is_device_layout_v<Layout>>>
std::int64_t select_pairs(cuda_policy policy, device_span<A> advantages, const Layout& groups,
                          device_span<std::int64_t> pairs, device_span<T> weights,
                          const pair_options& options = {}) {
  static_assert(detail::gpu::is_real_v<T>, "select_pairs: advantages must be float or double");
  constexpr const char* fn = "select_pairs";
  namespace g = detail::gpu;
  const std::int64_t B = g::batch_rows(fn, advantages.size());
  const g::layout_info info = g::host_layout_info(fn, groups, B);
  g::check_pair_options(fn, options);
  g::status_context ctx;
  ctx.rows = B;
  ctx.keep_pairs = options.keep_pairs;
  std::int64_t K = 0, uniform_kept = 0;
  if constexpr (std::is_same_v<Layout, uniform_groups>) {
    uniform_kept = g::uniform_kept_pairs(fn, groups, options);
    K = uniform_kept * groups.num_groups;
    if (static_cast<std::int64_t>(pairs.size()) < 2 * K)
      detail::fail(errc::size_mismatch, fn, "pairs has ", pairs.size(), " entries, needs 2 * ", K,
                   " = ", 2 * K);
    if (!weights.empty() && static_cast<std::int64_t>(weights.size()) < K)
      detail::fail(errc::size_mismatch, fn, "weights has ", weights.size(), " entries, needs ", K,
                   " (or 0 to skip)");
  } else {
    ctx.cap[g::slot_pairs] = static_cast<std::int64_t>(pairs.size());
    ctx.cap[g::slot_weights] = weights.empty() ? -1 : static_cast<std::int64_t>(weights.size());
  }
  const bool big = info.uniform < 0 || info.uniform > g::tuning::thread_pair_rows;
  g::carver measure;
  (void)measure.take<g::device_status>(1);
  (void)g::reserve_layout(fn, measure, groups, B);
  if (info.uniform < 0) (void)g::reserve_pair_plan(fn, measure, info.groups);
  if (big) (void)g::reserve_large_pairs<T>(fn, measure, B, info.groups);
  g::temporary tmp(policy, measure.size());
  g::carver ws(tmp.data());
  g::device_status* st = ws.take<g::device_status>(1);
  const g::layout_buffers lb = g::reserve_layout(fn, ws, groups, B);
  g::pair_plan_buffers pb;
  if (info.uniform < 0) pb = g::reserve_pair_plan(fn, ws, info.groups);
  g::large_pair_buffers<T> large;
  if (big) large = g::reserve_large_pairs<T>(fn, ws, B, info.groups);
  const cudaStream_t s = policy.stream;
  const int threads = g::tuning::block_threads;
  g::init_status(fn, s, st, ctx, info.groups_exact ? info.groups : 0, K);
  const g::dev_layout L = g::launch_layout(fn, s, groups, B, lb, st);
  if (info.uniform < 0) g::launch_pair_plan(fn, s, L, info.groups, options, false, {}, pb, st);
  g::check_finite_kernel<T><<<g::grid_for(fn, B, threads), threads, 0, s>>>(
      advantages.data(), B, g::check_id::advantage_nonfinite, st);
  g::check_launch(fn);
  g::pair_params pp;
  pp.weight = options.weight;
  pp.keep_ratio = options.keep_ratio;
  pp.keep_pairs = options.keep_pairs;
  g::launch_pairs<T, std::int64_t>(fn, s, advantages.data(), L, info, B, pp, uniform_kept,
                                   info.uniform < 0 ? pb.off : nullptr, large, pairs.data(),
                                   weights.empty() ? nullptr : weights.data(), st);
  g::describe_inputs d;
  d.values = advantages.data();
  d.values_double = std::is_same_v<T, double>;
  d.layout = L;
  g::launch_describe(fn, s, d, st);
  const g::device_status r = g::read_status(fn, s, st);
  if (r.error) g::raise(fn, r, false);
  return r.pairs;
}

/// ABS on the device: the CUDA overload of shuffle_pairs (shuffle.hpp), same options and
/// semantics.
///
/// @param weights K finite weights >= 0 (device memory)
/// @param order output, at least shuffle_size(K, options) entries (device memory)
/// @return the summary: nonzero pairs, S, actual T, entries written, extra phases
/// @throws error exactly as the CPU overload, before any output is written; cuda_error.
/// @par Empty input K = 0 gives T = 0 and writes nothing.
/// @par Determinism `order` and the summary are bit-identical to the CPU overload's for the
///      same weights, seed and step (the same Philox words, integer masses and draws).
/// @par Complexity O(K) for the tables (one block) plus O(S * T) expected draws, one block per
///      round (rounds in parallel, at most round_blocks_per_sm blocks per SM); O(K) per extra
///      phase; synchronizes the stream once.
template <class W, class = std::enable_if_t<detail::gpu::is_real_v<std::remove_const_t<W>>>>
shuffle_summary shuffle_pairs(cuda_policy policy, device_span<W> weights,
                              device_span<std::int64_t> order,
                              const shuffle_options& options = {}) {
  using T = std::remove_const_t<W>;
  constexpr const char* fn = "shuffle_pairs";
  namespace g = detail::gpu;
  const auto K = static_cast<std::int64_t>(weights.size());
  const detail::shuffle_shape shape = detail::validate_shuffle_options(fn, K, options);
  g::status_context ctx;
  ctx.rounds = shape.rounds;
  ctx.per_round = options.per_round;
  ctx.on_short = static_cast<int>(options.on_short);
  ctx.cap[g::slot_order] = static_cast<std::int64_t>(order.size());
  g::carver measure;
  (void)measure.take<g::device_status>(1);
  (void)g::reserve_tables(measure, K, options.on_short, false);
  (void)g::reserve_rounds(fn, measure, shape.rounds, K);
  g::temporary tmp(policy, measure.size());
  g::carver ws(tmp.data());
  g::device_status* st = ws.take<g::device_status>(1);
  const g::table_buffers tb = g::reserve_tables(ws, K, options.on_short, false);
  const g::round_buffers rb = g::reserve_rounds(fn, ws, shape.rounds, K);
  const cudaStream_t s = policy.stream;
  g::init_status(fn, s, st, ctx, 0, K);
  g::table_params tp = g::make_table_params(options);
  tp.check_order = true;
  g::tables_kernel<T><<<1, g::tuning::table_threads, 0, s>>>(weights.data(), K, tp, tb, st);
  g::check_launch(fn);
  g::round_outputs<std::int64_t> out;
  out.order = order.data();
  g::rounds_kernel<std::int64_t><<<rb.blocks, g::tuning::round_threads, 0, s>>>(
      tb, g::make_round_params(options, K), out, rb.state, rb.cum_phase, st);
  g::check_launch(fn);
  g::describe_inputs d;
  d.values = weights.data();
  d.values_double = std::is_same_v<T, double>;
  g::launch_describe(fn, s, d, st);
  const g::device_status r = g::read_status(fn, s, st);
  if (r.error) g::raise(fn, r, false);
  shuffle_summary sum;
  sum.pairs = K;
  sum.nonzero_pairs = r.nonzero;
  sum.rounds = shape.rounds;
  sum.per_round = r.per_round;
  sum.size = sum.rounds * sum.per_round;
  sum.extra_phases = r.extra_phases;
  return sum;
}

/// Expands a pair order into training rows on the device: the CUDA overload of pairs_to_rows.
///
/// @param pairs 2K entries from select_pairs; @param order pair indices in [0, K)
/// @param rows output, at least 2 * order.size() entries (all device memory)
/// @throws error as the CPU overload (sizes on the host, order entries on the device, before
///         anything is written); cuda_error.
/// @par Determinism Pure. @par Complexity O(order.size()); synchronizes the stream once.
inline void pairs_to_rows(cuda_policy policy, device_span<const std::int64_t> pairs,
                          device_span<const std::int64_t> order, device_span<std::int64_t> rows) {
  constexpr const char* fn = "pairs_to_rows";
  namespace g = detail::gpu;
  if (pairs.size() % 2 != 0)
    detail::fail(errc::size_mismatch, fn, "pairs has ", pairs.size(),
                 " entries, expected an even number (hi, lo per pair)");
  if (rows.size() < 2 * order.size())
    detail::fail(errc::size_mismatch, fn, "rows has ", rows.size(), " entries, needs ",
                 2 * order.size());
  const auto K = static_cast<std::int64_t>(pairs.size() / 2);
  const auto n = static_cast<std::int64_t>(order.size());
  g::temporary tmp(policy, sizeof(g::device_status));
  auto* st = reinterpret_cast<g::device_status*>(tmp.data());
  const cudaStream_t s = policy.stream;
  const int threads = g::tuning::block_threads;
  g::init_status(fn, s, st, {}, 0, K);
  const unsigned grid = g::grid_for(fn, n, threads);
  g::gather_rows_kernel<>
      <<<grid, threads, 0, s>>>(pairs.data(), K, order.data(), n, rows.data(), true, st);
  g::check_launch(fn);
  g::gather_rows_kernel<>
      <<<grid, threads, 0, s>>>(pairs.data(), K, order.data(), n, rows.data(), false, st);
  g::check_launch(fn);
  g::describe_inputs d;
  d.order = order.data();
  g::launch_describe(fn, s, d, st);
  const g::device_status r = g::read_status(fn, s, st);
  if (r.error) g::raise(fn, r, false);
}

}  // namespace shuffle_r1
