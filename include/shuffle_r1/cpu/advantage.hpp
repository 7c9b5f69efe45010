/// @file cpu/advantage.hpp
/// @brief CPU (Eigen) implementation of normalize_advantages. Internal: include
/// <shuffle_r1/advantage.hpp>.
///
/// Eigen note: every Eigen expression below performs one kind of operation (only adds, only
/// subtractions, only products, only quotients). That keeps the results independent of whether
/// the compiler inlines Eigen's kernels into our strict-FP functions: there is never a product
/// feeding an addition inside one Eigen kernel that a compiler could fuse.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/detail/advantage_math.hpp>
#include <shuffle_r1/detail/tree_sum.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
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
  std::vector<double> partials;     // canonical-sum partials
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

template <int P>
using fixed_array = Eigen::Array<double, P, 1>;

/// Stride-halving sum of a fixed-size array: the canonical order (see tree_sum.hpp).
template <int P>
SHUFFLE_R1_STRICT_FP inline double eigen_tree_sum(const fixed_array<P>& v) {
  SHUFFLE_R1_STRICT_FP_BODY
  if constexpr (P == 1) {
    return v(0);
  } else {
    const fixed_array<P / 2> t = v.template head<P / 2>() + v.template tail<P / 2>();
    return eigen_tree_sum<P / 2>(t);
  }
}

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

/// Advantage of a singleton group's only row under the verl policy (mu = 0, own scale 1).
SHUFFLE_R1_STRICT_FP inline double singleton_verl(const norm_plan& plan, double x) {
  SHUFFLE_R1_STRICT_FP_BODY
  switch (plan.kind) {
    case estimator::grpo:
      return fp::div(x, fp::add(1.0, plan.eps));
    case estimator::batch_std:
      return plan.batch_den > 0.0 ? fp::div(scale_apply(plan.global, x), plan.batch_den) : 0.0;
    default:
      return x;
  }
}

