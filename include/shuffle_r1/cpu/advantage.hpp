/// @file cpu/advantage.hpp
/// @brief CPU (Eigen) implementation of normalize_advantages. Internal: include
/// <shuffle_r1/advantage.hpp>.
///
/// Eigen carries the large-group and batch-wide element-wise work (Eigen::Map over scratch).
/// Every Eigen expression performs one kind of operation (only subtractions, only products,
/// only quotients): the results do not depend on whether the compiler inlines Eigen's kernels
/// into our strict-FP functions, since no product ever feeds an addition inside one Eigen
/// kernel that a compiler could fuse. Groups of at most 32 rows use fixed-size loops.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/advantage_avx2.hpp>
#include <shuffle_r1/cpu/advantage_avx512.hpp>
#include <shuffle_r1/cpu/simd.hpp>
#include <shuffle_r1/detail/advantage_math.hpp>
#include <shuffle_r1/detail/int_math.hpp>
#include <shuffle_r1/detail/tree_sum.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace shuffle_r1 {

/// Counts reported by normalize_advantages.
struct advantage_summary {
  std::int64_t rows = 0;                  ///< B
  std::int64_t groups = 0;                ///< G
  std::int64_t zero_variance_groups = 0;  ///< groups of >= 2 rows whose rewards are all equal
  std::int64_t singleton_groups = 0;      ///< groups of exactly one row
  std::int64_t empty_groups = 0;          ///< groups of no rows
  double batch_std = 0.0;                 ///< sigma over all rows (batch_std estimator only)
};

/// Optional per-group statistics outputs (empty spans are not written).
struct group_stats_out {
  host_span<double> mean;  ///< G entries: mean reward of the group (0 for an empty group)
  host_span<double> std;   ///< G entries: std with the configured ddof (0 for n <= ddof or
                           ///< a zero-variance group)
};

namespace detail::cpu {

/// Reusable scratch of the normalization (kept by pipeline workspaces).
struct norm_scratch {
  std::vector<double> x, d, q;   // values of groups larger than one chunk
  std::vector<double> partials;  // canonical-sum partials
  // SIMD uniform path: what the validation scan computed per chunk of 64 groups
  std::vector<double> chunk_mu;            // group means, one vector per block (lane order)
  std::vector<std::uint64_t> chunk_zv;     // constant double groups, bit per group
  std::vector<std::uint8_t> chunk_scaled;  // the chunk needs the portable rescaling path

