/// @file cuda/pairs.cuh
/// @brief CUDA implementation of select_pairs (PTS). Internal: include <shuffle_r1/cuda.cuh>.
///
/// Groups of at most 64 rows are ranked by one thread each with the CPU's rank counting
/// (rank_i = #{j : a_j > a_i} + #{j < i : a_j == a_i}, padded with -infinity): the ranks are the
/// same integers, computed from the same comparisons of the same T values. A row of rank k < M is
/// the hi member of pair k, a row of rank n - 1 - k the lo member, so no inverse permutation is
/// needed. Larger groups are sorted by two stable CUB radix sorts (by order-preserving integer
/// keys, descending, -0.0 mapped to +0.0; then by group): the same order as the CPU's std::sort
/// with the (advantage desc, position asc) comparison.
#pragma once

#ifndef SHUFFLE_R1_CUDA_INCLUDED
#error "shuffle_r1/cuda headers are internal: include <shuffle_r1/cuda.cuh>"
#endif

#include <shuffle_r1/cuda/layout.cuh>
#include <shuffle_r1/cuda/runtime.cuh>
#include <shuffle_r1/cuda/tuning.cuh>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/detail/int_math.hpp>
#include <shuffle_r1/detail/tree_sum.hpp>
#include <shuffle_r1/pairs.hpp>
#include <shuffle_r1/types.hpp>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace shuffle_r1::detail::gpu {

static_assert(tuning::thread_pair_rows == cpu::rank_sort_limit,
              "the thread kernel ranks the groups the CPU ranks");

/// Weight of a (hi, lo) pair: the operations of detail::pair_weight_of (double, rounded once).
template <class T>
SHUFFLE_R1_HD inline T pair_weight_dev(T hi, T lo, pair_weight w) {
  const double a = fabs(static_cast<double>(hi)), b = fabs(static_cast<double>(lo));
  switch (w) {
    case pair_weight::max:
      return static_cast<T>(a > b ? a : b);
    case pair_weight::mean:
      return static_cast<T>(fp::mul(fp::add(a, b), 0.5));
    case pair_weight::pos:
      return static_cast<T>(a);
    default:
      return static_cast<T>(fp::add(a, b));
  }
}

/// Per-call constants of the pair kernels.
struct pair_params {
  pair_weight weight = pair_weight::sum;
  double keep_ratio = 0.5;
  std::int64_t keep_pairs = -1;
  bool gate_all = true;  ///< skip on any recorded error (outputs are the caller's)
};

/// Pairs kept in a group of n rows.
__device__ inline std::int64_t kept_of(const pair_params& p, std::int64_t n) {
  return pairs_kept_dev(n / 2, p.keep_ratio, p.keep_pairs);
}

/// Emits the M kept pairs of a group whose n <= P advantages are a[0..n) (padded with
/// -infinity to P): ranks by counting, then every row writes itself where its rank puts it.
/// Host and device (tested on the host against the CPU backend).
template <class T, int P, class Index>
SHUFFLE_R1_HD inline void emit_group_pairs(const T (&a)[P], std::int64_t n, std::int64_t M,
                                           const dev_layout& L, std::int64_t begin,
                                           std::int64_t off, pair_weight w, Index* pairs,
                                           T* weights) {
  int r[P];
  SHUFFLE_R1_UNROLL
  for (int i = 0; i < P; ++i)
    r[i] = 0;
  SHUFFLE_R1_UNROLL
  for (int j = 0; j < P; ++j) {
    const T aj = a[j];
    SHUFFLE_R1_UNROLL
    for (int i = 0; i < P; ++i)
      r[i] += static_cast<int>(aj > a[i]) + ((aj == a[i]) & (j < i));
  }
  SHUFFLE_R1_UNROLL
  for (int i = 0; i < P; ++i) {
    if (i < n) {
      const auto row = static_cast<Index>(L.row(begin + i));
      const std::int64_t k = r[i];
      if (k < M) pairs[2 * (off + k)] = row;
      if (k >= n - M) pairs[2 * (off + n - 1 - k) + 1] = row;
    }
  }
  if (!weights) return;
  for (std::int64_t k = 0; k < M; ++k) {
    T hi = a[0], lo = a[0];
    SHUFFLE_R1_UNROLL
    for (int i = 0; i < P; ++i) {
      if (r[i] == k) hi = a[i];
      if (r[i] == n - 1 - k) lo = a[i];
    }
    weights[off + k] = pair_weight_dev(hi, lo, w);
  }
}

