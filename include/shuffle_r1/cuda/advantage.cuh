/// @file cuda/advantage.cuh
/// @brief CUDA implementation of normalize_advantages. Internal: include <shuffle_r1/cuda.cuh>.
///
/// Groups of at most 32 rows are normalized by one thread each, with exactly the operations of
/// the CPU's normalize_small<P> (the same tree_sum<P>, scale and variance helpers from detail/,
/// every operation an fp:: intrinsic that nvcc never fuses). Larger groups take one warp each:
/// the warp streams the group in chunks of 32 and reduces them in the canonical order of
/// detail/tree_sum.hpp (a chunk is a warp-shuffle tree; chunk sums are pushed through a stack of
/// 32-entry levels held in registers), so its sums are the CPU's canonical_sum bit for bit.
#pragma once

#ifndef SHUFFLE_R1_CUDA_INCLUDED
#error "shuffle_r1/cuda headers are internal: include <shuffle_r1/cuda.cuh>"
#endif

#include <shuffle_r1/advantage.hpp>
#include <shuffle_r1/cuda/layout.cuh>
#include <shuffle_r1/cuda/runtime.cuh>
#include <shuffle_r1/cuda/tuning.cuh>
#include <shuffle_r1/detail/advantage_math.hpp>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/detail/tree_sum.hpp>
#include <shuffle_r1/types.hpp>

#include <cstdint>
#include <limits>
#include <type_traits>

