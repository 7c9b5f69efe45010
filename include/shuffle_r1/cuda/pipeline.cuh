/// @file cuda/pipeline.cuh
/// @brief The CUDA pipeline: advantages, PTS, ABS and training rows, stream-ordered in a
/// caller-supplied workspace (no synchronization, no allocation: capturable in a CUDA graph).
/// Internal: include <shuffle_r1/cuda.cuh>.
#pragma once

#ifndef SHUFFLE_R1_CUDA_INCLUDED
#error "shuffle_r1/cuda headers are internal: include <shuffle_r1/cuda.cuh>"
#endif

#include <shuffle_r1/cuda/advantage.cuh>
#include <shuffle_r1/cuda/algorithms.cuh>
#include <shuffle_r1/cuda/layout.cuh>
#include <shuffle_r1/cuda/pairs.cuh>
#include <shuffle_r1/cuda/report.cuh>
#include <shuffle_r1/cuda/runtime.cuh>
#include <shuffle_r1/cuda/shuffle.cuh>
#include <shuffle_r1/pipeline.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace shuffle_r1 {

/// Device memory run_pipeline writes to. Every view may be empty (not written); a non-empty view
/// must be at least as large as plan_pipeline says (group_mean / group_std: exactly G).
template <class T>
struct device_pipeline_outputs {
  device_span<T> advantages;        ///< B advantages in input row order
  device_span<std::int64_t> pairs;  ///< 2K: (hi, lo) rows of each kept pair
  device_span<T> pair_weights;      ///< K: the chosen weight of each pair
  device_span<std::int64_t> order;  ///< S*T: pair indices in ABS draw order
  device_span<std::int64_t> rows;   ///< 2*S*T: training rows, each pair's rows adjacent
  device_span<double> group_mean;   ///< G: optional group statistics
  device_span<double> group_std;    ///< G
};

