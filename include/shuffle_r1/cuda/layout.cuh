/// @file cuda/layout.cuh
/// @brief Group layouts on the device: validation of ragged and indexed layouts, resolution of
/// per-row ids (groups_from_ids) and the per-group checks of PTS and the singleton policy.
/// Internal: include <shuffle_r1/cuda.cuh>.
#pragma once

#ifndef SHUFFLE_R1_CUDA_INCLUDED
#error "shuffle_r1/cuda headers are internal: include <shuffle_r1/cuda.cuh>"
#endif

#include <shuffle_r1/cuda/runtime.cuh>
#include <shuffle_r1/cuda/tuning.cuh>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/pairs.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <cstdint>
#include <limits>
#include <type_traits>

namespace shuffle_r1 {

namespace detail {
template <class L>
struct is_device_layout : std::false_type {};
template <>
struct is_device_layout<uniform_groups> : std::true_type {};
template <>
struct is_device_layout<device_ragged_groups> : std::true_type {};
template <>
struct is_device_layout<device_indexed_groups> : std::true_type {};
template <class I>
struct is_device_layout<id_groups<I, memory_space::device>> : std::true_type {};
}  // namespace detail

/// True for the layouts the CUDA backend accepts: uniform_groups (host scalars) and the layouts
/// whose memory is on the device (device_ragged_groups, device_indexed_groups,
/// device_id_groups<I>).
template <class L>
inline constexpr bool is_device_layout_v = detail::is_device_layout<std::remove_cv_t<L>>::value;

namespace detail::gpu {

/// Largest batch the CUDA backend accepts (rows are indexed with 32-bit integers internally).
inline constexpr std::int64_t max_rows = std::numeric_limits<std::int32_t>::max();

/// A layout as kernels see it: offsets (or a uniform size) and optional row indices.
struct dev_layout {
  std::int64_t groups = 0;                 ///< G, or an upper bound when groups_live is set
  std::int64_t uniform = -1;               ///< group size when uniform, else -1
  const std::int64_t* offsets = nullptr;   ///< G + 1 entries when not uniform
  const std::int64_t* rows = nullptr;      ///< B entries when indexed
  const long long* groups_live = nullptr;  ///< the device's G (id layouts), else nullptr