namespace shuffle_r1 {

/// Optional per-group statistics outputs of the CUDA overload (empty spans are not written).
struct device_group_stats_out {
  device_span<double> mean;  ///< G entries: mean reward of the group (0 for an empty group)
  device_span<double> std;   ///< G entries: std with the configured ddof
};

namespace detail::gpu {

static_assert(tuning::thread_group_rows == sum_chunk, "one thread normalizes one canonical chunk");

/// Per-call constants of the normalization kernels.
struct norm_params {
  estimator kind = estimator::grpo;
  int ddof = 1;
  double eps = 1e-6;
  singleton_policy singleton = singleton_policy::error;
  bool check_limit = false;  ///< mean_only / rloo: |reward| <= limit
  double limit = 0.0;
  bool validate = false;  ///< record non-finite and too-large rewards inline (pipeline)
  bool gate_all = true;   ///< skip on any recorded error (outputs are the caller's)
};

/// The batch_std constants, read from the status once the pre-pass has run.
struct batch_constants {
  pow2_scale global;
  double den = 0.0;
};

__device__ inline batch_constants load_batch(const norm_params& p, const device_status* st) {
  batch_constants b;
  if (p.kind == estimator::batch_std) {
    b.global = scale_for(double_of(st->max_abs));
    b.den = st->batch_den;
  }
  return b;
}

/// Records a non-finite or too-large reward (pipeline: checked while normalizing).
template <class T>
__device__ inline void validate_reward(const norm_params& p, T v, std::int64_t row,
                                       device_status* st) {
  if (!is_finite(v)) {
    record(st, check_id::reward_nonfinite, static_cast<unsigned long long>(row));
  } else if (p.check_limit && fabs(static_cast<double>(v)) > p.limit) {
    record(st, check_id::reward_limit, static_cast<unsigned long long>(row));
  }
}

/// The advantage of a singleton group's row (CPU: singleton_verl, or 0).
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double singleton_advantage(const norm_params& p,
                                                                     const batch_constants& b,
                                                                     double x) {
  SHUFFLE_R1_STRICT_FP_BODY
  if (p.singleton != singleton_policy::verl) return 0.0;
  switch (p.kind) {
    case estimator::grpo:
      return fp::div(x, fp::add(1.0, p.eps));
    case estimator::batch_std:
      return batch_singleton(x, b.global, b.den, p.eps);
    default:
      return x;
  }
}

/// Result of one group.
struct group_stats {
  double mean = 0.0, std = 0.0;
  bool zero_variance = false;
};

/// Normalizes 2 <= n <= P values in x[0..P) (zero-padded) into a[0..P): the operations of the
/// CPU's normalize_small<P>, in the same order. Host and device (the CUDA tests run it on the
/// host against the CPU backend even without a GPU).
template <int P>
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline group_stats normalize_values(double (&x)[P],
                                                                       std::int64_t n,
                                                                       const norm_params& p,
                                                                       const batch_constants& b,
                                                                       double (&a)[P]) {
  SHUFFLE_R1_STRICT_FP_BODY
  group_stats r;
  double mn = x[0], mx = x[0];
  SHUFFLE_R1_UNROLL
  for (int i = 1; i < P; ++i) {
    if (i < n) {
      mn = x[i] < mn ? x[i] : mn;
      mx = x[i] > mx ? x[i] : mx;
    }
  }
  if (mn == mx) {
    SHUFFLE_R1_UNROLL
    for (int i = 0; i < P; ++i)
      a[i] = 0.0;
    r.mean = mn;
    r.zero_variance = true;
    return r;
  }
  const double amn = fabs(mn), amx = fabs(mx);
  const pow2_scale s = p.kind == estimator::batch_std ? b.global : scale_for(amn < amx ? amx : amn);
  if (s.active) {
    SHUFFLE_R1_UNROLL
    for (int i = 0; i < P; ++i)
      if (i < n) x[i] = scale_apply(s, x[i]);
  }
  const double mu = fp::div(tree_sum<P>(x), static_cast<double>(n));
  double d[P], q[P];
  SHUFFLE_R1_UNROLL
  for (int i = 0; i < P; ++i)
    d[i] = i < n ? fp::sub(x[i], mu) : 0.0;
  SHUFFLE_R1_UNROLL
  for (int i = 0; i < P; ++i)
    q[i] = fp::mul(d[i], d[i]);
  const double var = variance_from_sums(tree_sum<P>(d), tree_sum<P>(q), n, p.ddof);
  const double sigma = fp::sqrt(var);
  r.mean = scale_undo(s, mu);
  r.std = scale_undo(s, sigma);
  if (p.kind == estimator::grpo || p.kind == estimator::batch_std) {
    const double den = p.kind == estimator::grpo ? fp::add(sigma, scale_apply(s, p.eps)) : b.den;
    const double inv = den > 0.0 ? fp::div(1.0, den) : 0.0;
    SHUFFLE_R1_UNROLL
    for (int i = 0; i < P; ++i)
      a[i] = fp::mul(d[i], inv);
  } else {
    const double f = p.kind == estimator::rloo ? rloo_factor(n) : 1.0;
    SHUFFLE_R1_UNROLL
    for (int i = 0; i < P; ++i)
      a[i] = fp::mul(scale_undo(s, d[i]), f);
  }
  return r;
}

/// Counts of one thread, reduced per block before they reach the status.
struct norm_counts {
  unsigned long long zero_variance = 0, singleton = 0, empty = 0;
};

__device__ inline void flush_counts(const norm_counts& c, device_status* st) {
  const unsigned long long zv = block_reduce<0>(c.zero_variance);
  const unsigned long long single = block_reduce<0>(c.singleton);
  const unsigned long long empty = block_reduce<0>(c.empty);
  if (threadIdx.x == 0) {
    if (zv) atomicAdd(&st->zero_variance, zv);
    if (single) atomicAdd(&st->singleton, single);
    if (empty) atomicAdd(&st->empty, empty);
  }
}

/// Normalizes group g (n <= P rows starting at position begin) in one thread; `vals` receives the
/// advantages rounded to T (in group order) for a fused PTS stage.
template <class T, int P>
__device__ inline void normalize_group(const T* x, const dev_layout& L, std::int64_t g,
                                       std::int64_t begin, std::int64_t n, const norm_params& p,
                                       const batch_constants& b, T* out, double* mean_out,
                                       double* std_out, norm_counts& c, device_status* st,
                                       T (&vals)[P]) {
  // A full contiguous group at a 16-byte boundary moves in 16-byte vectors (same values).
  constexpr int W = 16 / static_cast<int>(sizeof(T));
  using vec_t = std::conditional_t<sizeof(T) == 4, float4, double2>;
  const bool vector_io = P % W == 0 && L.rows == nullptr && n == P &&
                         reinterpret_cast<std::uintptr_t>(x + begin) % 16 == 0 &&
                         reinterpret_cast<std::uintptr_t>(out + begin) % 16 == 0;
  T raw[P];
  if constexpr (P % W == 0) {
    if (vector_io) {
      const vec_t* src = reinterpret_cast<const vec_t*>(x + begin);
      SHUFFLE_R1_UNROLL
      for (int q = 0; q < P / W; ++q) {
        const vec_t w = src[q];
        memcpy(raw + q * W, &w, sizeof w);
      }
    }
  }
  double v[P];
  SHUFFLE_R1_UNROLL
  for (int k = 0; k < P; ++k) {
    v[k] = 0.0;
    if (k < n) {
      const std::int64_t row = L.row(begin + k);
      const T t = vector_io ? raw[k] : x[row];
      if (p.validate) validate_reward(p, t, row, st);
      v[k] = static_cast<double>(t);
    }
  }
  group_stats r;
  if (n == 0) {
    ++c.empty;
  } else if (n == 1) {
    ++c.singleton;
    r.mean = v[0];
    vals[0] = static_cast<T>(singleton_advantage(p, b, v[0]));
    out[L.row(begin)] = vals[0];
  } else {
    double a[P];
    r = normalize_values<P>(v, n, p, b, a);
    c.zero_variance += r.zero_variance;
    SHUFFLE_R1_UNROLL
    for (int k = 0; k < P; ++k)
      vals[k] = static_cast<T>(a[k]);
    bool stored = false;
    if constexpr (P % W == 0) {
      if (vector_io) {
        vec_t* dst = reinterpret_cast<vec_t*>(out + begin);
        SHUFFLE_R1_UNROLL
        for (int q = 0; q < P / W; ++q) {
          vec_t w;
          memcpy(&w, vals + q * W, sizeof w);
          dst[q] = w;
        }
        stored = true;
      }
    }
    if (!stored) {
      SHUFFLE_R1_UNROLL
      for (int k = 0; k < P; ++k)
        if (k < n) out[L.row(begin + k)] = vals[k];
    }
  }
  if (mean_out) mean_out[g] = r.mean;
  if (std_out) std_out[g] = r.std;
}

/// Runtime dispatch on the padded width of a group of n <= 32 rows.
template <class T>
__device__ inline void normalize_group_any(const T* x, const dev_layout& L, std::int64_t g,
                                           std::int64_t begin, std::int64_t n, const norm_params& p,
                                           const batch_constants& b, T* out, double* mean_out,
                                           double* std_out, norm_counts& c, device_status* st) {
  switch (padded_width(n)) {
    case 1:
    case 2: {
      T vals[2];
      normalize_group<T, 2>(x, L, g, begin, n, p, b, out, mean_out, std_out, c, st, vals);
      break;
    }
    case 4: {
      T vals[4];
      normalize_group<T, 4>(x, L, g, begin, n, p, b, out, mean_out, std_out, c, st, vals);
      break;
    }
    case 8: {
      T vals[8];
      normalize_group<T, 8>(x, L, g, begin, n, p, b, out, mean_out, std_out, c, st, vals);
      break;
    }
    case 16: {
      T vals[16];
      normalize_group<T, 16>(x, L, g, begin, n, p, b, out, mean_out, std_out, c, st, vals);
      break;
    }
    default: {
      T vals[32];
      normalize_group<T, 32>(x, L, g, begin, n, p, b, out, mean_out, std_out, c, st, vals);
      break;
    }
  }
}

/// Whether a normalization kernel must skip its work.
__device__ inline bool norm_gated(const norm_params& p, const device_status* st) {
  return p.gate_all ? failed(st) : blocked(st, check_id::reward_nonfinite);
}

/// One thread per group of at most 32 rows (larger groups are skipped). P > 0: every group has
/// padded width P (uniform layouts); P == 0: dispatch per group.
template <class T, int P>
__global__ void __launch_bounds__(tuning::block_threads)
    normalize_small_kernel(const T* x, dev_layout L, norm_params p, T* out, double* mean_out,
                           double* std_out, device_status* st) {
  if (norm_gated(p, st)) return;
  const batch_constants b = load_batch(p, st);
  const std::int64_t G = L.count();
  norm_counts c;
  for (std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; g < G;
       g += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t n = L.size(g);
    if (n > tuning::thread_group_rows) continue;
    const std::int64_t begin = L.begin(g);
    if constexpr (P > 0) {
      T vals[P];
      normalize_group<T, P>(x, L, g, begin, n, p, b, out, mean_out, std_out, c, st, vals);
    } else {
      normalize_group_any<T>(x, L, g, begin, n, p, b, out, mean_out, std_out, c, st);
    }
  }
  flush_counts(c, st);
}

// ---------------------------------------------------------------------------------------------
// One warp per group of more than 32 rows
// ---------------------------------------------------------------------------------------------

/// Stride-halving sum of lanes [0, P) (P a power of two <= 32); the result is in lane 0. The
/// same additions as tree_sum<P>: lane i adds lane i + h for h = P/2, ..., 1.
__device__ inline double warp_tree(double v, int P) {
  for (int h = P / 2; h >= 1; h >>= 1)
    v = fp::add(v, __shfl_down_sync(0xFFFFFFFFu, v, h));
  return v;
}

/// The canonical sum (detail/tree_sum.hpp) of n > 32 values fed by a full warp one chunk of 32
/// at a time, in order. Level L >= 1 holds the sums of level L - 1's chunks, lane i holding entry
/// i of the current 32-entry chunk; a chunk is reduced (width 32, zero-padded) when full or when
/// its level is complete, except at the top level (at most 32 entries), reduced at the end with
/// the padded width bit_ceil(entries), exactly as canonical_sum recurses.
struct warp_sum_stream {
  static constexpr int levels = 7;  // n < 2^31 needs at most 6 levels above the values
  double buf[levels];
  int count[levels];
  int size[levels];
  int top;