namespace detail::gpu {

/// What the host knows about a pipeline call before any launch.
struct pipeline_shape {
  layout_info info;
  std::int64_t rows = 0;
  std::int64_t Kmax = 0;  ///< K (uniform layouts) or an upper bound (B / 2)
  bool K_exact = false;
  std::int64_t uniform_kept = 0;  ///< pairs kept per group (uniform layouts)
  std::int64_t rounds = 0;        ///< S
  std::int64_t order = 0;         ///< S * T (uniform layouts)
  bool fused = false;             ///< uniform groups of at most 32 rows: one fused kernel
  bool large_pairs = false;       ///< groups of more than 64 rows are possible
};

/// Every host check of run_pipeline, in the CPU's order, and the call's shape. @throws error.
template <class T, class Layout>
pipeline_shape plan_shape(const char* fn, const Layout& groups, std::int64_t B,
                          const pipeline_config& c) {
  check_rows_limit(fn, B);
  pipeline_shape p;
  p.rows = B;
  p.info = host_layout_info(fn, groups, B);
  check_advantage_options<T>(fn, c.advantage);
  check_pair_options(fn, c.pairs);
  if constexpr (std::is_same_v<Layout, uniform_groups>) {
    p.uniform_kept = uniform_kept_pairs(fn, groups, c.pairs);
    p.Kmax = p.uniform_kept * groups.num_groups;
    p.K_exact = true;
    const shuffle_shape s = validate_shuffle_options(fn, p.Kmax, c.shuffle);
    p.rounds = s.rounds;
    p.order = s.rounds * s.per_round;
    p.fused = groups.group_size <= tuning::thread_group_rows && groups.num_groups > 0;
    p.large_pairs = groups.group_size > tuning::thread_pair_rows && p.uniform_kept > 0;
  } else {
    // K is known on the device only: the options are checked here against the bound B / 2 with
    // T = K / S; per_round > K and the output sizes are checked on the device.
    p.Kmax = B / 2;
    shuffle_options o = c.shuffle;
    o.per_round = -1;
    const shuffle_shape s = validate_shuffle_options(fn, p.Kmax, o);
    p.rounds = s.rounds;
    p.large_pairs = true;
  }
  return p;
}

/// The pipeline's buffers; the status comes first (pipeline_result reads it at offset 0).
template <class T>
struct pipeline_buffers {
  device_status* st = nullptr;
  layout_buffers layout;
  norm_buffers norm;
  T* adv = nullptr;
  double* mean = nullptr;
  double* sd = nullptr;
  pair_plan_buffers plan;
  large_pair_buffers<T> large;
  int* pairs = nullptr;
  T* weights = nullptr;
  table_buffers tables;
  round_buffers rounds;
};

/// Lays out (or measures) the pipeline's workspace. @throws cuda_error (CUB size queries).
template <class T, class Layout>
pipeline_buffers<T> reserve_pipeline(const char* fn, carver& ws, const Layout& groups,
                                     const pipeline_shape& p, const pipeline_config& c) {
  pipeline_buffers<T> b;
  const std::int64_t B = p.rows, G = p.info.groups;
  b.st = ws.take<device_status>(1);
  b.layout = reserve_layout(fn, ws, groups, B);
  b.norm = reserve_normalize(ws, B, c.advantage.kind);
  b.adv = ws.take<T>(B);
  b.mean = ws.take<double>(G);
  b.sd = ws.take<double>(G);
  if (p.info.uniform < 0) b.plan = reserve_pair_plan(fn, ws, G);
  if (p.large_pairs) b.large = reserve_large_pairs<T>(fn, ws, B, G);
  b.pairs = ws.take<int>(2 * p.Kmax);
  b.weights = ws.take<T>(p.Kmax);
  b.tables = reserve_tables(ws, p.Kmax, c.shuffle.on_short, true);
  b.rounds = reserve_rounds(fn, ws, p.rounds, p.Kmax);
  return b;
}

/// Uniform groups of n <= P <= 32 rows, one thread per group: normalization (as
/// normalize_small_kernel) and PTS on the rounded advantages still in registers (as
/// pairs_small_kernel), with the rewards validated on the way.
template <class T, int P>
__global__ void __launch_bounds__(tuning::block_threads)
    fused_small_kernel(const T* x, dev_layout L, norm_params np, pair_weight w, std::int64_t M,
                       T* adv, double* mean, double* sd, int* pairs, T* weights,
                       device_status* st) {
  if (norm_gated(np, st)) return;
  const batch_constants b = load_batch(np, st);
  const std::int64_t G = L.groups, n = L.uniform;
  norm_counts c;
  for (std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; g < G;
       g += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t begin = g * n;
    T vals[P];
    normalize_group<T, P>(x, L, g, begin, n, np, b, adv, mean, sd, c, st, vals);
    if (M > 0) {
      SHUFFLE_R1_UNROLL
      for (int k = 0; k < P; ++k)
        if (k >= n) vals[k] = static_cast<T>(-HUGE_VAL);
      emit_group_pairs<T, P, int>(vals, n, M, L, begin, g * M, w, pairs, weights);
    }
  }
  flush_counts(c, st);
}

/// What commit_kernel copies.
template <class T>
struct commit_params {
  const T* adv = nullptr;
  const int* pairs = nullptr;
  const T* weights = nullptr;
  const double* mean = nullptr;
  const double* sd = nullptr;
  const unsigned char* used = nullptr;
  T* out_adv = nullptr;
  std::int64_t* out_pairs = nullptr;
  T* out_weights = nullptr;
  double* out_mean = nullptr;
  double* out_sd = nullptr;
  std::int64_t rows = 0, Kmax = 0, Gmax = 0;
};

/// The last kernel: when every check passed, copies the staged outputs to the caller's views
/// and counts the distinct pairs used; otherwise completes the error's description.
template <class T>
__global__ void __launch_bounds__(tuning::block_threads)
    commit_kernel(commit_params<T> p, describe_inputs d, device_status* st) {
  if (failed(st)) {
    if (blockIdx.x == 0 && threadIdx.x == 0) describe(d, st);
    return;
  }
  const std::int64_t K = st->pairs, G = st->groups;
  std::int64_t n = p.rows > 2 * p.Kmax ? p.rows : 2 * p.Kmax;
  n = n > p.Gmax ? n : p.Gmax;
  unsigned long long used = 0;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    if (p.out_adv && i < p.rows) p.out_adv[i] = p.adv[i];
    if (p.out_pairs && i < 2 * K) p.out_pairs[i] = p.pairs[i];
    if (p.out_weights && i < K) p.out_weights[i] = p.weights[i];
    if (p.out_mean && i < G) p.out_mean[i] = p.mean[i];
    if (p.out_sd && i < G) p.out_sd[i] = p.sd[i];
    if (i < K) used += p.used[i];
  }
  used = block_reduce<0>(used);
  if (threadIdx.x == 0 && used)
    atomicAdd(reinterpret_cast<unsigned long long*>(&st->distinct), used);
}