  std::size_t bytes() const noexcept {
    return (x.capacity() + d.capacity() + q.capacity() + partials.capacity() +
            chunk_mu.capacity()) *
               sizeof(double) +
           chunk_zv.capacity() * sizeof(std::uint64_t) + chunk_scaled.capacity();
  }
};

/// Per-call constants of the kernel.
struct norm_plan {
  estimator kind = estimator::grpo;
  int ddof = 1;
  double eps = 1e-6;
  singleton_policy singleton = singleton_policy::error;
  pow2_scale global;       // batch_std: scale of the whole batch
  double batch_den = 0.0;  // batch_std: sigma_batch + eps, in the global scale
  double batch_sigma = 0.0;
};

struct group_result {
  double mean = 0.0, std = 0.0;
  bool zero_variance = false;
};

/// Shared tail of the per-group computation once the canonical sums are known.
SHUFFLE_R1_STRICT_FP inline double group_denominator(const norm_plan& plan, const pow2_scale& s,
                                                     double sigma) {
  SHUFFLE_R1_STRICT_FP_BODY
  switch (plan.kind) {
    case estimator::grpo:
      return fp::add(sigma, scale_apply(s, plan.eps));
    case estimator::batch_std:
      return plan.batch_den;
    default:
      return 1.0;
  }
}

/// 1 / den, the factor of grpo and batch_std advantages (0 when den is 0, which only a group
/// of equal rewards, handled before, could produce). Advantages are d * (1 / den): one division
/// per group instead of one per row; within one double ulp of d / den.
SHUFFLE_R1_STRICT_FP inline double inverse_denominator(double den) {
  SHUFFLE_R1_STRICT_FP_BODY
  return den > 0.0 ? fp::div(1.0, den) : 0.0;
}

/// Advantage of a singleton group's only row under the verl policy (mu = 0, own scale 1).
SHUFFLE_R1_STRICT_FP inline double singleton_verl(const norm_plan& plan, double x) {
  SHUFFLE_R1_STRICT_FP_BODY
  switch (plan.kind) {
    case estimator::grpo:
      return fp::div(x, fp::add(1.0, plan.eps));
    case estimator::batch_std:
      return batch_singleton(x, plan.global, plan.batch_den, plan.eps);
    default:
      return x;
  }
}

/// Normalizes one group of 2 <= n <= P values (P a power of two, 2 <= P <= 32) held in x[0..P)
/// (zero-padded). Writes the advantages (double) into a[0..n).
///
/// Plain fixed-size loops rather than Eigen fixed-size arrays: they vectorize as well, and
/// GCC 12 reports false-positive -Warray-bounds / -Wmaybe-uninitialized inside its AVX-512
/// headers for Eigen arrays of 2 and 4 doubles under -march=native.
template <int P>
SHUFFLE_R1_STRICT_FP inline group_result normalize_small(double* x, std::int64_t n,
                                                         const norm_plan& plan, double* a) {
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(P >= 2 && P <= sum_chunk, "singletons take the scalar path");
  group_result r;
  double mn = x[0], mx = x[0];
  for (std::int64_t i = 1; i < n; ++i) {
    mn = x[i] < mn ? x[i] : mn;
    mx = x[i] > mx ? x[i] : mx;
  }
  if (mn == mx) {
    for (int i = 0; i < P; ++i)
      a[i] = 0.0;
    r.mean = mn;
    r.zero_variance = true;
    return r;
  }
  const pow2_scale s = plan.kind == estimator::batch_std
                           ? plan.global
                           : scale_for(std::max(std::fabs(mn), std::fabs(mx)));
  if (s.active)
    for (std::int64_t i = 0; i < n; ++i)
      x[i] = scale_apply(s, x[i]);
  const double mu = fp::div(tree_sum<P>(x), static_cast<double>(n));
  double d[P], q[P];
  for (int i = 0; i < P; ++i)
    d[i] = i < n ? fp::sub(x[i], mu) : 0.0;
  for (int i = 0; i < P; ++i)
    q[i] = fp::mul(d[i], d[i]);
  const double var = variance_from_sums(tree_sum<P>(d), tree_sum<P>(q), n, plan.ddof);
  const double sigma = fp::sqrt(var);
  r.mean = scale_undo(s, mu);
  r.std = scale_undo(s, sigma);
  if (plan.kind == estimator::grpo || plan.kind == estimator::batch_std) {
    const double inv = inverse_denominator(group_denominator(plan, s, sigma));
    for (int i = 0; i < P; ++i)
      a[i] = fp::mul(d[i], inv);
  } else {
    const double f = plan.kind == estimator::rloo ? rloo_factor(n) : 1.0;
    for (int i = 0; i < P; ++i)
      a[i] = fp::mul(scale_undo(s, d[i]), f);
  }
  return r;
}

/// Normalizes one group of n > 32 values held in `x` (n entries); writes advantages into `a`.
SHUFFLE_R1_STRICT_FP inline group_result normalize_large(double* x, std::int64_t n,
                                                         const norm_plan& plan, double* a,
                                                         double* q, double* partials) {
  SHUFFLE_R1_STRICT_FP_BODY
  using map = Eigen::Map<Eigen::ArrayXd>;
  map xv(x, n), av(a, n), qv(q, n);
  group_result r;
  // A loop, not Eigen's minCoeff/maxCoeff: those trip GCC 12's -Wmaybe-uninitialized inside its
  // AVX-512 intrinsics under -march=native.
  double mn = x[0], mx = x[0];
  for (std::int64_t i = 1; i < n; ++i) {
    mn = x[i] < mn ? x[i] : mn;
    mx = x[i] > mx ? x[i] : mx;
  }
  if (mn == mx) {
    av.setZero();
    r.mean = mn;
    r.zero_variance = true;
    return r;
  }
  const pow2_scale s = plan.kind == estimator::batch_std
                           ? plan.global
                           : scale_for(std::max(std::fabs(mn), std::fabs(mx)));
  if (s.active)
    for (std::int64_t i = 0; i < n; ++i)
      x[i] = scale_apply(s, x[i]);
  const double mu = fp::div(canonical_sum(x, n, partials), static_cast<double>(n));
  av = xv - mu;  // a holds d for now
  qv = av * av;
  const double var = variance_from_sums(canonical_sum(a, n, partials),
                                        canonical_sum(q, n, partials), n, plan.ddof);
  const double sigma = fp::sqrt(var);
  r.mean = scale_undo(s, mu);
  r.std = scale_undo(s, sigma);
  if (plan.kind == estimator::grpo || plan.kind == estimator::batch_std) {
    av = av * inverse_denominator(group_denominator(plan, s, sigma));
  } else {
    if (s.active)
      for (std::int64_t i = 0; i < n; ++i)
        a[i] = scale_undo(s, a[i]);
    if (plan.kind == estimator::rloo) av = av * rloo_factor(n);
  }
  return r;
}

/// Loads a group's rewards as doubles: contiguous layouts read x[begin + k], indexed layouts
/// x[rows[begin + k]].
template <class T>
inline void load_group(const T* x, const host_layout& L, std::int64_t begin, std::int64_t n,
                       double* dst) {
  if (L.rows) {
    for (std::int64_t k = 0; k < n; ++k)
      dst[k] = static_cast<double>(x[L.rows[begin + k]]);
  } else {
    for (std::int64_t k = 0; k < n; ++k)
      dst[k] = static_cast<double>(x[begin + k]);
  }
}

template <class T>
inline void store_group(T* out, const host_layout& L, std::int64_t begin, std::int64_t n,
                        const double* src) {
  if (L.rows) {
    for (std::int64_t k = 0; k < n; ++k)
      out[L.rows[begin + k]] = static_cast<T>(src[k]);
  } else {
    for (std::int64_t k = 0; k < n; ++k)
      out[begin + k] = static_cast<T>(src[k]);
  }
}

template <class T, int P>
SHUFFLE_R1_STRICT_FP inline group_result small_group(const T* x, const host_layout& L,
                                                     std::int64_t begin, std::int64_t n,
                                                     const norm_plan& plan, T* out) {
  SHUFFLE_R1_STRICT_FP_BODY
  double v[P], a[P];
  load_group(x, L, begin, n, v);
  for (std::int64_t i = n; i < P; ++i)
    v[i] = 0.0;
  const group_result r = normalize_small<P>(v, n, plan, a);
  store_group(out, L, begin, n, a);
  return r;
}

/// Groups normalized side by side by the lane kernel below (one AVX2 vector of doubles).
inline constexpr int norm_lanes = 4;

/// tree_sum<P> of `norm_lanes` groups at once: out[w] is the stride-halving sum of v[.][w].
template <int P>
SHUFFLE_R1_STRICT_FP inline void lane_tree_sum(const double (&v)[P][norm_lanes],
                                               double (&out)[norm_lanes]) {
  SHUFFLE_R1_STRICT_FP_BODY
  constexpr int W = norm_lanes;
  double t[P / 2][W];
  for (int i = 0; i < P / 2; ++i)
    for (int w = 0; w < W; ++w)
      t[i][w] = fp::add(v[i][w], v[i + P / 2][w]);
  for (int h = P / 4; h >= 1; h /= 2)
    for (int i = 0; i < h; ++i)
      for (int w = 0; w < W; ++w)
        t[i][w] = fp::add(t[i][w], t[i + h][w]);
  for (int w = 0; w < W; ++w)
    out[w] = t[0][w];
}

/// normalize_small for `norm_lanes` groups of the same size n at once, for CPUs without the
/// AVX-512 kernel. x[i][w] is row i of group w (zero-padded to P), a[i][w] its advantage. Every
/// group goes through exactly the operations of normalize_small, in the same order; the loops
/// run over the groups innermost, so the compiler vectorizes across groups and the dependent
/// chains of several groups (sums, division, square root) overlap. Returns false, writing
/// nothing, when a group needs rescaling (magnitudes outside [2^-400, 2^500]): the caller then
/// takes normalize_small per group.
template <int P>
SHUFFLE_R1_STRICT_FP inline bool normalize_small_lanes(const double (&x)[P][norm_lanes],
                                                       std::int64_t n, const norm_plan& plan,
                                                       double (&a)[P][norm_lanes],
                                                       group_result (&r)[norm_lanes]) {
  SHUFFLE_R1_STRICT_FP_BODY
  constexpr int W = norm_lanes;
  double mn[W], mx[W];
  for (int w = 0; w < W; ++w)
    mn[w] = mx[w] = x[0][w];
  for (std::int64_t i = 1; i < n; ++i)
    for (int w = 0; w < W; ++w) {
      mn[w] = x[i][w] < mn[w] ? x[i][w] : mn[w];
      mx[w] = x[i][w] > mx[w] ? x[i][w] : mx[w];
    }
  pow2_scale sc[W];
  for (int w = 0; w < W; ++w) {
    if (mn[w] == mx[w]) continue;  // a constant group: no scale, advantages 0 below
    sc[w] = plan.kind == estimator::batch_std
                ? plan.global
                : scale_for(std::max(std::fabs(mn[w]), std::fabs(mx[w])));
    if (sc[w].active) return false;
  }
  double sum[W], mu[W];
  lane_tree_sum<P>(x, sum);
  const auto nd = static_cast<double>(n);
  for (int w = 0; w < W; ++w)
    mu[w] = fp::div(sum[w], nd);
  double d[P][W], q[P][W];
  for (int i = 0; i < P; ++i)
    for (int w = 0; w < W; ++w)
      d[i][w] = i < n ? fp::sub(x[i][w], mu[w]) : 0.0;
  for (int i = 0; i < P; ++i)
    for (int w = 0; w < W; ++w)
      q[i][w] = fp::mul(d[i][w], d[i][w]);
  double sd[W], sq[W], factor[W];
  lane_tree_sum<P>(d, sd);
  lane_tree_sum<P>(q, sq);
  for (int w = 0; w < W; ++w) {
    const double sigma = fp::sqrt(variance_from_sums(sd[w], sq[w], n, plan.ddof));
    r[w] = group_result{};
    r[w].mean = mu[w];  // scale_undo of an inactive scale is the identity
    r[w].std = sigma;
    if (plan.kind == estimator::grpo || plan.kind == estimator::batch_std)
      factor[w] = inverse_denominator(group_denominator(plan, sc[w], sigma));
    else
      factor[w] = plan.kind == estimator::rloo ? rloo_factor(n) : 1.0;
  }
  for (int i = 0; i < P; ++i)
    for (int w = 0; w < W; ++w)
      a[i][w] = fp::mul(d[i][w], factor[w]);
  for (int w = 0; w < W; ++w)
    if (mn[w] == mx[w]) {
      r[w] = group_result{};
      r[w].mean = mn[w];
      r[w].zero_variance = true;
      for (int i = 0; i < P; ++i)
        a[i][w] = 0.0;
    }
  return true;
}

/// Uniform groups of n rows (2 <= n <= P, P = padded_width(n)), `norm_lanes` at a time from group
/// g on, with normalize_small_lanes; a block that needs rescaling goes group by group through
/// small_group. Returns the first group not handled (fewer than norm_lanes remain from there).
template <class T, int P>
SHUFFLE_R1_STRICT_FP inline std::int64_t uniform_lanes(const T* x, const host_layout& L,
                                                       std::int64_t g, T* out,
                                                       const norm_plan& plan,
                                                       const group_stats_out& stats,
                                                       advantage_summary& summary) {
  SHUFFLE_R1_STRICT_FP_BODY
  constexpr int W = norm_lanes;
  const std::int64_t n = L.uniform;
  for (; g + W <= L.groups; g += W) {
    double v[P][W], a[P][W];
    group_result r[W];
    const T* base = x + g * n;
    for (int w = 0; w < W; ++w)
      for (int i = 0; i < P; ++i)
        v[i][w] = i < n ? static_cast<double>(base[w * n + i]) : 0.0;
    if (normalize_small_lanes<P>(v, n, plan, a, r)) {
      T* dst = out + g * n;
      for (int w = 0; w < W; ++w)
        for (std::int64_t i = 0; i < n; ++i)
          dst[w * n + i] = static_cast<T>(a[i][w]);
    } else {
      for (int w = 0; w < W; ++w)
        r[w] = small_group<T, P>(x, L, (g + w) * n, n, plan, out);
    }
    for (int w = 0; w < W; ++w) {
      summary.zero_variance_groups += r[w].zero_variance;
      if (!stats.mean.empty()) stats.mean[static_cast<std::size_t>(g + w)] = r[w].mean;
      if (!stats.std.empty()) stats.std[static_cast<std::size_t>(g + w)] = r[w].std;
    }
  }
  return g;
}

/// Computes the batch-wide sigma of the batch_std estimator: canonical sums over all rows in
/// batch order, in the global scale.
template <class T>
SHUFFLE_R1_STRICT_FP inline void plan_batch_std(const T* x, std::int64_t B, double max_abs,
                                                norm_plan& plan, norm_scratch& s) {
  SHUFFLE_R1_STRICT_FP_BODY
  plan.global = scale_for(max_abs);
  s.x.resize(static_cast<std::size_t>(B));
  s.q.resize(static_cast<std::size_t>(B));
  s.partials.resize(static_cast<std::size_t>(canonical_sum_scratch(B) + 2));
  for (std::int64_t i = 0; i < B; ++i)
    s.x[i] = scale_apply(plan.global, static_cast<double>(x[i]));
  double sigma = 0.0;
  if (B > plan.ddof && B > 0) {
    const double mu =
        fp::div(canonical_sum(s.x.data(), B, s.partials.data()), static_cast<double>(B));
    Eigen::Map<Eigen::ArrayXd> xv(s.x.data(), B), qv(s.q.data(), B);
    xv = xv - mu;
    qv = xv * xv;
    sigma =
        fp::sqrt(variance_from_sums(canonical_sum(s.x.data(), B, s.partials.data()),
                                    canonical_sum(s.q.data(), B, s.partials.data()), B, plan.ddof));
  }
  plan.batch_den = fp::add(sigma, scale_apply(plan.global, plan.eps));
  plan.batch_sigma = scale_undo(plan.global, sigma);
}

/// Sizes the buffers of a group of n rows when n is above one chunk (sum_chunk): its values,
/// deviations, squares and canonical-sum partials.
inline void size_large_group(std::int64_t n, norm_scratch& s) {
  if (n <= sum_chunk) return;
  const auto un = static_cast<std::size_t>(n);
  // each on its own: plan_batch_std resizes x and q to the batch, which may be smaller
  if (s.d.size() < un) s.d.resize(un);
  if (s.q.size() < un) s.q.resize(un);
  if (s.x.size() < un) s.x.resize(un);
  const auto need = static_cast<std::size_t>(canonical_sum_scratch(n) + 2);
  if (s.partials.size() < need) s.partials.resize(need);
}

/// Normalizes group g with the portable code.
template <class T>
SHUFFLE_R1_STRICT_FP inline group_result portable_group(const T* x, const host_layout& L,
                                                        std::int64_t g, T* out,
                                                        const norm_plan& plan, norm_scratch& s) {
  SHUFFLE_R1_STRICT_FP_BODY
  const std::int64_t begin = L.begin(g), n = L.size(g);
  group_result r;
  if (n == 0) return r;
  if (n == 1) {
    const std::int64_t row = L.row(begin);
    r.mean = static_cast<double>(x[row]);
    out[row] = static_cast<T>(plan.singleton == singleton_policy::verl
                                  ? singleton_verl(plan, static_cast<double>(x[row]))
                                  : 0.0);
    return r;
  }
  if (n <= sum_chunk) {
    switch (padded_width(n)) {
      case 2:
        return small_group<T, 2>(x, L, begin, n, plan, out);
      case 4:
        return small_group<T, 4>(x, L, begin, n, plan, out);
      case 8:
        return small_group<T, 8>(x, L, begin, n, plan, out);
      case 16:
        return small_group<T, 16>(x, L, begin, n, plan, out);
      default:
        return small_group<T, 32>(x, L, begin, n, plan, out);
    }
  }
  size_large_group(n, s);  // normally done by normalize_kernel before its first write
  load_group(x, L, begin, n, s.x.data());
  r = normalize_large(s.x.data(), n, plan, s.d.data(), s.q.data(), s.partials.data());
  store_group(out, L, begin, n, s.d.data());
  return r;
}

#if SHUFFLE_R1_X86_SIMD
/// Whether a SIMD kernel (AVX-512, else AVX2) handles this layout: uniform groups of 8, 16 or 32
/// rows. Returns the group size, or 0.
inline int simd_group_size(const host_layout& L) noexcept {
  if (L.rows != nullptr || !(has_avx512() || has_avx2())) return 0;
  return L.uniform == 8 || L.uniform == 16 || L.uniform == 32 ? static_cast<int>(L.uniform) : 0;
}

/// The SIMD normalization kernel of one instruction set: Wide = AVX-512 (blocks of 8 groups),
/// otherwise AVX2 (blocks of 4). Both work in chunks of norm_chunk_groups groups.
template <bool Wide>
struct norm_simd {
  static constexpr int block = Wide ? avx512::block : avx2::block;
  static constexpr int chunk_blocks = Wide ? avx512::chunk_blocks : avx2::chunk_blocks;
  /// Outputs of at least this many bytes are written with non-temporal stores (docs/benchmarks.md).
  /// AVX2 (measured on a 2-core EPYC VM, 32 MiB L3): from 16 MiB, where the output and the rewards
  /// no longer stay cached together; at 64 MiB (1M groups of 16 floats) 20.4-21.3 -> 17.4-17.8 ms
  /// per call. AVX-512 (measured on the earlier AVX-512 host): the same stores made the 64 MiB
  /// case slower (12.4 against 7 ms), so only beyond it.
  static constexpr std::int64_t stream_bytes =
      Wide ? (std::int64_t{64} << 20) + 1 : std::int64_t{16} << 20;