/// Loads group g's advantages padded with -infinity and emits its pairs.
template <class T, int P, class Index>
__device__ inline void pairs_of_group(const T* adv, const dev_layout& L, std::int64_t begin,
                                      std::int64_t n, std::int64_t M, std::int64_t off,
                                      pair_weight w, Index* pairs, T* weights) {
  T a[P];
  SHUFFLE_R1_UNROLL
  for (int k = 0; k < P; ++k)
    a[k] = k < n ? adv[L.row(begin + k)] : static_cast<T>(-HUGE_VAL);
  emit_group_pairs<T, P, Index>(a, n, M, L, begin, off, w, pairs, weights);
}

/// Whether a pair kernel must skip its work.
__device__ inline bool pairs_gated(const pair_params& p, const device_status* st) {
  return p.gate_all ? failed(st) : blocked(st, check_id::stats_size);
}

/// One thread per group of at most 64 rows with pairs to keep. `pair_off` (null for uniform
/// layouts, whose groups all keep `uniform_kept` pairs) gives each group's first pair.
template <class T, int P, class Index>
__global__ void __launch_bounds__(tuning::block_threads)
    pairs_small_kernel(const T* adv, dev_layout L, pair_params p, std::int64_t uniform_kept,
                       const std::int64_t* pair_off, Index* pairs, T* weights, device_status* st) {
  if (pairs_gated(p, st)) return;
  const std::int64_t G = L.count();
  for (std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; g < G;
       g += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t n = L.size(g);
    if (n > tuning::thread_pair_rows) continue;
    const std::int64_t M = pair_off ? pair_off[g + 1] - pair_off[g] : uniform_kept;
    if (M <= 0) continue;
    const std::int64_t off = pair_off ? pair_off[g] : g * uniform_kept;
    const std::int64_t begin = L.begin(g);
    if constexpr (P > 0) {
      pairs_of_group<T, P, Index>(adv, L, begin, n, M, off, p.weight, pairs, weights);
    } else {
      switch (padded_width(n)) {
        case 1:
        case 2:
          pairs_of_group<T, 2, Index>(adv, L, begin, n, M, off, p.weight, pairs, weights);
          break;
        case 4:
          pairs_of_group<T, 4, Index>(adv, L, begin, n, M, off, p.weight, pairs, weights);
          break;
        case 8:
          pairs_of_group<T, 8, Index>(adv, L, begin, n, M, off, p.weight, pairs, weights);
          break;
        case 16:
          pairs_of_group<T, 16, Index>(adv, L, begin, n, M, off, p.weight, pairs, weights);
          break;
        case 32:
          pairs_of_group<T, 32, Index>(adv, L, begin, n, M, off, p.weight, pairs, weights);
          break;
        default:
          pairs_of_group<T, 64, Index>(adv, L, begin, n, M, off, p.weight, pairs, weights);
          break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Groups of more than 64 rows: two stable CUB radix sorts
// ---------------------------------------------------------------------------------------------

/// Unsigned key type of T's width.
template <class T>
using sort_key_t = std::conditional_t<sizeof(T) == 4, unsigned, unsigned long long>;

/// An unsigned integer ordered like the (finite) value, with -0.0 equal to +0.0.
template <class T>
SHUFFLE_R1_HD inline sort_key_t<T> order_key(T v) {
  using K = sort_key_t<T>;
  constexpr K sign = K{1} << (8 * sizeof(T) - 1);
  K b;
  if constexpr (sizeof(T) == 4) {
#if SHUFFLE_R1_DEVICE_PASS
    b = static_cast<K>(__float_as_uint(static_cast<float>(v)));
#else
    std::memcpy(&b, &v, sizeof b);
#endif
  } else {
    b = static_cast<K>(bits_of(static_cast<double>(v)));
  }
  if (b == sign) b = 0;  // -0.0 sorts as +0.0
  return (b & sign) ? static_cast<K>(~b) : static_cast<K>(b | sign);
}

/// Buffers of the large-group path: two stable radix sorts over every position of the batch,
/// first by advantage (descending), then by group (ascending); stability leaves each group's
/// positions at the group's own range, ordered by (advantage desc, position asc). (CUB's
/// segmented sort would read group sizes back to the host and synchronize the stream, which a
/// captured pipeline must not do; DeviceRadixSort only enqueues device work.)
template <class T>
struct large_pair_buffers {
  sort_key_t<T>* keys = nullptr;
  sort_key_t<T>* keys_sorted = nullptr;
  int* positions = nullptr;
  int* by_value = nullptr;  ///< positions sorted by advantage
  unsigned* groups = nullptr;
  unsigned* groups_sorted = nullptr;
  int* sorted = nullptr;  ///< positions sorted by (group, advantage desc, position)
  int group_bits = 1;
  void* temp = nullptr;
  std::size_t temp_bytes = 0;
};

/// Lays out (or measures) the large-group path for B rows in at most `groups` groups.
/// @throws cuda_error (CUB size queries).
template <class T>
large_pair_buffers<T> reserve_large_pairs(const char* fn, carver& ws, std::int64_t B,
                                          std::int64_t groups) {
  large_pair_buffers<T> b;
  using K = sort_key_t<T>;
  b.keys = ws.take<K>(B);
  b.keys_sorted = ws.take<K>(B);
  b.positions = ws.take<int>(B);
  b.by_value = ws.take<int>(B);
  b.groups = ws.take<unsigned>(B);
  b.groups_sorted = ws.take<unsigned>(B);
  b.sorted = ws.take<int>(B);
  b.group_bits = ceil_log2(static_cast<std::uint64_t>(groups) + 1);
  if (b.group_bits < 1) b.group_bits = 1;
  std::size_t by_value_bytes = 0, by_group_bytes = 0;
  SHUFFLE_R1_CUDA_CHECK(
      fn, cub::DeviceRadixSort::SortPairsDescending(
              nullptr, by_value_bytes, static_cast<const K*>(nullptr), static_cast<K*>(nullptr),
              static_cast<const int*>(nullptr), static_cast<int*>(nullptr), static_cast<int>(B)));
  SHUFFLE_R1_CUDA_CHECK(fn, cub::DeviceRadixSort::SortPairs(
                                nullptr, by_group_bytes, static_cast<const unsigned*>(nullptr),
                                static_cast<unsigned*>(nullptr), static_cast<const int*>(nullptr),
                                static_cast<int*>(nullptr), static_cast<int>(B), 0, b.group_bits));
  b.temp_bytes = by_value_bytes > by_group_bytes ? by_value_bytes : by_group_bytes;
  b.temp = ws.take_bytes(b.temp_bytes);
  return b;
}

/// keys[k] = order_key(advantage of position k), positions[k] = k, for every position.
template <class T>
__global__ void __launch_bounds__(tuning::block_threads)
    large_keys_kernel(const T* adv, dev_layout L, pair_params p, std::int64_t B,
                      large_pair_buffers<T> b, device_status* st) {
  if (pairs_gated(p, st)) return;
  for (std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; k < B;
       k += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    b.keys[k] = order_key(adv[L.row(k)]);
    b.positions[k] = static_cast<int>(k);
  }
}

/// groups[i] = the group of position by_value[i] (for the second, by-group, sort).
template <class T>
__global__ void __launch_bounds__(tuning::block_threads)
    large_groups_kernel(dev_layout L, pair_params p, std::int64_t B, large_pair_buffers<T> b,
                        device_status* st) {
  if (pairs_gated(p, st)) return;
  const std::int64_t G = L.count();
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < B;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t k = b.by_value[i];
    b.groups[i] = static_cast<unsigned>(L.uniform > 0 ? k / L.uniform : group_of(L.offsets, G, k));
  }
}

/// One warp per large group: pair k is (sorted position k, sorted position n - 1 - k) of the
/// group's range of `sorted`.
template <class T, class Index>
__global__ void __launch_bounds__(tuning::block_threads)
    large_emit_kernel(const T* adv, dev_layout L, pair_params p, std::int64_t uniform_kept,
                      const std::int64_t* pair_off, const int* sorted, Index* pairs, T* weights,
                      device_status* st) {
  if (pairs_gated(p, st)) return;
  const std::int64_t G = L.count();
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
  for (std::int64_t g = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
       g < G; g += warps) {
    const std::int64_t n = L.size(g);
    const std::int64_t M = pair_off ? pair_off[g + 1] - pair_off[g] : uniform_kept;
    if (n <= tuning::thread_pair_rows || M <= 0) continue;
    const std::int64_t begin = L.begin(g);
    const std::int64_t off = pair_off ? pair_off[g] : g * uniform_kept;
    for (std::int64_t k = lane; k < M; k += 32) {
      const std::int64_t hi = L.row(sorted[begin + k]);
      const std::int64_t lo = L.row(sorted[begin + n - 1 - k]);
      pairs[2 * (off + k)] = static_cast<Index>(hi);
      pairs[2 * (off + k) + 1] = static_cast<Index>(lo);
      if (weights) weights[off + k] = pair_weight_dev(adv[hi], adv[lo], p.weight);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The pair plan of non-uniform layouts: kept pairs per group, their offsets, K
// ---------------------------------------------------------------------------------------------

/// Buffers of the pair plan (non-uniform layouts).
struct pair_plan_buffers {
  std::int64_t* kept = nullptr;  ///< bound + 1
  std::int64_t* off = nullptr;   ///< bound + 1: exclusive scan of kept
  void* temp = nullptr;
  std::size_t temp_bytes = 0;
};

/// Lays out (or measures) the pair plan for up to `bound` groups. @throws cuda_error.
inline pair_plan_buffers reserve_pair_plan(const char* fn, carver& ws, std::int64_t bound) {
  pair_plan_buffers b;
  b.kept = ws.take<std::int64_t>(bound + 1);
  b.off = ws.take<std::int64_t>(bound + 1);
  SHUFFLE_R1_CUDA_CHECK(fn, cub::DeviceScan::ExclusiveSum(
                                nullptr, b.temp_bytes, static_cast<std::int64_t*>(nullptr),
                                static_cast<std::int64_t*>(nullptr), static_cast<int>(bound + 1)));
  b.temp = ws.take_bytes(b.temp_bytes);
  return b;
}

/// Which checks pairs_total_kernel makes once K is known on the device.
struct pairs_total_params {
  bool shuffle = false;  ///< pipeline: the shuffle shape, order and rows capacities
  std::int64_t rounds = 0, per_round = -1;
};

/// K = off[bound]; the checks that need K (CPU order: shuffle shape, then output sizes).
template <int = 0>
__global__ void pairs_total_kernel(const std::int64_t* off, std::int64_t bound,
                                   pairs_total_params p, device_status* st) {
  if (blocked(st, check_id::shuffle_shape)) return;
  const std::int64_t K = off[bound];
  st->pairs = K;
  const std::int64_t* cap = st->ctx.cap;
  std::int64_t order = 0;
  if (p.shuffle) {
    const std::int64_t T = p.per_round < 0 ? K / p.rounds : p.per_round;
    if (T > K) {
      record(st, check_id::shuffle_shape, 0);
      return;
    }
    if (T > 0 && p.rounds > (std::int64_t{1} << 62) / T) {
      record(st, check_id::shuffle_shape, 1);
      return;
    }
    order = p.rounds * T;
  }
  if (cap[slot_pairs] >= 0 && cap[slot_pairs] < 2 * K)
    record(st, check_id::output_size, slot_pairs);
  if (cap[slot_weights] >= 0 && cap[slot_weights] < K)
    record(st, check_id::output_size, slot_weights);
  if (p.shuffle) {
    if (cap[slot_order] >= 0 && cap[slot_order] < order)
      record(st, check_id::output_size, slot_order);
    if (cap[slot_rows] >= 0 && cap[slot_rows] < 2 * order)
      record(st, check_id::output_size, slot_rows);
  }
}

/// Enqueues the group checks, the scan of kept pairs and the K-dependent checks (non-uniform
/// layouts). `singleton_error` adds the singleton check of the advantage stage.
/// @throws cuda_error.
inline void launch_pair_plan(const char* fn, cudaStream_t stream, const dev_layout& L,
                             std::int64_t bound, const pair_options& o, bool singleton_error,
                             const pairs_total_params& tp, const pair_plan_buffers& b,
                             device_status* st) {
  const int threads = tuning::block_threads;
  group_check_params gp;
  gp.singleton_error = singleton_error;
  gp.pairs = true;
  gp.odd_error = o.odd == odd_policy::error;
  gp.keep_ratio = o.keep_ratio;
  gp.keep_pairs = o.keep_pairs;
  group_checks_kernel<>
      <<<grid_for(fn, bound + 1, threads), threads, 0, stream>>>(L, bound, gp, b.kept, st);
  check_launch(fn);
  std::size_t bytes = b.temp_bytes;
  SHUFFLE_R1_CUDA_CHECK(fn, cub::DeviceScan::ExclusiveSum(b.temp, bytes, b.kept, b.off,
                                                          static_cast<int>(bound + 1), stream));
  pairs_total_kernel<><<<1, 1, 0, stream>>>(b.off, bound, tp, st);
  check_launch(fn);
}

/// Enqueues the pair kernels. `pair_off` is null for uniform layouts (every group keeps
/// `uniform_kept` pairs). `large` holds the large-group path's buffers (unused when the host
/// knows every group has at most 64 rows). @throws cuda_error.
template <class T, class Index>
void launch_pairs(const char* fn, cudaStream_t stream, const T* adv, const dev_layout& L,
                  const layout_info& info, std::int64_t B, const pair_params& p,
                  std::int64_t uniform_kept, const std::int64_t* pair_off,
                  const large_pair_buffers<T>& large, Index* pairs, T* weights, device_status* st) {
  const int threads = tuning::block_threads;
  if (info.groups == 0) return;
  if (info.uniform >= 0 && uniform_kept == 0) return;
  const bool small = info.uniform < 0 || info.uniform <= tuning::thread_pair_rows;
  const bool big = info.uniform < 0 || info.uniform > tuning::thread_pair_rows;
  if (small) {
    const unsigned grid = grid_for(fn, info.groups, threads);
    switch (info.uniform < 0 ? 0 : padded_width(info.uniform)) {
      case 0:
        pairs_small_kernel<T, 0, Index>
            <<<grid, threads, 0, stream>>>(adv, L, p, uniform_kept, pair_off, pairs, weights, st);
        break;
      case 1:
      case 2:
        pairs_small_kernel<T, 2, Index>
            <<<grid, threads, 0, stream>>>(adv, L, p, uniform_kept, pair_off, pairs, weights, st);
        break;
      case 4:
        pairs_small_kernel<T, 4, Index>
            <<<grid, threads, 0, stream>>>(adv, L, p, uniform_kept, pair_off, pairs, weights, st);
        break;
      case 8:
        pairs_small_kernel<T, 8, Index>
            <<<grid, threads, 0, stream>>>(adv, L, p, uniform_kept, pair_off, pairs, weights, st);
        break;
      case 16:
        pairs_small_kernel<T, 16, Index>
            <<<grid, threads, 0, stream>>>(adv, L, p, uniform_kept, pair_off, pairs, weights, st);
        break;
      case 32:
        pairs_small_kernel<T, 32, Index>
            <<<grid, threads, 0, stream>>>(adv, L, p, uniform_kept, pair_off, pairs, weights, st);
        break;
      default:
        pairs_small_kernel<T, 64, Index>
            <<<grid, threads, 0, stream>>>(adv, L, p, uniform_kept, pair_off, pairs, weights, st);
        break;
    }
    check_launch(fn);
  }
  if (big && B > 0) {
    const unsigned grid = grid_for(fn, B, threads);
    large_keys_kernel<T><<<grid, threads, 0, stream>>>(adv, L, p, B, large, st);
    check_launch(fn);
    std::size_t bytes = large.temp_bytes;
    SHUFFLE_R1_CUDA_CHECK(
        fn, cub::DeviceRadixSort::SortPairsDescending(
                large.temp, bytes, large.keys, large.keys_sorted, large.positions, large.by_value,
                static_cast<int>(B), 0, static_cast<int>(8 * sizeof(sort_key_t<T>)), stream));
    large_groups_kernel<T><<<grid, threads, 0, stream>>>(L, p, B, large, st);
    check_launch(fn);
    bytes = large.temp_bytes;
    SHUFFLE_R1_CUDA_CHECK(
        fn, cub::DeviceRadixSort::SortPairs(large.temp, bytes, large.groups, large.groups_sorted,
                                            large.by_value, large.sorted, static_cast<int>(B), 0,
                                            large.group_bits, stream));
    large_emit_kernel<T, Index><<<grid_for(fn, info.groups * 32, threads), threads, 0, stream>>>(
        adv, L, p, uniform_kept, pair_off, large.sorted, pairs, weights, st);
    check_launch(fn);
  }
}

/// Records the first non-finite value of v[0..n) under `c`.
template <class T>
__global__ void __launch_bounds__(tuning::block_threads)
    check_finite_kernel(const T* v, std::int64_t n, check_id c, device_status* st) {
  if (blocked(st, c)) return;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    if (!is_finite(v[i])) record(st, c, static_cast<unsigned long long>(i));
}

}  // namespace shuffle_r1::detail::gpu