/// The summary of a finished pipeline from its status. @throws error (the recorded check).
inline pipeline_summary pipeline_summary_of(const device_status& s) {
  if (s.error) raise("run_pipeline", s, true);
  pipeline_summary sum;
  sum.advantage.rows = s.ctx.rows;
  sum.advantage.groups = s.groups;
  sum.advantage.zero_variance_groups = static_cast<std::int64_t>(s.zero_variance);
  sum.advantage.singleton_groups = static_cast<std::int64_t>(s.singleton);
  sum.advantage.empty_groups = static_cast<std::int64_t>(s.empty);
  sum.advantage.batch_std =
      static_cast<estimator>(s.ctx.kind) == estimator::batch_std ? s.batch_sigma : 0.0;
  sum.pairs = s.pairs;
  sum.shuffle.pairs = s.pairs;
  sum.shuffle.nonzero_pairs = s.nonzero;
  sum.shuffle.rounds = s.ctx.rounds;
  sum.shuffle.per_round = s.per_round;
  sum.shuffle.size = s.ctx.rounds * s.per_round;
  sum.shuffle.extra_phases = s.extra_phases;
  sum.distinct_pairs_used = s.distinct;
  return sum;
}

}  // namespace detail::gpu

/// Bytes of device workspace run_pipeline needs for this layout, batch size and config (with
/// reward type T). A workspace of this size (or larger), 256-byte aligned, can be reused by
/// every call with the same layout kind, sizes and config.
///
/// @throws error as run_pipeline's host checks (options, uniform layout, sizes); cuda_error
///         (CUB's size queries need a device).
/// @par Complexity O(1) on the host; reads no device data.
template <class T, class Layout, class = std::enable_if_t<is_device_layout_v<Layout>>>
std::size_t pipeline_workspace_size(cuda_policy /*policy*/, const Layout& groups, std::int64_t rows,
                                    const pipeline_config& config = {}) {
  static_assert(detail::gpu::is_real_v<T>, "pipeline_workspace_size: T must be float or double");
  constexpr const char* fn = "pipeline_workspace_size";
  namespace g = detail::gpu;
  const g::pipeline_shape p = g::plan_shape<T>(fn, groups, rows, config);
  g::carver measure;
  (void)g::reserve_pipeline<T>(fn, measure, groups, p, config);
  return measure.size();
}

/// The whole selection on the device, stream-ordered: normalize_advantages, select_pairs,
/// shuffle_pairs and the training rows, as the CPU run_pipeline computes them, into the
/// caller's device views.
///
/// Nothing synchronizes and nothing is allocated: every kernel is enqueued on policy.stream and
/// every temporary lives in `workspace`, so a trainer can capture the call into a CUDA graph
/// and replay it each step (the inputs' and outputs' addresses are baked into the graph; their
/// contents may change). Call pipeline_result after the stream (or graph) has run to get the
/// summary, or the error a device-side check recorded.
///
/// @param rewards B finite rewards (device memory)
/// @param groups uniform_groups or a device layout covering B rows
/// @param config options of the three stages (as the CPU run_pipeline)
/// @param workspace at least pipeline_workspace_size<T>(policy, groups, B, config) bytes of
///        device memory, 256-byte aligned; must not be used by another call until this one's
///        pipeline_result
/// @param out device views to write (each optional; sizes as plan_pipeline says)
/// @throws error for every failed check the host can make (options, sizes, uniform layouts,
///         workspace size and alignment) before anything is enqueued; cuda_error. Checks of
///         device data (non-finite rewards, ragged / indexed / id layouts and their group
///         sizes, batch_std verl singletons beyond max(T), too few non-zero pairs) are recorded in
///         the workspace and thrown by pipeline_result, with the CPU backend's code and message;
///         `out` is untouched then, except that nothing can stop a later failed launch.
/// @par Determinism Every output bit-identical to the CPU run_pipeline for the same inputs,
///      seed and step.
/// @par Complexity O(B + K + S*T) work in 5 kernels for uniform groups of at most 32 rows
///      (memset-free: status init, fused normalize + PTS, ABS tables, ABS rounds, commit);
///      more for other layouts.
template <class R, class T, class Layout,
          class = std::enable_if_t<std::is_same_v<std::remove_const_t<R>, T> &&
                                   is_device_layout_v<Layout>>>