  template <class T, int P>
  static norm_chunk_scan scan(const T* x, int blocks, double* mu) {
    if constexpr (Wide) {
      return avx512::scan_chunk<T, P>(x, blocks, mu);
    } else {
      return avx2::scan_chunk<T, P>(x, blocks, mu);
    }
  }

  /// Returns the number of constant groups.
  template <class T, int P, bool Stream>
  static int normalize(const T* x, T* out, int blocks, const double* mu, std::uint64_t zv,
                       const norm_plan& plan, double* mean, double* sd) {
    if constexpr (Wide) {
      return avx512::normalize_chunk<T, P, Stream>(x, out, blocks, mu, zv, plan.kind, plan.ddof,
                                                   plan.eps, plan.batch_den, mean, sd);
    } else {
      return avx2::normalize_chunk<T, P, Stream>(x, out, blocks, mu, zv, plan.kind, plan.ddof,
                                                 plan.eps, plan.batch_den, mean, sd);
    }
  }

  static void fence() {
    if constexpr (Wide) {
      avx512::store_fence();
    } else {
      avx2::store_fence();
    }
  }
};

/// The validation scan of the SIMD path, fused with the first pass (means; constant groups of
/// doubles) for the leading full blocks of K::block groups. Returns whether every reward there
/// is finite and their largest magnitude; s.chunk_* receive the per-chunk results. Returns the
/// number of groups covered (a multiple of K::block).
template <class K, class T, int P>
inline std::int64_t scan_simd_isa(const T* x, std::int64_t G, norm_scratch& s, bool& finite,
                                  double& max_abs) {
  const std::int64_t covered = G / K::block * K::block;
  const std::int64_t chunks = (covered + norm_chunk_groups - 1) / norm_chunk_groups;
  s.chunk_mu.resize(static_cast<std::size_t>(covered));
  s.chunk_zv.resize(static_cast<std::size_t>(chunks));
  s.chunk_scaled.resize(static_cast<std::size_t>(chunks));
  finite = true;
  max_abs = 0.0;
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t g = c * norm_chunk_groups;
    const int blocks =
        static_cast<int>(std::min<std::int64_t>(K::chunk_blocks, (covered - g) / K::block));
    const norm_chunk_scan r = K::template scan<T, P>(x + g * P, blocks, s.chunk_mu.data() + g);
    finite = finite && r.finite;
    max_abs = std::max(max_abs, r.max_abs);
    s.chunk_zv[static_cast<std::size_t>(c)] = r.zero_variance;
    s.chunk_scaled[static_cast<std::size_t>(c)] = r.needs_scaling;
  }
  return covered;
}