/// Normalizes one group of 2 <= n <= P values (P a power of two, 2 <= P <= 32) held in `x`
/// (zero-padded). Writes the advantages (double) into `a`.
template <int P>
SHUFFLE_R1_STRICT_FP inline group_result normalize_small(fixed_array<P>& x, std::int64_t n,
                                                         const norm_plan& plan,
                                                         fixed_array<P>& a) {
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(P >= 2, "singletons take the scalar path");
  group_result r;
  const double mn = x.head(n).minCoeff(), mx = x.head(n).maxCoeff();
  if (mn == mx) {
    a.setZero();
    r.mean = mn;
    r.zero_variance = true;
    return r;
  }
  const pow2_scale s = plan.kind == estimator::batch_std
                           ? plan.global
                           : scale_for(std::max(std::fabs(mn), std::fabs(mx)));
  if (s.active)
    for (std::int64_t i = 0; i < n; ++i) x(i) = scale_apply(s, x(i));
  const double mu = fp::div(eigen_tree_sum<P>(x), static_cast<double>(n));
  fixed_array<P> d = x - mu;
  d.tail(P - n).setZero();
  const fixed_array<P> q = d * d;
  const double var = variance_from_sums(eigen_tree_sum<P>(d), eigen_tree_sum<P>(q), n, plan.ddof);
  const double sigma = fp::sqrt(var);
  r.mean = scale_undo(s, mu);
  r.std = scale_undo(s, sigma);
  if (plan.kind == estimator::grpo || plan.kind == estimator::batch_std) {
    const double den = group_denominator(plan, s, sigma);
    if (den > 0.0) {
      a = d / den;
    } else {
      a.setZero();
    }
  } else {
    if (s.active)
      for (std::int64_t i = 0; i < n; ++i) d(i) = scale_undo(s, d(i));
    if (plan.kind == estimator::rloo) {
      a = d * rloo_factor(n);
    } else {
      a = d;
    }
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
  const double mn = xv.minCoeff(), mx = xv.maxCoeff();
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
    for (std::int64_t i = 0; i < n; ++i) x[i] = scale_apply(s, x[i]);
  const double mu = fp::div(canonical_sum(x, n, partials), static_cast<double>(n));
  av = xv - mu;  // a holds d for now
  qv = av * av;
  const double var =
      variance_from_sums(canonical_sum(a, n, partials), canonical_sum(q, n, partials), n,
                         plan.ddof);
  const double sigma = fp::sqrt(var);
  r.mean = scale_undo(s, mu);
  r.std = scale_undo(s, sigma);
  if (plan.kind == estimator::grpo || plan.kind == estimator::batch_std) {
    const double den = group_denominator(plan, s, sigma);
    if (den > 0.0) {
      av = av / den;
    } else {
      av.setZero();
    }
  } else {
    if (s.active)
      for (std::int64_t i = 0; i < n; ++i) a[i] = scale_undo(s, a[i]);
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
    for (std::int64_t k = 0; k < n; ++k) dst[k] = static_cast<double>(x[L.rows[begin + k]]);
  } else {
    for (std::int64_t k = 0; k < n; ++k) dst[k] = static_cast<double>(x[begin + k]);
  }
}

template <class T>
inline void store_group(T* out, const host_layout& L, std::int64_t begin, std::int64_t n,
                        const double* src) {
  if (L.rows) {
    for (std::int64_t k = 0; k < n; ++k) out[L.rows[begin + k]] = static_cast<T>(src[k]);
  } else {
    for (std::int64_t k = 0; k < n; ++k) out[begin + k] = static_cast<T>(src[k]);
  }
}

template <class T, int P>
SHUFFLE_R1_STRICT_FP inline group_result small_group(const T* x, const host_layout& L,
                                                     std::int64_t begin, std::int64_t n,
                                                     const norm_plan& plan, T* out) {
  SHUFFLE_R1_STRICT_FP_BODY
  fixed_array<P> v, a;
  v.setZero();
  load_group(x, L, begin, n, v.data());
  const group_result r = normalize_small<P>(v, n, plan, a);
  store_group(out, L, begin, n, a.data());
  return r;
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
  for (std::int64_t i = 0; i < B; ++i) s.x[i] = scale_apply(plan.global, static_cast<double>(x[i]));
  double sigma = 0.0;
  if (B > plan.ddof && B > 0) {
    const double mu = fp::div(canonical_sum(s.x.data(), B, s.partials.data()),
                              static_cast<double>(B));
    Eigen::Map<Eigen::ArrayXd> xv(s.x.data(), B), qv(s.q.data(), B);
    xv = xv - mu;
    qv = xv * xv;
    sigma = fp::sqrt(variance_from_sums(canonical_sum(s.x.data(), B, s.partials.data()),
                                        canonical_sum(s.q.data(), B, s.partials.data()), B,
                                        plan.ddof));
  }
  plan.batch_den = fp::add(sigma, scale_apply(plan.global, plan.eps));
  plan.batch_sigma = scale_undo(plan.global, sigma);
}

/// The kernel: all preconditions checked by the caller.
template <class T>
SHUFFLE_R1_STRICT_FP inline void normalize_kernel(const T* x, std::int64_t B, const host_layout& L,
                                                  T* out, norm_plan plan, double max_abs,
                                                  const group_stats_out& stats,
                                                  norm_scratch& s, advantage_summary& summary) {
  SHUFFLE_R1_STRICT_FP_BODY
  summary = advantage_summary{};
  summary.rows = B;
  summary.groups = L.groups;
  if (plan.kind == estimator::batch_std) {
    plan_batch_std(x, B, max_abs, plan, s);
    summary.batch_std = plan.batch_sigma;
  }
  for (std::int64_t g = 0; g < L.groups; ++g) {
    const std::int64_t begin = L.begin(g), n = L.size(g);
    group_result r;
    if (n == 0) {
      ++summary.empty_groups;
    } else if (n == 1) {
      ++summary.singleton_groups;
      const std::int64_t row = L.row(begin);
      r.mean = static_cast<double>(x[row]);
      out[row] = static_cast<T>(plan.singleton == singleton_policy::verl
                                    ? singleton_verl(plan, static_cast<double>(x[row]))
                                    : 0.0);
    } else if (n <= sum_chunk) {
      switch (padded_width(n)) {
        case 2: r = small_group<T, 2>(x, L, begin, n, plan, out); break;
        case 4: r = small_group<T, 4>(x, L, begin, n, plan, out); break;
        case 8: r = small_group<T, 8>(x, L, begin, n, plan, out); break;
        case 16: r = small_group<T, 16>(x, L, begin, n, plan, out); break;
        default: r = small_group<T, 32>(x, L, begin, n, plan, out); break;
      }
    } else {
      const auto un = static_cast<std::size_t>(n);
      if (s.d.size() < un) {
        s.d.resize(un);
        s.q.resize(un);
      }
      if (s.x.size() < un) s.x.resize(un);
      const auto need = static_cast<std::size_t>(canonical_sum_scratch(n) + 2);
      if (s.partials.size() < need) s.partials.resize(need);
      load_group(x, L, begin, n, s.x.data());
      r = normalize_large(s.x.data(), n, plan, s.d.data(), s.q.data(), s.partials.data());
      store_group(out, L, begin, n, s.d.data());
    }
    if (r.zero_variance) ++summary.zero_variance_groups;
    if (!stats.mean.empty()) stats.mean[static_cast<std::size_t>(g)] = r.mean;
    if (!stats.std.empty()) stats.std[static_cast<std::size_t>(g)] = r.std;
  }
}

/// Checks options, sizes and rewards; returns the largest |reward| (for scaling).
/// @throws error naming the first violated precondition.
template <class T>
inline double validate_normalize(const char* fn, host_span<const T> rewards,
                                 const host_layout& L, std::size_t out_size,
                                 const advantage_options& o, const group_stats_out& stats) {
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
  double max_abs = 0.0;
  for (std::size_t i = 0; i < rewards.size(); ++i) {
    const T v = rewards[i];
    if (!is_finite(v)) {
      const char* what = v != v ? "NaN" : (v > 0 ? "+inf" : "-inf");
      fail(errc::non_finite, fn, "rewards[", i, "] is ", what);
    }
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(v)));
  }
  if (o.kind == estimator::mean_only || o.kind == estimator::rloo) {
    // x - mu and n/(n-1) (x - mu) stay below 4 max|x|: keep that inside T.
    const double limit = static_cast<double>(std::numeric_limits<T>::max()) / 4;
    if (max_abs > limit) {
      for (std::size_t i = 0; i < rewards.size(); ++i)
        if (std::fabs(static_cast<double>(rewards[i])) > limit)
          fail(errc::out_of_range, fn, "rewards[", i, "] = ", rewards[i],
               " is too large for the ", to_string(o.kind),
               " estimator (|reward| must be at most ", limit, ")");
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