void run_pipeline(cuda_policy policy, device_span<R> rewards, const Layout& groups,
                  const pipeline_config& config, device_span<std::byte> workspace,
                  const device_pipeline_outputs<T>& out) {
  static_assert(detail::gpu::is_real_v<T>, "run_pipeline: rewards must be float or double");
  constexpr const char* fn = "run_pipeline";
  namespace g = detail::gpu;
  const auto B = static_cast<std::int64_t>(rewards.size());
  const g::pipeline_shape p = g::plan_shape<T>(fn, groups, B, config);
  const std::int64_t G = p.info.groups;
  g::status_context ctx;
  ctx.rows = B;
  ctx.rounds = p.rounds;
  ctx.per_round = config.shuffle.per_round;
  ctx.keep_pairs = config.pairs.keep_pairs;
  ctx.on_short = static_cast<int>(config.shuffle.on_short);
  g::norm_params np = g::make_norm_params<T>(config.advantage);
  np.gate_all = false;
  g::norm_context<T>(config.advantage, ctx);
  if (p.info.groups_exact) {
    const auto Gs = static_cast<std::size_t>(G);
    if (!out.group_mean.empty() && out.group_mean.size() != Gs)
      detail::fail(errc::size_mismatch, fn, "stats.mean has ", out.group_mean.size(),
                   " elements, expected ", Gs, " (one per group) or 0");
    if (!out.group_std.empty() && out.group_std.size() != Gs)
      detail::fail(errc::size_mismatch, fn, "stats.std has ", out.group_std.size(),
                   " elements, expected ", Gs, " (one per group) or 0");
  } else {
    ctx.stats_cap[0] =
        out.group_mean.empty() ? -1 : static_cast<std::int64_t>(out.group_mean.size());
    ctx.stats_cap[1] = out.group_std.empty() ? -1 : static_cast<std::int64_t>(out.group_std.size());
  }
  if (!out.advantages.empty() && static_cast<std::int64_t>(out.advantages.size()) != B)
    detail::fail(errc::size_mismatch, fn, "out.advantages has ", out.advantages.size(),
                 " entries, expected ", B, " (or 0 to skip)");
  const std::size_t caps[] = {out.pairs.size(), out.pair_weights.size(), out.order.size(),
                              out.rows.size()};
  if (p.K_exact) {
    const std::int64_t need[] = {2 * p.Kmax, p.Kmax, p.order, 2 * p.order};
    const char* what[] = {"out.pairs", "out.pair_weights", "out.order", "out.rows"};
    for (int i = 0; i < g::slot_count; ++i)
      if (caps[i] != 0 && static_cast<std::int64_t>(caps[i]) < need[i])
        detail::fail(errc::size_mismatch, fn, what[i], " has ", caps[i], " entries, needs ",
                     need[i], " (or 0 to skip)");
  } else {
    for (int i = 0; i < g::slot_count; ++i)
      ctx.cap[i] = caps[i] == 0 ? -1 : static_cast<std::int64_t>(caps[i]);
  }
  g::carver measure;
  (void)g::reserve_pipeline<T>(fn, measure, groups, p, config);
  if (workspace.size() < measure.size())
    detail::fail(errc::size_mismatch, fn, "workspace has ", workspace.size(), " bytes, needs ",
                 measure.size(), " (pipeline_workspace_size)");
  if (reinterpret_cast<std::uintptr_t>(workspace.data()) % g::tuning::workspace_alignment != 0)
    detail::fail(errc::invalid_argument, fn, "workspace is not aligned to ",
                 g::tuning::workspace_alignment, " bytes");

  g::carver ws(workspace.data());
  const g::pipeline_buffers<T> b = g::reserve_pipeline<T>(fn, ws, groups, p, config);
  g::device_status* st = b.st;
  const cudaStream_t s = policy.stream;
  const int threads = g::tuning::block_threads;
  const bool singleton_error = config.advantage.singleton == singleton_policy::error;
  g::init_status(fn, s, st, ctx, p.info.groups_exact ? G : 0, p.K_exact ? p.Kmax : 0);
  const g::dev_layout L = g::launch_layout(fn, s, groups, B, b.layout, st);
  // 1. Group checks (singleton policy, odd groups, keep_pairs) and K for non-uniform layouts.
  if (p.info.uniform < 0) {
    g::pairs_total_params tp;
    tp.shuffle = true;
    tp.rounds = p.rounds;
    tp.per_round = config.shuffle.per_round;
    g::launch_pair_plan(fn, s, L, G, config.pairs, singleton_error, tp, b.plan, st);
    if (!p.info.groups_exact) {
      g::stats_check_kernel<><<<1, 1, 0, s>>>(st);
      g::check_launch(fn);
    }
  } else if (p.info.uniform == 1 && G > 0 && singleton_error) {
    g::record_kernel<><<<1, 1, 0, s>>>(st, g::check_id::singleton, 0);
    g::check_launch(fn);
  }
  // 2. Advantages (validating the rewards) and pairs, into the workspace.
  if (config.advantage.kind == estimator::batch_std) {
    g::scan_rewards_kernel<T>
        <<<g::grid_for(fn, B, threads), threads, 0, s>>>(rewards.data(), B, np, st);
    g::check_launch(fn);
    g::launch_batch_std(fn, s, rewards.data(), B, config.advantage.ddof, config.advantage.eps,
                        b.norm, st);
    g::launch_singleton_range(fn, s, rewards.data(), L, p.info, np, st);
  } else {
    np.validate = true;
  }
  g::pair_params pp;
  pp.weight = config.pairs.weight;
  pp.keep_ratio = config.pairs.keep_ratio;
  pp.keep_pairs = config.pairs.keep_pairs;
  pp.gate_all = false;
  if (p.fused) {
    const unsigned grid = g::grid_for(fn, G, threads);
    const auto launch = [&](auto width) {
      constexpr int P = decltype(width)::value;
      g::fused_small_kernel<T, P><<<grid, threads, 0, s>>>(rewards.data(), L, np, pp.weight,
                                                           p.uniform_kept, b.adv, b.mean, b.sd,
                                                           b.pairs, b.weights, st);
    };
    switch (detail::padded_width(p.info.uniform)) {
      case 1:
      case 2:
        launch(std::integral_constant<int, 2>{});
        break;
      case 4:
        launch(std::integral_constant<int, 4>{});
        break;
      case 8:
        launch(std::integral_constant<int, 8>{});
        break;
      case 16:
        launch(std::integral_constant<int, 16>{});
        break;
      default:
        launch(std::integral_constant<int, 32>{});
        break;
    }
    g::check_launch(fn);
  } else {
    g::launch_group_normalize<T>(fn, s, rewards.data(), L, p.info, np, b.adv, b.mean, b.sd, st);
    g::launch_pairs<T, int>(fn, s, b.adv, L, p.info, B, pp, p.uniform_kept,
                            p.info.uniform < 0 ? b.plan.off : nullptr, b.large, b.pairs, b.weights,
                            st);
  }
  // 3. ABS: tables, then the rounds, which write the caller's order and rows directly (every
  //    check has been made by then).
  const g::table_params tp = g::make_table_params(config.shuffle);
  g::tables_kernel<T>
      <<<1, g::tuning::table_threads, 0, s>>>(b.weights, p.K_exact ? p.Kmax : -1, tp, b.tables, st);
  g::check_launch(fn);
  g::round_outputs<int> ro;
  ro.order = out.order.empty() ? nullptr : out.order.data();
  ro.rows = out.rows.empty() ? nullptr : out.rows.data();
  ro.pairs = b.pairs;
  ro.used = b.tables.used;
  g::rounds_kernel<int><<<b.rounds.blocks, g::tuning::round_threads, 0, s>>>(
      b.tables, g::make_round_params(config.shuffle, p.Kmax), ro, b.rounds.state,
      b.rounds.cum_phase, st);
  g::check_launch(fn);
  // 4. Commit the staged outputs (or describe the error).
  g::commit_params<T> cp;
  cp.adv = b.adv;
  cp.pairs = b.pairs;
  cp.weights = b.weights;
  cp.mean = b.mean;
  cp.sd = b.sd;
  cp.used = b.tables.used;
  cp.out_adv = out.advantages.empty() ? nullptr : out.advantages.data();
  cp.out_pairs = out.pairs.empty() ? nullptr : out.pairs.data();
  cp.out_weights = out.pair_weights.empty() ? nullptr : out.pair_weights.data();
  cp.out_mean = out.group_mean.empty() ? nullptr : out.group_mean.data();
  cp.out_sd = out.group_std.empty() ? nullptr : out.group_std.data();
  cp.rows = B;
  cp.Kmax = p.Kmax;
  cp.Gmax = G;
  g::describe_inputs d;
  d.values = rewards.data();
  d.values_double = std::is_same_v<T, double>;
  d.layout = L;
  std::int64_t items = B > 2 * p.Kmax ? B : 2 * p.Kmax;
  items = items > G ? items : G;
  g::commit_kernel<T><<<g::grid_for(fn, items, threads), threads, 0, s>>>(cp, d, st);
  g::check_launch(fn);
}