/// scan_simd_isa with the widest kernel this CPU has.
template <class T, int P>
inline std::int64_t scan_simd(const T* x, std::int64_t G, norm_scratch& s, bool& finite,
                              double& max_abs) {
  return has_avx512() ? scan_simd_isa<norm_simd<true>, T, P>(x, G, s, finite, max_abs)
                      : scan_simd_isa<norm_simd<false>, T, P>(x, G, s, finite, max_abs);
}

/// Uniform groups of 8, 16 or 32 rows with a SIMD kernel, in chunks of norm_chunk_groups groups,
/// after scan_simd_isa with the same K. Returns the number of leading groups done (a multiple of
/// K::block).
template <class K, class T, int P>
inline std::int64_t uniform_simd_isa(const T* x, std::int64_t G, T* out, const norm_plan& plan,
                                     const group_stats_out& stats, const host_layout& L,
                                     norm_scratch& s, advantage_summary& summary) {
  const std::int64_t covered = G / K::block * K::block;
  // Outputs larger than the caches bypass them (no read-for-ownership of the destination).
  const bool stream = covered * P * static_cast<std::int64_t>(sizeof(T)) >= K::stream_bytes &&
                      reinterpret_cast<std::uintptr_t>(out) % (8 * sizeof(T)) == 0;
  for (std::int64_t g = 0, c = 0; g < covered; g += norm_chunk_groups, ++c) {
    const int blocks =
        static_cast<int>(std::min<std::int64_t>(K::chunk_blocks, (covered - g) / K::block));
    const std::int64_t end = g + blocks * K::block;
    const std::uint64_t zv = s.chunk_zv[static_cast<std::size_t>(c)];
    if (!s.chunk_scaled[static_cast<std::size_t>(c)]) {
      double* mean = stats.mean.empty() ? nullptr : stats.mean.data() + g;
      double* sd = stats.std.empty() ? nullptr : stats.std.data() + g;
      const double* mu = s.chunk_mu.data() + g;
      summary.zero_variance_groups +=
          stream ? K::template normalize<T, P, true>(x + g * P, out + g * P, blocks, mu, zv, plan,
                                                     mean, sd)
                 : K::template normalize<T, P, false>(x + g * P, out + g * P, blocks, mu, zv, plan,
                                                      mean, sd);
    } else {
      for (std::int64_t h = g; h < end; ++h) {
        const group_result gr = portable_group(x, L, h, out, plan, s);
        summary.zero_variance_groups += gr.zero_variance;
        if (!stats.mean.empty()) stats.mean[static_cast<std::size_t>(h)] = gr.mean;
        if (!stats.std.empty()) stats.std[static_cast<std::size_t>(h)] = gr.std;
      }
    }
  }
  if (stream) K::fence();
  return covered;
}