  __device__ explicit warp_sum_stream(std::int64_t n) {
    top = 0;
    std::int64_t m = n;
    SHUFFLE_R1_UNROLL
    for (int L = 0; L < levels; ++L) {
      buf[L] = 0.0;
      count[L] = 0;
      size[L] = 0;
      if (L > 0 && top == 0) {
        m = (m + 31) / 32;
        size[L] = static_cast<int>(m);
        if (m <= 32) top = L;
      }
    }
  }

  /// Adds the chunk whose value in this lane is v (0 past the end).
  __device__ void feed(double v) {
    const int lane = static_cast<int>(threadIdx.x & 31u);
    double s = __shfl_sync(0xFFFFFFFFu, warp_tree(v, 32), 0);
    bool carry = true;
    SHUFFLE_R1_UNROLL
    for (int L = 1; L < levels; ++L) {
      if (carry) {
        if (lane == (count[L] & 31)) buf[L] = s;
        ++count[L];
        carry = false;
        if (L != top && ((count[L] & 31) == 0 || count[L] == size[L])) {
          s = __shfl_sync(0xFFFFFFFFu, warp_tree(buf[L], 32), 0);
          buf[L] = 0.0;
          carry = true;
        }
      }
    }
  }

  /// The sum, in every lane (after every chunk was fed).
  __device__ double result() const {
    double r = 0.0;
    SHUFFLE_R1_UNROLL
    for (int L = 1; L < levels; ++L)
      if (L == top) r = warp_tree(buf[L], padded_width(size[L]));
    return __shfl_sync(0xFFFFFFFFu, r, 0);
  }
};

/// One warp per group of more than 32 rows (smaller groups are skipped): the operations of the
/// CPU's normalize_large.
template <class T>
__global__ void __launch_bounds__(tuning::block_threads)
    normalize_large_kernel(const T* x, dev_layout L, norm_params p, T* out, double* mean_out,
                           double* std_out, device_status* st) {
  if (norm_gated(p, st)) return;
  const batch_constants b = load_batch(p, st);
  const std::int64_t G = L.count();
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
  norm_counts c;
  for (std::int64_t g = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
       g < G; g += warps) {
    const std::int64_t n = L.size(g);
    if (n <= tuning::thread_group_rows) continue;
    const std::int64_t begin = L.begin(g);
    const std::int64_t chunks = (n + 31) / 32;
    const auto value = [&](std::int64_t k) { return static_cast<double>(x[L.row(begin + k)]); };
    // Pass 1: min, max (and validation).
    double mn = 0.0, mx = 0.0;
    bool any = false;
    for (std::int64_t ch = 0; ch < chunks; ++ch) {
      const std::int64_t k = ch * 32 + lane;
      if (k < n) {
        const std::int64_t row = L.row(begin + k);
        const T t = x[row];
        if (p.validate) validate_reward(p, t, row, st);
        const double v = static_cast<double>(t);
        mn = !any || v < mn ? v : mn;
        mx = !any || v > mx ? v : mx;
        any = true;
      }
    }
    for (int h = 16; h >= 1; h >>= 1) {  // every lane holds a value: n > 32
      const double omn = __shfl_xor_sync(0xFFFFFFFFu, mn, h);
      const double omx = __shfl_xor_sync(0xFFFFFFFFu, mx, h);
      mn = omn < mn ? omn : mn;
      mx = omx > mx ? omx : mx;
    }
    group_stats r;
    if (mn == mx) {
      // the CPU's mean: the first value when all are equal (read before the zeros are written:
      // out may be x)
      r.mean = value(0);
      __syncwarp();
      for (std::int64_t ch = 0; ch < chunks; ++ch) {
        const std::int64_t k = ch * 32 + lane;
        if (k < n) out[L.row(begin + k)] = T(0);
      }
      r.zero_variance = true;
      c.zero_variance += lane == 0;
    } else {
      const double amn = fabs(mn), amx = fabs(mx);
      const pow2_scale s =
          p.kind == estimator::batch_std ? b.global : scale_for(amn < amx ? amx : amn);
      // Pass 2: the mean.
      warp_sum_stream sx(n);
      for (std::int64_t ch = 0; ch < chunks; ++ch) {
        const std::int64_t k = ch * 32 + lane;
        sx.feed(k < n ? scale_apply(s, value(k)) : 0.0);
      }
      const double mu = fp::div(sx.result(), static_cast<double>(n));
      // Pass 3: sums of d and d^2.
      warp_sum_stream sd(n), sq(n);
      for (std::int64_t ch = 0; ch < chunks; ++ch) {
        const std::int64_t k = ch * 32 + lane;
        const double d = k < n ? fp::sub(scale_apply(s, value(k)), mu) : 0.0;
        sd.feed(d);
        sq.feed(fp::mul(d, d));
      }
      const double var = variance_from_sums(sd.result(), sq.result(), n, p.ddof);
      const double sigma = fp::sqrt(var);
      r.mean = scale_undo(s, mu);
      r.std = scale_undo(s, sigma);
      const bool scaled_kind = p.kind == estimator::grpo || p.kind == estimator::batch_std;
      double inv = 0.0;
      if (scaled_kind) {
        const double den =
            p.kind == estimator::grpo ? fp::add(sigma, scale_apply(s, p.eps)) : b.den;
        inv = den > 0.0 ? fp::div(1.0, den) : 0.0;
      }
      const double f = p.kind == estimator::rloo ? rloo_factor(n) : 1.0;
      // Pass 4: the advantages.
      for (std::int64_t ch = 0; ch < chunks; ++ch) {
        const std::int64_t k = ch * 32 + lane;
        if (k < n) {
          const double d = fp::sub(scale_apply(s, value(k)), mu);
          double a;
          if (scaled_kind) {
            a = fp::mul(d, inv);
          } else {
            a = s.active ? scale_undo(s, d) : d;
            if (p.kind == estimator::rloo) a = fp::mul(a, f);
          }
          out[L.row(begin + k)] = static_cast<T>(a);
        }
      }
    }
    if (lane == 0) {
      if (mean_out) mean_out[g] = r.mean;
      if (std_out) std_out[g] = r.std;
    }
  }
  flush_counts(c, st);
}

// ---------------------------------------------------------------------------------------------
// Validation scan and the batch_std pre-pass
// ---------------------------------------------------------------------------------------------

/// Records the first non-finite (then the first too large) reward and the largest |reward|.
template <class T>
__global__ void __launch_bounds__(tuning::block_threads)
    scan_rewards_kernel(const T* x, std::int64_t B, norm_params p, device_status* st) {
  if (blocked(st, check_id::reward_nonfinite)) return;
  unsigned long long top = 0;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < B;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const T t = x[i];
    validate_reward(p, t, i, st);
    const unsigned long long bits = bits_of(fabs(static_cast<double>(t)));
    top = bits > top && is_finite(t) ? bits : top;
  }
  top = block_reduce<1>(top);
  if (threadIdx.x == 0 && top) atomicMax(&st->max_abs, top);
}

/// Level 0 of the batch's canonical sums: chunk sums of the scaled rewards (mode 0), or of
/// d = scaled reward - mean and d^2 (mode 1). One warp per chunk.
template <class T>
__global__ void __launch_bounds__(tuning::block_threads)
    batch_level0_kernel(const T* x, std::int64_t B, int mode, const device_status* st, double* out0,
                        double* out1) {
  if (failed(st)) return;
  const pow2_scale global = scale_for(double_of(st->max_abs));
  const double mu = st->batch_mu;
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const std::int64_t chunks = (B + 31) / 32;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
  for (std::int64_t ch = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
       ch < chunks; ch += warps) {
    const std::int64_t i = ch * 32 + lane;
    const double v = i < B ? scale_apply(global, static_cast<double>(x[i])) : 0.0;
    if (mode == 0) {
      const double s = warp_tree(v, 32);
      if (lane == 0) out0[ch] = s;
    } else {
      const double d = i < B ? fp::sub(v, mu) : 0.0;
      const double sd = warp_tree(d, 32), sq = warp_tree(fp::mul(d, d), 32);
      if (lane == 0) {
        out0[ch] = sd;
        out1[ch] = sq;
      }
    }
  }
}

/// A further level: chunk sums of 32 consecutive partials (zero-padded). One warp per chunk.
template <int = 0>
__global__ void __launch_bounds__(tuning::block_threads)
    batch_level_kernel(const double* in0, const double* in1, std::int64_t m, double* out0,
                       double* out1, const device_status* st) {
  if (failed(st)) return;
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const std::int64_t chunks = (m + 31) / 32;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
  for (std::int64_t ch = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
       ch < chunks; ch += warps) {
    const std::int64_t i = ch * 32 + lane;
    const double s0 = warp_tree(i < m ? in0[i] : 0.0, 32);
    if (lane == 0) out0[ch] = s0;
    if (in1) {
      const double s1 = warp_tree(i < m ? in1[i] : 0.0, 32);
      if (lane == 0) out1[ch] = s1;
    }
  }
}

/// The top of the batch's canonical sums (m <= 32 entries: partials, or the rewards themselves
/// when B <= 32), then the mean (mode 0) or sigma and the denominator (mode 1). mode 2: B <= ddof,
/// sigma = 0. One warp.
template <class T>
__global__ void batch_finish_kernel(const T* x, std::int64_t B, const double* in0,
                                    const double* in1, std::int64_t m, int mode, int ddof,
                                    double eps, device_status* st) {
  if (failed(st)) return;
  const pow2_scale global = scale_for(double_of(st->max_abs));
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int P = padded_width(m);
  double v0 = 0.0, v1 = 0.0;
  if (mode != 2 && lane < m) {
    if (in0) {
      v0 = in0[lane];
      if (in1) v1 = in1[lane];
    } else {
      const double v = scale_apply(global, static_cast<double>(x[lane]));
      if (mode == 0) {
        v0 = v;
      } else {
        v0 = fp::sub(v, st->batch_mu);
        v1 = fp::mul(v0, v0);
      }
    }
  }
  const double s0 = warp_tree(v0, P), s1 = warp_tree(v1, P);
  if (lane != 0) return;
  if (mode == 0) {
    st->batch_mu = fp::div(s0, static_cast<double>(B));
    return;
  }
  const double sigma = mode == 2 ? 0.0 : fp::sqrt(variance_from_sums(s0, s1, B, ddof));
  st->batch_den = fp::add(sigma, scale_apply(global, eps));
  st->batch_sigma = scale_undo(global, sigma);
}

/// Scratch of the normalization stage.
struct norm_buffers {
  double* part0 = nullptr;
  double* part1 = nullptr;
};

/// Partials of the batch_std canonical sums: every level above the rewards, one after another.
inline std::int64_t batch_partials(std::int64_t B) noexcept {
  std::int64_t total = 0, m = B;
  while (m > 32) {
    m = (m + 31) / 32;
    total += m;
  }
  return total;
}

inline norm_buffers reserve_normalize(carver& ws, std::int64_t B, estimator kind) {
  norm_buffers b;
  if (kind == estimator::batch_std) {
    b.part0 = ws.take<double>(batch_partials(B));
    b.part1 = ws.take<double>(batch_partials(B));
  }
  return b;
}

/// Enqueues the batch_std pre-pass (after scan_rewards_kernel, which gives max |reward|).
template <class T>
void launch_batch_std(const char* fn, cudaStream_t stream, const T* x, std::int64_t B, int ddof,
                      double eps, const norm_buffers& nb, device_status* st) {
  const int threads = tuning::block_threads;
  if (!(B > ddof && B > 0)) {
    batch_finish_kernel<T><<<1, 32, 0, stream>>>(x, B, nullptr, nullptr, 0, 2, ddof, eps, st);
    check_launch(fn);
    return;
  }
  for (int mode = 0; mode < 2; ++mode) {
    std::int64_t m = B;
    const double *in0 = nullptr, *in1 = nullptr;
    std::int64_t offset = 0;
    if (m > 32) {  // level 0 reads the rewards
      const std::int64_t chunks = (m + 31) / 32;
      batch_level0_kernel<T><<<grid_for(fn, chunks * 32, threads), threads, 0, stream>>>(
          x, B, mode, st, nb.part0, nb.part1);
      check_launch(fn);
      in0 = nb.part0;
      in1 = mode == 1 ? nb.part1 : nullptr;
      m = chunks;
      offset = chunks;
    }
    while (m > 32) {
      const std::int64_t chunks = (m + 31) / 32;
      double* out0 = nb.part0 + offset;
      double* out1 = mode == 1 ? nb.part1 + offset : nullptr;
      batch_level_kernel<>
          <<<grid_for(fn, chunks * 32, threads), threads, 0, stream>>>(in0, in1, m, out0, out1, st);
      check_launch(fn);
      in0 = out0;
      in1 = out1;
      m = chunks;
      offset += chunks;
    }
    batch_finish_kernel<T><<<1, 32, 0, stream>>>(x, B, in0, in1, m, mode, ddof, eps, st);
    check_launch(fn);
  }
}

/// batch_std with verl singletons (CPU: plan_normalize): records every group whose only row's
/// advantage x / (sigma_batch + eps) is beyond `top` = max(T); the status keeps the first group.
/// One thread per group, after the batch_std pre-pass and before any advantage is written.
template <class T>
__global__ void __launch_bounds__(tuning::block_threads)
    singleton_range_kernel(const T* x, dev_layout L, norm_params p, double top, device_status* st) {
  if (failed(st)) return;
  const batch_constants b = load_batch(p, st);
  const std::int64_t G = L.count();
  for (std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; g < G;
       g += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    if (L.size(g) != 1) continue;
    const double a = singleton_advantage(p, b, static_cast<double>(x[L.row(L.begin(g))]));
    if (!(fabs(a) <= top))
      record(st, check_id::singleton_range, static_cast<unsigned long long>(g));
  }
}

/// Enqueues singleton_range_kernel when the options need it (batch_std, verl singletons), after
/// launch_batch_std. Uniform layouts need it only for groups of one row.
template <class T>
void launch_singleton_range(const char* fn, cudaStream_t stream, const T* x, const dev_layout& L,
                            const layout_info& info, const norm_params& p, device_status* st) {
  if (p.kind != estimator::batch_std || p.singleton != singleton_policy::verl) return;
  if (info.groups == 0 || (info.uniform >= 0 && info.uniform != 1)) return;
  const int threads = tuning::block_threads;
  singleton_range_kernel<T><<<grid_for(fn, info.groups, threads), threads, 0, stream>>>(
      x, L, p, static_cast<double>(std::numeric_limits<T>::max()), st);
  check_launch(fn);
}

/// Enqueues the per-group kernels (after validation, the layout and the batch_std pre-pass).
/// `uniform_fused` skips the small-group kernel (the pipeline's fused kernel did those groups).
template <class T>
void launch_group_normalize(const char* fn, cudaStream_t stream, const T* x, const dev_layout& L,
                            const layout_info& info, const norm_params& p, T* out, double* mean,
                            double* sd, device_status* st) {
  const int threads = tuning::block_threads;
  if (info.groups == 0) return;
  const bool small = info.uniform < 0 || info.uniform <= tuning::thread_group_rows;
  const bool large = info.uniform < 0 || info.uniform > tuning::thread_group_rows;
  if (small) {
    const unsigned grid = grid_for(fn, info.groups, threads);
    switch (info.uniform < 0 ? 0 : padded_width(info.uniform)) {
      case 0:
        normalize_small_kernel<T, 0><<<grid, threads, 0, stream>>>(x, L, p, out, mean, sd, st);
        break;
      case 1:
      case 2:
        normalize_small_kernel<T, 2><<<grid, threads, 0, stream>>>(x, L, p, out, mean, sd, st);
        break;
      case 4:
        normalize_small_kernel<T, 4><<<grid, threads, 0, stream>>>(x, L, p, out, mean, sd, st);
        break;
      case 8:
        normalize_small_kernel<T, 8><<<grid, threads, 0, stream>>>(x, L, p, out, mean, sd, st);
        break;
      case 16:
        normalize_small_kernel<T, 16><<<grid, threads, 0, stream>>>(x, L, p, out, mean, sd, st);
        break;
      default:
        normalize_small_kernel<T, 32><<<grid, threads, 0, stream>>>(x, L, p, out, mean, sd, st);
        break;
    }
    check_launch(fn);
  }
  if (large) {
    normalize_large_kernel<T><<<grid_for(fn, info.groups * 32, threads), threads, 0, stream>>>(
        x, L, p, out, mean, sd, st);
    check_launch(fn);
  }
}

/// The estimator options as kernel constants, for reward type T.
template <class T>
norm_params make_norm_params(const advantage_options& o) {
  norm_params p;
  p.kind = o.kind;
  p.ddof = o.ddof;
  p.eps = o.eps;
  p.singleton = o.singleton;
  p.check_limit = o.kind == estimator::mean_only || o.kind == estimator::rloo;
  p.limit = static_cast<double>(std::numeric_limits<T>::max()) / 4;
  return p;
}

/// What the messages of the normalization's checks need from the options, into the context.
template <class T>
void norm_context(const advantage_options& o, status_context& ctx) {
  ctx.kind = static_cast<int>(o.kind);
  ctx.limit = make_norm_params<T>(o).limit;
  ctx.eps = o.eps;
  ctx.float_type = std::is_same_v<T, float>;
}

/// The checks of validate_normalize that look at options only (same messages).
/// @throws error.
template <class T>
void check_advantage_options(const char* fn, const advantage_options& o) {
  cpu::norm_scratch unused;
  host_layout none;
  (void)cpu::validate_normalize(fn, host_span<const T>(), none, 0, o, group_stats_out{}, unused);
}

}  // namespace detail::gpu
}  // namespace shuffle_r1