  /// G as known on the device.
  __device__ std::int64_t count() const {
    return groups_live ? static_cast<std::int64_t>(*groups_live) : groups;
  }
  SHUFFLE_R1_HD std::int64_t begin(std::int64_t g) const {
    return uniform >= 0 ? g * uniform : offsets[g];
  }
  SHUFFLE_R1_HD std::int64_t size(std::int64_t g) const {
    return uniform >= 0 ? uniform : offsets[g + 1] - offsets[g];
  }
  /// Batch row of position k of the concatenated groups.
  SHUFFLE_R1_HD std::int64_t row(std::int64_t k) const { return rows ? rows[k] : k; }
};

/// What the host knows about a layout before any launch.
struct layout_info {
  std::int64_t groups = 0;    ///< G, or B (an upper bound) for id layouts
  bool groups_exact = true;   ///< false for id layouts
  std::int64_t uniform = -1;  ///< group size of a uniform layout, else -1
  bool ids = false;
};

/// Host checks of a layout against B rows (those the CPU backend makes first, with its
/// messages) and what the host knows about it. @throws error.
inline layout_info host_layout_info(const char* fn, const uniform_groups& g, std::int64_t rows) {
  layout_scratch scratch;
  (void)validate_layout(fn, g, rows, scratch);
  layout_info info;
  info.groups = g.num_groups;
  info.uniform = g.group_size;
  return info;
}
inline layout_info host_layout_info(const char* fn, const device_ragged_groups& g,
                                    std::int64_t /*rows*/) {
  if (g.offsets.empty())
    fail(errc::invalid_layout, fn, "groups.offsets is empty; it needs G + 1 >= 1 entries");
  layout_info info;
  info.groups = static_cast<std::int64_t>(g.offsets.size()) - 1;
  return info;
}
inline layout_info host_layout_info(const char* fn, const device_indexed_groups& g,
                                    std::int64_t rows) {
  if (g.offsets.empty())
    fail(errc::invalid_layout, fn, "groups.offsets is empty; it needs G + 1 >= 1 entries");
  if (static_cast<std::int64_t>(g.rows.size()) != rows)
    fail(errc::size_mismatch, fn, "groups.rows has ", g.rows.size(), " entries, expected ", rows);
  layout_info info;
  info.groups = static_cast<std::int64_t>(g.offsets.size()) - 1;
  return info;
}
template <class I>
layout_info host_layout_info(const char* fn, const id_groups<I, memory_space::device>& g,
                             std::int64_t rows) {
  if (static_cast<std::int64_t>(g.ids.size()) != rows)
    fail(errc::size_mismatch, fn, "groups.ids has ", g.ids.size(), " entries, expected ", rows,
         " (one per row)");
  layout_info info;
  info.groups = rows;
  info.groups_exact = false;
  info.ids = true;
  return info;
}

/// The batch-size limit of the CUDA backend. @throws error(errc::out_of_range).
inline void check_rows_limit(const char* fn, std::int64_t rows) {
  if (rows > max_rows)
    fail(errc::out_of_range, fn, "the batch has ", rows,
         " rows; the CUDA backend supports at most ", max_rows);
}

// ---------------------------------------------------------------------------------------------
// Validation kernels (ragged and indexed layouts)
// ---------------------------------------------------------------------------------------------

/// offsets[0] == 0, non-decreasing, offsets[G] == B; one thread per entry.
template <int = 0>
__global__ void check_offsets_kernel(const std::int64_t* offsets, std::int64_t G, std::int64_t B,
                                     device_status* st) {
  for (std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; g <= G;
       g += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t o = offsets[g];
    if (g == 0 && o != 0) record(st, check_id::offsets, 0);
    if (g > 0 && o < offsets[g - 1])
      record(st, check_id::offsets, static_cast<unsigned long long>(g));
    if (g == G && o != B) record(st, check_id::offsets, static_cast<unsigned long long>(G + 1));
  }
}

/// first[r] = smallest position k with rows[k] == r (rows in range only).
template <int = 0>
__global__ void first_positions_kernel(const std::int64_t* rows, std::int64_t B, unsigned* first,
                                       device_status* st) {
  if (blocked(st, check_id::rows)) return;
  for (std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; k < B;
       k += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = rows[k];
    if (r >= 0 && r < B) atomicMin(first + r, static_cast<unsigned>(k));
  }
}

/// Group of position k: the last g with offsets[g] <= k (offsets validated, k < offsets[G]).
__device__ inline std::int64_t group_of(const std::int64_t* offsets, std::int64_t G,
                                        std::int64_t k) {
  std::int64_t lo = 0, hi = G;  // offsets[lo] <= k < offsets[hi]
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (offsets[mid] <= k)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/// Each position k: row in range, increasing inside its group, not seen at an earlier position.
template <int = 0>
__global__ void check_rows_kernel(const std::int64_t* offsets, std::int64_t G,
                                  const std::int64_t* rows, std::int64_t B, const unsigned* first,
                                  device_status* st) {
  if (blocked(st, check_id::rows)) return;
  for (std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; k < B;
       k += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = rows[k];
    const auto key = static_cast<unsigned long long>(4 * k);
    if (r < 0 || r >= B) {
      record(st, check_id::rows, key);
      continue;
    }
    const std::int64_t grp = group_of(offsets, G, k);
    if (k > offsets[grp] && r <= rows[k - 1]) {
      record(st, check_id::rows, key + 1);
      continue;
    }
    if (first[r] < static_cast<unsigned>(k)) record(st, check_id::rows, key + 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Per-group checks: singleton policy, odd groups and keep_pairs, pairs kept per group
// ---------------------------------------------------------------------------------------------

/// Pairs kept in a group with P available pairs: the same double arithmetic as
/// detail::pairs_kept (one correctly rounded product, then floor).
SHUFFLE_R1_HD inline std::int64_t pairs_kept_dev(std::int64_t P, double keep_ratio,
                                                 std::int64_t keep_pairs) {
  if (keep_pairs >= 0) return keep_pairs < P ? keep_pairs : P;
  return static_cast<std::int64_t>(floor(fp::mul(static_cast<double>(P), keep_ratio)));
}

/// What group_checks_kernel checks and computes.
struct group_check_params {
  bool singleton_error = false;  ///< record singleton groups (advantage stage)
  bool pairs = false;            ///< record PTS group errors and write kept pairs per group
  bool odd_error = true;         ///< odd_policy::error
  double keep_ratio = 0.5;
  std::int64_t keep_pairs = -1;
};

/// Per group g < G (device count): the singleton and PTS checks; kept[g] = M_g for g < G and 0
/// for G <= g <= bound (so that an exclusive scan over bound + 1 entries gives every pair
/// offset and K at index bound).
template <int = 0>
__global__ void group_checks_kernel(dev_layout L, std::int64_t bound, group_check_params p,
                                    std::int64_t* kept, device_status* st) {
  if (blocked(st, check_id::stats_size)) return;  // the layout itself is invalid
  const std::int64_t G = L.count();
  for (std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       g <= bound; g += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    if (g >= G) {
      if (kept) kept[g] = 0;
      continue;
    }
    const std::int64_t n = L.size(g);
    if (p.singleton_error && n == 1)
      record(st, check_id::singleton, static_cast<unsigned long long>(g));
    if (p.pairs) {
      if (n % 2 != 0 && p.odd_error)
        record(st, check_id::pair_group, static_cast<unsigned long long>(2 * g));
      const std::int64_t P = n / 2;
      if (p.keep_pairs > P)
        record(st, check_id::pair_group, static_cast<unsigned long long>(2 * g + 1));
      if (kept) kept[g] = pairs_kept_dev(P, p.keep_ratio, p.keep_pairs);
    }
  }
}

/// Id layouts: the statistics outputs must have G entries, G known on the device only. One
/// thread.
template <int = 0>
__global__ void stats_check_kernel(device_status* st) {
  if (blocked(st, check_id::stats_size)) return;
  for (int i = 0; i < 2; ++i)
    if (st->ctx.stats_cap[i] >= 0 && st->ctx.stats_cap[i] != st->groups)
      record(st, check_id::stats_size, static_cast<unsigned long long>(i));
}

// ---------------------------------------------------------------------------------------------
// Id resolution (groups by first appearance, rows in batch order), on the device
// ---------------------------------------------------------------------------------------------

/// Buffers of the id resolution.
struct ids_buffers {
  unsigned long long *keys = nullptr, *keys_sorted = nullptr;
  int *vals = nullptr, *vals_sorted = nullptr;
  int *head = nullptr, *seg = nullptr, *first = nullptr, *group_of_first = nullptr;
  int *seg_start = nullptr, *seg_end = nullptr, *seg_group = nullptr;
  std::int64_t* counts = nullptr;   ///< B + 1
  std::int64_t* offsets = nullptr;  ///< B + 1 (exclusive scan of counts)
  void* temp = nullptr;
  std::size_t temp_bytes = 0;
};

/// Lays out (or measures) the buffers of resolving B ids; `offsets` and `rows` of the result
/// are carved by the caller. @throws cuda_error (CUB size queries).
inline ids_buffers reserve_ids(const char* fn, carver& ws, std::int64_t B) {
  ids_buffers b;
  b.keys = ws.take<unsigned long long>(B);
  b.keys_sorted = ws.take<unsigned long long>(B);
  b.vals = ws.take<int>(B);
  b.vals_sorted = ws.take<int>(B);
  b.head = ws.take<int>(B);
  b.seg = ws.take<int>(B);
  b.first = ws.take<int>(B);
  b.group_of_first = ws.take<int>(B);
  b.seg_start = ws.take<int>(B);
  b.seg_end = ws.take<int>(B);
  b.seg_group = ws.take<int>(B);
  b.counts = ws.take<std::int64_t>(B + 1);
  b.offsets = ws.take<std::int64_t>(B + 1);
  const int n = static_cast<int>(B);
  std::size_t sort_bytes = 0, scan_bytes = 0, scan64_bytes = 0;
  SHUFFLE_R1_CUDA_CHECK(fn, cub::DeviceRadixSort::SortPairs(
                                nullptr, sort_bytes, static_cast<unsigned long long*>(nullptr),
                                static_cast<unsigned long long*>(nullptr),
                                static_cast<int*>(nullptr), static_cast<int*>(nullptr), n));
  SHUFFLE_R1_CUDA_CHECK(
      fn, cub::DeviceScan::InclusiveSum(nullptr, scan_bytes, static_cast<int*>(nullptr),
                                        static_cast<int*>(nullptr), n));
  SHUFFLE_R1_CUDA_CHECK(
      fn, cub::DeviceScan::ExclusiveSum(nullptr, scan64_bytes, static_cast<std::int64_t*>(nullptr),
                                        static_cast<std::int64_t*>(nullptr), n + 1));
  b.temp_bytes = sort_bytes;
  if (scan_bytes > b.temp_bytes) b.temp_bytes = scan_bytes;
  if (scan64_bytes > b.temp_bytes) b.temp_bytes = scan64_bytes;
  b.temp = ws.take_bytes(b.temp_bytes);
  return b;
}

/// keys[r] = the id's 64-bit pattern (as the CPU's static_cast<std::uint64_t>), vals[r] = r.
template <class I>
__global__ void ids_keys_kernel(const I* ids, std::int64_t B, unsigned long long* keys, int* vals) {
  for (std::int64_t r = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; r < B;
       r += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    keys[r] = static_cast<unsigned long long>(static_cast<std::uint64_t>(ids[r]));
    vals[r] = static_cast<int>(r);
  }
}

/// head[i]: position i of the sorted ids starts a run of one id; first[row]: the row is the first
/// (smallest) row of its id (the sort is stable, so it heads its run).
template <int = 0>
__global__ void ids_marks_kernel(const unsigned long long* keys, const int* vals, std::int64_t B,
                                 int* head, int* first) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < B;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int h = (i == 0 || keys[i] != keys[i - 1]) ? 1 : 0;
    head[i] = h;
    first[vals[i]] = h;
  }
}

/// For each run s (seg[i] = s + 1 on its positions): start, end, and its group, the rank of its
/// first row among all first rows (groups by first appearance). Stores G.
template <int = 0>
__global__ void ids_segments_kernel(const int* head, const int* seg, const int* vals,
                                    const int* group_of_first, std::int64_t B, int* seg_start,
                                    int* seg_end, int* seg_group, device_status* st) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < B;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int s = seg[i] - 1;
    if (head[i]) {
      seg_start[s] = static_cast<int>(i);
      seg_group[s] = group_of_first[vals[i]];
    }
    if (i == B - 1 || head[i + 1]) seg_end[s] = static_cast<int>(i + 1);
    if (i == B - 1) st->groups = seg[i];
  }
}

/// counts[g] = size of group g for g < G, 0 for G <= g <= B.
template <int = 0>
__global__ void ids_counts_kernel(const int* seg_start, const int* seg_end, const int* seg_group,
                                  std::int64_t B, const device_status* st, std::int64_t* counts) {
  const std::int64_t G = st->groups;
  for (std::int64_t t = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; t <= B;
       t += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    if (t < G)
      counts[seg_group[t]] = seg_end[t] - seg_start[t];
    else
      counts[t] = 0;
  }
}

/// rows[offsets[g] + (i - start)] = row of sorted position i; offsets_out[0..G] = offsets.
template <int = 0>
__global__ void ids_scatter_kernel(const int* vals, const int* seg, const int* seg_start,
                                   const int* seg_group, const std::int64_t* offsets,
                                   std::int64_t B, const device_status* st, std::int64_t* rows,
                                   std::int64_t* offsets_out) {
  const std::int64_t G = st->groups;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i <= B;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    if (i < B) {
      const int s = seg[i] - 1;
      rows[offsets[seg_group[s]] + (i - seg_start[s])] = vals[i];
    }
    if (offsets_out && i <= G) offsets_out[i] = offsets[i];
  }
}

/// Enqueues the id resolution of B >= 1 ids: offsets (G + 1 entries written to offsets_out, or
/// the whole scan left in b.offsets when offsets_out is null) and rows; st->groups = G.
/// @throws cuda_error.
template <class I>
void launch_ids(const char* fn, cudaStream_t stream, const I* ids, std::int64_t B,
                const ids_buffers& b, std::int64_t* rows, std::int64_t* offsets_out,
                device_status* st) {
  const int threads = tuning::block_threads;
  const unsigned grid = grid_for(fn, B + 1, threads);
  const int n = static_cast<int>(B);
  ids_keys_kernel<I><<<grid, threads, 0, stream>>>(ids, B, b.keys, b.vals);
  check_launch(fn);
  std::size_t bytes = b.temp_bytes;
  SHUFFLE_R1_CUDA_CHECK(
      fn, cub::DeviceRadixSort::SortPairs(b.temp, bytes, b.keys, b.keys_sorted, b.vals,
                                          b.vals_sorted, n, 0, 64, stream));
  ids_marks_kernel<>
      <<<grid, threads, 0, stream>>>(b.keys_sorted, b.vals_sorted, B, b.head, b.first);
  check_launch(fn);
  bytes = b.temp_bytes;
  SHUFFLE_R1_CUDA_CHECK(fn, cub::DeviceScan::InclusiveSum(b.temp, bytes, b.head, b.seg, n, stream));
  bytes = b.temp_bytes;
  SHUFFLE_R1_CUDA_CHECK(
      fn, cub::DeviceScan::ExclusiveSum(b.temp, bytes, b.first, b.group_of_first, n, stream));
  ids_segments_kernel<><<<grid, threads, 0, stream>>>(
      b.head, b.seg, b.vals_sorted, b.group_of_first, B, b.seg_start, b.seg_end, b.seg_group, st);
  check_launch(fn);
  ids_counts_kernel<>
      <<<grid, threads, 0, stream>>>(b.seg_start, b.seg_end, b.seg_group, B, st, b.counts);
  check_launch(fn);
  bytes = b.temp_bytes;
  SHUFFLE_R1_CUDA_CHECK(
      fn, cub::DeviceScan::ExclusiveSum(b.temp, bytes, b.counts, b.offsets, n + 1, stream));
  ids_scatter_kernel<><<<grid, threads, 0, stream>>>(b.vals_sorted, b.seg, b.seg_start, b.seg_group,
                                                     b.offsets, B, st, rows, offsets_out);
  check_launch(fn);
}

// ---------------------------------------------------------------------------------------------
// One entry point per layout: reserve buffers, enqueue validation or resolution
// ---------------------------------------------------------------------------------------------

/// Workspace of a layout's preparation.
struct layout_buffers {
  unsigned* first = nullptr;     ///< indexed: first position of each row
  ids_buffers ids;               ///< id layouts
  std::int64_t* rows = nullptr;  ///< id layouts: resolved rows (B)
};

inline layout_buffers reserve_layout(const char*, carver&, const uniform_groups&, std::int64_t) {
  return {};
}
inline layout_buffers reserve_layout(const char*, carver&, const device_ragged_groups&,
                                     std::int64_t) {
  return {};
}
inline layout_buffers reserve_layout(const char*, carver& ws, const device_indexed_groups&,
                                     std::int64_t B) {
  layout_buffers b;
  b.first = ws.take<unsigned>(B);
  return b;
}
template <class I>
layout_buffers reserve_layout(const char* fn, carver& ws, const id_groups<I, memory_space::device>&,
                              std::int64_t B) {
  layout_buffers b;
  if (B > 0) {
    b.ids = reserve_ids(fn, ws, B);
    b.rows = ws.take<std::int64_t>(B);
  }
  return b;
}

/// Enqueues the layout's validation (ragged, indexed) or resolution (ids) and returns the view
/// kernels use. @throws cuda_error.
inline dev_layout launch_layout(const char*, cudaStream_t, const uniform_groups& g, std::int64_t,
                                const layout_buffers&, device_status*) {
  dev_layout L;
  L.groups = g.num_groups;
  L.uniform = g.group_size;
  return L;
}
inline dev_layout launch_layout(const char* fn, cudaStream_t stream, const device_ragged_groups& g,
                                std::int64_t B, const layout_buffers&, device_status* st) {
  dev_layout L;
  L.groups = num_groups(g);
  L.offsets = g.offsets.data();
  const int threads = tuning::block_threads;
  check_offsets_kernel<>
      <<<grid_for(fn, L.groups + 1, threads), threads, 0, stream>>>(L.offsets, L.groups, B, st);
  check_launch(fn);
  return L;
}
inline dev_layout launch_layout(const char* fn, cudaStream_t stream, const device_indexed_groups& g,
                                std::int64_t B, const layout_buffers& b, device_status* st) {
  dev_layout L;
  L.groups = num_groups(g);
  L.offsets = g.offsets.data();
  L.rows = g.rows.data();
  const int threads = tuning::block_threads;
  check_offsets_kernel<>
      <<<grid_for(fn, L.groups + 1, threads), threads, 0, stream>>>(L.offsets, L.groups, B, st);
  check_launch(fn);
  if (B > 0) {
    SHUFFLE_R1_CUDA_CHECK(
        fn, cudaMemsetAsync(b.first, 0xFF, static_cast<std::size_t>(B) * sizeof(unsigned), stream));
    const unsigned grid = grid_for(fn, B, threads);
    first_positions_kernel<><<<grid, threads, 0, stream>>>(L.rows, B, b.first, st);
    check_launch(fn);
    check_rows_kernel<><<<grid, threads, 0, stream>>>(L.offsets, L.groups, L.rows, B, b.first, st);
    check_launch(fn);
  }
  return L;
}
template <class I>
dev_layout launch_layout(const char* fn, cudaStream_t stream,
                         const id_groups<I, memory_space::device>& g, std::int64_t B,
                         const layout_buffers& b, device_status* st) {
  dev_layout L;
  L.groups = B;
  L.groups_live = &st->groups;
  if (B > 0) {
    launch_ids(fn, stream, g.ids.data(), B, b.ids, b.rows, nullptr, st);
    L.offsets = b.ids.offsets;
    L.rows = b.rows;
  } else {
    L.offsets = b.ids.offsets;  // G = 0: never read
  }
  return L;
}

}  // namespace detail::gpu
}  // namespace shuffle_r1