/// uniform_simd_isa with the kernel scan_simd chose.
template <class T, int P>
inline std::int64_t uniform_simd(const T* x, std::int64_t G, T* out, const norm_plan& plan,
                                 const group_stats_out& stats, const host_layout& L,
                                 norm_scratch& s, advantage_summary& summary) {
  return has_avx512()
             ? uniform_simd_isa<norm_simd<true>, T, P>(x, G, out, plan, stats, L, s, summary)
             : uniform_simd_isa<norm_simd<false>, T, P>(x, G, out, plan, stats, L, s, summary);
}
#endif

/// The error of a batch_std verl singleton whose advantage T cannot hold (CPU: plan_normalize;
/// CUDA: the singleton_range check's message). `value` is rewards[row].
[[noreturn]] inline void fail_singleton_range(const char* fn, std::int64_t row, double value,
                                              std::int64_t group, bool float_type,
                                              double batch_sigma, double eps) {
  fail(errc::out_of_range, fn, "rewards[", row, "] = ", value, ", the only row of group ", group,
       ", is too large for the batch_std estimator: its advantage rewards[", row,
       "] / (sigma_batch + eps) overflows ", float_type ? "float" : "double",
       " (sigma_batch = ", batch_sigma, ", eps = ", eps, ")");
}

/// The checks that need the batch's sigma, after validate_normalize and before any output is
/// written: computes the batch_std constants into `plan`, then, under batch_std with the verl
/// singleton policy, refuses a singleton whose advantage x / (sigma_batch + eps) T cannot hold
/// (sigma_batch can be 0, so this quotient, unlike every other advantage, is not bounded by the
/// rewards' spread). O(B) for batch_std (its sums), plus O(G) with verl singletons; O(1) otherwise.
/// @throws error(errc::out_of_range) naming the first such group, in group order.
template <class T>
inline void plan_normalize(const char* fn, const T* x, std::int64_t B, const host_layout& L,
                           double max_abs, norm_plan& plan, norm_scratch& s) {
  if (plan.kind != estimator::batch_std) return;
  plan_batch_std(x, B, max_abs, plan, s);
  if (plan.singleton != singleton_policy::verl) return;
  const auto top = static_cast<double>(std::numeric_limits<T>::max());
  for (std::int64_t g = 0; g < L.groups; ++g) {
    if (L.size(g) != 1) continue;
    const std::int64_t row = L.row(L.begin(g));
    const auto v = static_cast<double>(x[row]);
    if (!(std::fabs(singleton_verl(plan, v)) <= top))
      fail_singleton_range(fn, row, v, g, std::is_same_v<T, float>, plan.batch_sigma, plan.eps);
  }
}