/// Waits for policy.stream and returns the summary of the run_pipeline call that used
/// `workspace` (the same value the CPU run_pipeline returns), or throws the error one of its
/// device-side checks recorded (the CPU backend's code and message).
/// @throws error; cuda_error (including errors of kernels that ran since the last check).
/// @par Complexity One small device-to-host copy and a stream synchronization.
inline pipeline_summary pipeline_result(cuda_policy policy,
                                        device_span<const std::byte> workspace) {
  constexpr const char* fn = "pipeline_result";
  namespace g = detail::gpu;
  if (workspace.size() < sizeof(g::device_status))
    detail::fail(errc::size_mismatch, fn, "workspace has ", workspace.size(),
                 " bytes, too few to hold a pipeline's status");
  const g::device_status s = g::read_status(
      fn, policy.stream, reinterpret_cast<const g::device_status*>(workspace.data()));
  return g::pipeline_summary_of(s);
}

/// Convenience overload: allocates the workspace from the policy's resource, runs the pipeline,
/// waits for it and returns its summary (or throws its error). Not capturable (it allocates
/// and synchronizes).
/// @throws error as run_pipeline and pipeline_result; cuda_error.
template <class R, class T, class Layout,
          class = std::enable_if_t<std::is_same_v<std::remove_const_t<R>, T> &&
                                   is_device_layout_v<Layout>>>