/// The kernel: all preconditions checked by the caller, `plan` completed by plan_normalize.
template <class T>
SHUFFLE_R1_STRICT_FP inline void normalize_kernel(const T* x, std::int64_t B, const host_layout& L,
                                                  T* out, const norm_plan& plan,
                                                  const group_stats_out& stats, norm_scratch& s,
                                                  advantage_summary& summary) {
  SHUFFLE_R1_STRICT_FP_BODY
  summary = advantage_summary{};
  summary.rows = B;
  summary.groups = L.groups;
  if (plan.kind == estimator::batch_std) summary.batch_std = plan.batch_sigma;
  // Every buffer before the first write: a failed allocation must leave `out` untouched.
  size_large_group(L.largest(), s);
  std::int64_t g = 0;
#if SHUFFLE_R1_X86_SIMD
  // The SIMD path needs the validation scan's per-chunk results (validate_normalize).
  if (simd_group_size(L) != 0 && !plan.global.active) {
    switch (L.uniform) {
      case 8:
        g = uniform_simd<T, 8>(x, L.groups, out, plan, stats, L, s, summary);
        break;
      case 16:
        g = uniform_simd<T, 16>(x, L.groups, out, plan, stats, L, s, summary);
        break;
      case 32:
        g = uniform_simd<T, 32>(x, L.groups, out, plan, stats, L, s, summary);
        break;
      default:
        break;
    }
  }
#endif
  // Without a SIMD kernel (or past its groups): uniform groups of 2..32 rows four at a time
  // (a block that needs rescaling, e.g. batch_std with an active global scale, falls back inside).
  if (L.rows == nullptr && L.uniform >= 2 && L.uniform <= sum_chunk && g < L.groups) {
    switch (padded_width(L.uniform)) {
      case 2:
        g = uniform_lanes<T, 2>(x, L, g, out, plan, stats, summary);
        break;
      case 4:
        g = uniform_lanes<T, 4>(x, L, g, out, plan, stats, summary);
        break;
      case 8:
        g = uniform_lanes<T, 8>(x, L, g, out, plan, stats, summary);
        break;
      case 16:
        g = uniform_lanes<T, 16>(x, L, g, out, plan, stats, summary);
        break;
      default:
        g = uniform_lanes<T, 32>(x, L, g, out, plan, stats, summary);
        break;
    }
  }
  for (; g < L.groups; ++g) {
    const std::int64_t n = L.size(g);
    const group_result r = portable_group(x, L, g, out, plan, s);
    summary.empty_groups += n == 0;
    summary.singleton_groups += n == 1;
    summary.zero_variance_groups += r.zero_variance;
    if (!stats.mean.empty()) stats.mean[static_cast<std::size_t>(g)] = r.mean;
    if (!stats.std.empty()) stats.std[static_cast<std::size_t>(g)] = r.std;
  }
}

/// Unsigned integer of T's width.
template <class T>
using bits_t = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

/// One branch-free pass over x: whether every value is finite, and the largest magnitude's bit
/// pattern (for non-negative IEEE values the bit patterns order like the values).
template <class T>
inline bool scan_values(const T* x, std::size_t n, bits_t<T>& max_abs_bits) noexcept {
  using U = bits_t<T>;
  constexpr U exp_mask = static_cast<U>(sizeof(T) == 4 ? 0x7F800000ull : 0x7FF0000000000000ull);
  constexpr U abs_mask = ~(U{1} << (8 * sizeof(T) - 1));
  U bad = 0, top = 0;
  for (std::size_t i = 0; i < n; ++i) {
    U b;
    std::memcpy(&b, x + i, sizeof b);
    bad |= static_cast<U>((b & exp_mask) == exp_mask);
    const U a = b & abs_mask;
    top = a > top ? a : top;
  }
  max_abs_bits = top;
  return bad == 0;
}

#if SHUFFLE_R1_X86_SIMD
template <class T>
SHUFFLE_R1_AVX512 bool scan_values_avx512(const T* x, std::size_t n, bits_t<T>& max_abs_bits) {
  return scan_values(x, n, max_abs_bits);
}
template <class T>
SHUFFLE_R1_AVX2 bool scan_values_avx2(const T* x, std::size_t n, bits_t<T>& max_abs_bits) {
  return scan_values(x, n, max_abs_bits);
}
#endif