pipeline_summary run_pipeline(cuda_policy policy, device_span<R> rewards, const Layout& groups,
                              const pipeline_config& config,
                              const device_pipeline_outputs<T>& out) {
  const std::size_t bytes =
      pipeline_workspace_size<T>(policy, groups, static_cast<std::int64_t>(rewards.size()), config);
  detail::gpu::temporary tmp(policy, bytes);
  const device_span<std::byte> ws(tmp.data(), bytes);
  run_pipeline(policy, rewards, groups, config, ws, out);
  return pipeline_result(policy, device_span<const std::byte>(ws));
}

/// Output sizes for a batch of `rows` rows in a device layout (K needs the layout: it is read on
/// the device, which synchronizes the stream once). For uniform_groups no device work.
/// @throws error as run_pipeline's layout and option checks; cuda_error.
template <class Layout, class = std::enable_if_t<is_device_layout_v<Layout>>>
pipeline_sizes plan_pipeline(cuda_policy policy, const Layout& groups, std::int64_t rows,
                             const pipeline_config& config = {}) {
  constexpr const char* fn = "plan_pipeline";
  namespace g = detail::gpu;
  if constexpr (std::is_same_v<Layout, uniform_groups>) {
    (void)policy;
    return plan_pipeline(groups, rows, config);
  } else {
    g::check_rows_limit(fn, rows);
    const g::layout_info info = g::host_layout_info(fn, groups, rows);
    g::check_pair_options(fn, config.pairs);
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
    ctx.keep_pairs = config.pairs.keep_pairs;
    g::init_status(fn, policy.stream, st, ctx, info.groups_exact ? info.groups : 0, 0);
    const g::dev_layout L = g::launch_layout(fn, policy.stream, groups, rows, lb, st);
    g::launch_pair_plan(fn, policy.stream, L, info.groups, config.pairs, false, {}, pb, st);
    g::describe_inputs d;
    d.layout = L;
    g::launch_describe(fn, policy.stream, d, st);
    const g::device_status s = g::read_status(fn, policy.stream, st);
    if (s.error) g::raise(fn, s, false);
    pipeline_sizes sizes;
    sizes.rows = rows;
    sizes.groups = s.groups;
    sizes.pairs = s.pairs;
    const detail::shuffle_shape shape =
        detail::validate_shuffle_options(fn, sizes.pairs, config.shuffle);
    sizes.order = shape.rounds * shape.per_round;
    sizes.training_rows = 2 * sizes.order;
    return sizes;
  }
}

}  // namespace shuffle_r1