/// scan_values with the widest instruction set available.
template <class T>
inline bool scan_values_fast(const T* x, std::size_t n, bits_t<T>& max_abs_bits) {
#if SHUFFLE_R1_X86_SIMD
  if (has_avx512()) return scan_values_avx512(x, n, max_abs_bits);
  if (has_avx2()) return scan_values_avx2(x, n, max_abs_bits);
#endif
  return scan_values(x, n, max_abs_bits);
}

/// Checks options, sizes and rewards; returns the largest |reward| (for scaling).
/// @throws error naming the first violated precondition.
template <class T>
inline double validate_normalize(const char* fn, host_span<const T> rewards, const host_layout& L,
                                 std::size_t out_size, const advantage_options& o,
                                 const group_stats_out& stats, norm_scratch& scratch) {
  switch (o.kind) {
    case estimator::grpo:
    case estimator::mean_only:
    case estimator::rloo:
    case estimator::batch_std:
      break;
    default:
      fail(errc::invalid_argument, fn, "options.kind has no valid estimator value (",
           static_cast<int>(o.kind), ")");
  }
  switch (o.singleton) {
    case singleton_policy::error:
    case singleton_policy::verl:
    case singleton_policy::zero:
      break;
    default:
      fail(errc::invalid_argument, fn, "options.singleton has no valid policy value (",
           static_cast<int>(o.singleton), ")");
  }
  if (o.ddof != 0 && o.ddof != 1)
    fail(errc::invalid_argument, fn, "options.ddof is ", o.ddof, ", expected 0 or 1");
  if (!is_finite(o.eps) || o.eps < 0.0)
    fail(errc::invalid_argument, fn, "options.eps is ", o.eps, ", expected a finite value >= 0");
  if (out_size != rewards.size())
    fail(errc::size_mismatch, fn, "advantages has ", out_size, " elements, expected ",
         rewards.size(), " (one per reward)");
  const auto G = static_cast<std::size_t>(L.groups);
  if (!stats.mean.empty() && stats.mean.size() != G)
    fail(errc::size_mismatch, fn, "stats.mean has ", stats.mean.size(), " elements, expected ", G,
         " (one per group) or 0");
  if (!stats.std.empty() && stats.std.size() != G)
    fail(errc::size_mismatch, fn, "stats.std has ", stats.std.size(), " elements, expected ", G,
         " (one per group) or 0");
  bits_t<T> top = 0;
  bool finite = true;
  double max_abs = 0.0;
  std::size_t scanned = 0;  // leading rows covered by the fused SIMD scan
#if SHUFFLE_R1_X86_SIMD
  if (const int P = simd_group_size(L)) {
    std::int64_t groups = 0;
    switch (P) {
      case 8:
        groups = scan_simd<T, 8>(rewards.data(), L.groups, scratch, finite, max_abs);
        break;
      case 16:
        groups = scan_simd<T, 16>(rewards.data(), L.groups, scratch, finite, max_abs);
        break;
      default:
        groups = scan_simd<T, 32>(rewards.data(), L.groups, scratch, finite, max_abs);
        break;
    }
    scanned = static_cast<std::size_t>(groups * P);
  }
#else
  (void)scratch;
#endif
  finite = scan_values_fast(rewards.data() + scanned, rewards.size() - scanned, top) && finite;
  if (!finite) {
    for (std::size_t i = 0; i < rewards.size(); ++i) {
      const T v = rewards[i];
      if (!is_finite(v))
        fail(errc::non_finite, fn, "rewards[", i, "] is ",
             v != v ? "NaN" : (v > 0 ? "+inf" : "-inf"));
    }
  }
  T top_value;
  std::memcpy(&top_value, &top, sizeof top_value);
  max_abs = std::max(max_abs, static_cast<double>(top_value));
  if (o.kind == estimator::mean_only || o.kind == estimator::rloo) {
    // x - mu and n/(n-1) (x - mu) stay below 4 max|x|: keep that inside T.
    const double limit = static_cast<double>(std::numeric_limits<T>::max()) / 4;
    if (max_abs > limit) {
      for (std::size_t i = 0; i < rewards.size(); ++i)
        if (std::fabs(static_cast<double>(rewards[i])) > limit)
          fail(errc::out_of_range, fn, "rewards[", i, "] = ", rewards[i], " is too large for the ",
               to_string(o.kind), " estimator (|reward| must be at most ", limit, ")");
    }
  }
  if (o.singleton == singleton_policy::error) {
    for (std::int64_t g = 0; g < L.groups; ++g)
      if (L.size(g) == 1)
        fail(errc::singleton_group, fn, "group ", g, " (row ", L.row(L.begin(g)),
             ") has a single row; its std is undefined (set the singleton policy to verl or "
             "zero to accept such groups)");
  }
  return max_abs;
}

}  // namespace detail::cpu
}  // namespace shuffle_r1
