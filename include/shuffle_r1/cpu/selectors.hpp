/// @file cpu/selectors.hpp
/// @brief CPU implementation of the selection rules beside PTS. Internal: include
/// <shuffle_r1/selectors.hpp>.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/pairs.hpp>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/detail/int_math.hpp>
#include <shuffle_r1/detail/sampler.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/random.hpp>
#include <shuffle_r1/research_types.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace shuffle_r1 {

/// What select_rows did.
struct selection_summary {
  std::int64_t rows = 0;         ///< entries written to `rows`
  std::int64_t groups = 0;       ///< G
  std::int64_t groups_kept = 0;  ///< groups with at least one selected row
  /// Groups that had room for rows (2 M_g > 0) but whose rows the rule filtered out: for
  /// `dapo` the prompts a trainer must refill, for `std_topk` the low-std groups, for
  /// `resample` the zero-mass groups under zero_mass_policy::drop. 0 for the pair rules and
  /// `pods`.
  std::int64_t groups_dropped = 0;
};

namespace detail {

/// Random streams of the research toolkit (high byte of counter word 1). ABS uses 0 and 1
/// (detail/sampler.hpp); these start at 0x10 so that no counter can coincide with an ABS one.
enum class research_stream : std::uint32_t {
  select_random = 0x10,  ///< selector::random: one key per (group, pair)
  resample = 0x11,       ///< selector::resample: one word per (group, draw)
  permute = 0x12,        ///< permute_pairs: one key per pair
};

/// The 64-bit random word of item `index` of `group` in `stream` at (seed, step): Philox4x32-10
/// with counter {index, stream << 24 | group >> 32, group mod 2^32, step}, words 0 and 1.
/// @pre group < 2^56, step < 2^32.
inline std::uint64_t research_word(std::uint64_t seed, std::uint32_t step, research_stream stream,
                                   std::uint64_t group, std::uint32_t index) noexcept {
  const philox_block counter{{index,
                              (static_cast<std::uint32_t>(stream) << 24) |
                                  static_cast<std::uint32_t>((group >> 32) & 0xFFFFFFu),
                              static_cast<std::uint32_t>(group), step}};
  const philox_block out = philox4x32_10(counter, philox_key_from_seed(seed));
  return join64(out.v[0], out.v[1]);
}

/// Whether a rule reads the rewards.
inline bool selector_reads_rewards(const selector_options& o) noexcept {
  return o.kind == selector::dapo || o.kind == selector::std_topk ||
         (o.kind == selector::resample && !o.resample_advantages);
}

/// Checks the options that do not depend on the layout. @throws error naming the option.
inline void validate_selector_options(const char* fn, const selector_options& o) {
  switch (o.kind) {
    case selector::pts:
    case selector::pods:
    case selector::dapo:
    case selector::std_topk:
    case selector::random:
    case selector::top:
    case selector::bottom:
    case selector::resample:
      break;
    default:
      fail(errc::invalid_argument, fn, "options.kind has no valid selector value (",
           static_cast<int>(o.kind), ")");
  }
  if (o.std_mode != std_filter::top_k && o.std_mode != std_filter::top_p)
    fail(errc::invalid_argument, fn, "options.std_mode has no valid value (",
         static_cast<int>(o.std_mode), ")");
  if (o.zero_mass != zero_mass_policy::uniform && o.zero_mass != zero_mass_policy::drop)
    fail(errc::invalid_argument, fn, "options.zero_mass has no valid value (",
         static_cast<int>(o.zero_mass), ")");
  if (!is_finite(o.tolerance) || o.tolerance < 0.0)
    fail(errc::invalid_argument, fn, "options.tolerance is ", o.tolerance,
         ", expected a finite value >= 0");
  if (!(o.group_ratio > 0.0 && o.group_ratio <= 1.0))
    fail(errc::invalid_argument, fn, "options.group_ratio is ", o.group_ratio,
         ", expected a value in (0, 1]");
  if (!is_finite(o.power) || o.power < 0.0)
    fail(errc::invalid_argument, fn, "options.power is ", o.power,
         ", expected a finite value >= 0");
  if (o.step < 0 || o.step > 0xFFFFFFFFll)
    fail(errc::invalid_argument, fn, "options.step is ", o.step, ", expected 0 <= step < 2^32");
}

/// Rows group g may contribute: 2 M_g, or n_g for dapo / std_topk under keep_all_rows.
inline std::int64_t selector_capacity(const host_layout& L, std::int64_t g,
                                      const selector_options& o) noexcept {
  const std::int64_t n = L.size(g);
  if (o.keep_all_rows && (o.kind == selector::dapo || o.kind == selector::std_topk)) return n;
  return 2 * pairs_kept(pairs_available(n), o.pairs);
}

/// Validates layout-dependent options (as select_pairs) and returns sum of the capacities.
inline std::int64_t selector_plan(const char* fn, const host_layout& L, const selector_options& o) {
  validate_selector_options(fn, o);
  (void)validate_pairs_plan(fn, L, o.pairs);
  if (L.groups >= (std::int64_t{1} << 56))
    fail(errc::out_of_range, fn, "there are ", L.groups, " groups; at most 2^56 are supported");
  std::int64_t total = 0;
  for (std::int64_t g = 0; g < L.groups; ++g) {
    const std::int64_t cap = selector_capacity(L, g, o);
    if ((o.kind == selector::random || o.kind == selector::resample) && cap > 0xFFFFFFFFll)
      fail(errc::out_of_range, fn, "group ", g, " would draw ", cap,
           " items; random rules support at most 2^32 per group");
    total += cap;
  }
  return total;
}

}  // namespace detail

namespace detail::cpu {

/// The rows of group g sorted by value descending, ties in batch order (as PTS sorts).
template <class T>
inline void sort_group_desc(const T* values, const host_layout& L, std::int64_t g,
                            std::vector<std::int64_t>& rows) {
  const std::int64_t begin = L.begin(g), n = L.size(g);
  rows.resize(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < n; ++k)
    rows[k] = L.row(begin + k);
  // Rows of a group are increasing in batch order, so a stable sort keeps ties in that order.
  std::stable_sort(rows.begin(), rows.end(),
                   [&](std::int64_t a, std::int64_t b) { return values[a] > values[b]; });
}

/// PODS: per group, the 2M rows of largest variance among "top i plus bottom 2M - i".
/// Deterministic: strict FP, sequential sums in sorted order.
template <class T>
SHUFFLE_R1_STRICT_FP inline void pods_kernel(const T* adv, const host_layout& L,
                                             const selector_options& o, std::int64_t* out,
                                             selection_summary& sum) {
  SHUFFLE_R1_STRICT_FP_BODY
  std::vector<std::int64_t> sorted;
  std::vector<double> d, top1, top2, bot1, bot2;
  // Every buffer before the first write to out (a failed allocation must leave it untouched);
  // within these capacities the per-group resizes do not allocate.
  const auto n_max = static_cast<std::size_t>(L.largest());
  sorted.reserve(n_max);
  d.reserve(n_max);
  for (std::vector<double>* v : {&top1, &top2, &bot1, &bot2})
    v->reserve(n_max + 1);  // m + 1 <= n + 1
  std::int64_t w = 0;
  for (std::int64_t g = 0; g < L.groups; ++g) {
    const std::int64_t n = L.size(g);
    const std::int64_t half = pairs_kept(pairs_available(n), o.pairs), m = 2 * half;
    if (m == 0) continue;
    sort_group_desc(adv, L, g, sorted);
    std::int64_t best = half;  // all-equal groups: every subset has variance 0; take PTS's rows
    if (adv[sorted[0]] != adv[sorted[static_cast<std::size_t>(n - 1)]]) {
      d.resize(static_cast<std::size_t>(n));
      double s = 0.0;
      for (std::int64_t k = 0; k < n; ++k)
        s = fp::add(s, static_cast<double>(adv[sorted[k]]));
      const double c = fp::div(s, static_cast<double>(n));
      for (std::int64_t k = 0; k < n; ++k)
        d[k] = fp::sub(static_cast<double>(adv[sorted[k]]), c);
      // top*[i]: sums of d and d^2 over the i largest; bot*[j]: over the j smallest.
      top1.assign(static_cast<std::size_t>(m + 1), 0.0);
      top2.assign(static_cast<std::size_t>(m + 1), 0.0);
      bot1.assign(static_cast<std::size_t>(m + 1), 0.0);
      bot2.assign(static_cast<std::size_t>(m + 1), 0.0);
      for (std::int64_t i = 0; i < m; ++i) {
        const double hi = d[i], lo = d[n - 1 - i];
        top1[i + 1] = fp::add(top1[i], hi);
        top2[i + 1] = fp::add(top2[i], fp::mul(hi, hi));
        bot1[i + 1] = fp::add(bot1[i], lo);
        bot2[i + 1] = fp::add(bot2[i], fp::mul(lo, lo));
      }
      // m * variance of candidate i: sum d^2 - (sum d)^2 / m.
      const auto score = [&](std::int64_t i) {
        const double s1 = fp::add(top1[i], bot1[m - i]), s2 = fp::add(top2[i], bot2[m - i]);
        return fp::sub(s2, fp::div(fp::mul(s1, s1), static_cast<double>(m)));
      };
      double smax = score(0);
      for (std::int64_t i = 1; i <= m; ++i)
        smax = std::max(smax, score(i));
      // Mathematically equal variances can differ by rounding: candidates within a relative
      // 1e-9 of the best tie, and ties go to the i closest to M (PTS's rows), then the smaller.
      const double floor_score = fp::sub(smax, fp::mul(1e-9, smax));
      std::int64_t best_dist = std::numeric_limits<std::int64_t>::max();
      for (std::int64_t i = 0; i <= m; ++i) {
        if (score(i) < floor_score) continue;
        const std::int64_t dist = i > half ? i - half : half - i;
        if (dist < best_dist) {
          best_dist = dist;
          best = i;
        }
      }
    }
    for (std::int64_t k = 0; k < best; ++k)
      out[w++] = sorted[k];
    for (std::int64_t k = n - m + best; k < n; ++k)
      out[w++] = sorted[k];
    ++sum.groups_kept;
  }
  sum.rows = w;
}

/// Sample standard deviation (ddof 1) of the group's rewards in double; exactly 0 when all are
/// equal or n < 2.
template <class T>
SHUFFLE_R1_STRICT_FP inline double group_reward_std(const T* x, const host_layout& L,
                                                    std::int64_t g) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  const std::int64_t begin = L.begin(g), n = L.size(g);
  if (n < 2) return 0.0;
  double s = 0.0, lo = static_cast<double>(x[L.row(begin)]), hi = lo;
  for (std::int64_t k = 0; k < n; ++k) {
    const double v = static_cast<double>(x[L.row(begin + k)]);
    s = fp::add(s, v);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (lo == hi) return 0.0;
  const double mean = fp::div(s, static_cast<double>(n));
  double q = 0.0;
  for (std::int64_t k = 0; k < n; ++k) {
    const double dv = fp::sub(static_cast<double>(x[L.row(begin + k)]), mean);
    q = fp::add(q, fp::mul(dv, dv));
  }
  return fp::sqrt(fp::div(q, static_cast<double>(n - 1)));
}

/// Writes the first `count` rows of group g (batch order).
inline std::int64_t emit_first_rows(const host_layout& L, std::int64_t g, std::int64_t count,
                                    std::int64_t* out) noexcept {
  const std::int64_t begin = L.begin(g);
  for (std::int64_t k = 0; k < count; ++k)
    out[k] = L.row(begin + k);
  return count;
}

/// DAPO dynamic sampling: groups with max - min <= tolerance are dropped.
template <class T>
inline void dapo_kernel(const T* rewards, const host_layout& L, const selector_options& o,
                        std::int64_t* out, selection_summary& sum) {
  std::int64_t w = 0;
  for (std::int64_t g = 0; g < L.groups; ++g) {
    const std::int64_t cap = selector_capacity(L, g, o);
    if (cap == 0) continue;
    const std::int64_t begin = L.begin(g), n = L.size(g);
    double lo = static_cast<double>(rewards[L.row(begin)]), hi = lo;
    for (std::int64_t k = 1; k < n; ++k) {
      const double v = static_cast<double>(rewards[L.row(begin + k)]);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (hi - lo <= o.tolerance) {
      ++sum.groups_dropped;
      continue;
    }
    w += emit_first_rows(L, g, cap, out + w);
    ++sum.groups_kept;
  }
  sum.rows = w;
}

/// RAGEN StarPO-S: the groups of largest reward std, top-k or top-p.
template <class T>
SHUFFLE_R1_STRICT_FP inline void std_topk_kernel(const T* rewards, const host_layout& L,
                                                 const selector_options& o, std::int64_t* out,
                                                 selection_summary& sum) {
  SHUFFLE_R1_STRICT_FP_BODY
  std::vector<std::int64_t> cand;
  std::vector<double> sd(static_cast<std::size_t>(L.groups), 0.0);
  for (std::int64_t g = 0; g < L.groups; ++g) {
    if (selector_capacity(L, g, o) == 0) continue;
    cand.push_back(g);
    sd[g] = group_reward_std(rewards, L, g);
  }
  std::stable_sort(cand.begin(), cand.end(),
                   [&](std::int64_t a, std::int64_t b) { return sd[a] > sd[b]; });
  std::size_t keep = 0;
  if (o.std_mode == std_filter::top_k) {
    keep = static_cast<std::size_t>(
        std::floor(fp::mul(static_cast<double>(cand.size()), o.group_ratio)));
  } else {
    double total = 0.0;  // summed in rank order, so the running sum ends exactly at total
    for (const std::int64_t g : cand)
      total = fp::add(total, sd[g]);
    if (total > 0.0) {
      const double target = fp::mul(o.group_ratio, total);
      double run = 0.0;
      while (keep < cand.size() && run < target)
        run = fp::add(run, sd[cand[keep++]]);
    }
  }
  std::vector<char> kept(static_cast<std::size_t>(L.groups), 0);
  for (std::size_t i = 0; i < keep; ++i)
    kept[static_cast<std::size_t>(cand[i])] = 1;
  std::int64_t w = 0;
  for (std::int64_t g = 0; g < L.groups; ++g) {
    if (!kept[g]) continue;
    w += emit_first_rows(L, g, selector_capacity(L, g, o), out + w);
    ++sum.groups_kept;
  }
  sum.groups_dropped = static_cast<std::int64_t>(cand.size() - keep);
  sum.rows = w;
}

/// Pair rules: PTS itself, or M of each group's max-min pairs (random, top, bottom).
template <class T>
inline void pair_rule_kernel(const T* adv, const host_layout& L, const selector_options& o,
                             std::int64_t* out, selection_summary& sum) {
  pairs_scratch ps;
  if (o.kind == selector::pts) {
    sum.rows = 2 * pairs_kernel<T>(adv, L, o.pairs, out, nullptr, ps);
    for (std::int64_t g = 0; g < L.groups; ++g)
      sum.groups_kept += pairs_kept(pairs_available(L.size(g)), o.pairs) > 0;
    return;
  }
  pair_options all = o.pairs;  // every max-min pair, with its weight
  all.keep_pairs = -1;
  all.keep_ratio = 1.0;
  std::int64_t total = 0;
  for (std::int64_t g = 0; g < L.groups; ++g)
    total += pairs_available(L.size(g));
  std::vector<std::int64_t> pairs(static_cast<std::size_t>(2 * total));
  std::vector<T> weights(static_cast<std::size_t>(total));
  (void)pairs_kernel<T>(adv, L, all, pairs.data(), weights.data(), ps);
  std::vector<std::int64_t> idx;
  std::vector<std::uint64_t> keys;
  std::vector<char> chosen;
  // Every buffer before the first write to out (P <= n / 2 pairs per group).
  const auto p_max = static_cast<std::size_t>(L.largest() / 2);
  idx.reserve(p_max);
  if (o.kind == selector::random) keys.reserve(p_max);
  chosen.reserve(p_max);
  std::int64_t base = 0, w = 0;
  const auto step = static_cast<std::uint32_t>(o.step);
  for (std::int64_t g = 0; g < L.groups; ++g) {
    const std::int64_t P = pairs_available(L.size(g)), M = pairs_kept(P, o.pairs);
    if (M > 0) {
      idx.resize(static_cast<std::size_t>(P));
      for (std::int64_t k = 0; k < P; ++k)
        idx[k] = k;
      const T* wg = weights.data() + base;
      if (o.kind == selector::random) {
        keys.resize(static_cast<std::size_t>(P));
        for (std::int64_t k = 0; k < P; ++k)
          keys[k] = research_word(o.seed, step, research_stream::select_random,
                                  static_cast<std::uint64_t>(g), static_cast<std::uint32_t>(k));
        std::sort(idx.begin(), idx.end(), [&](std::int64_t a, std::int64_t b) {
          return keys[a] < keys[b] || (keys[a] == keys[b] && a < b);
        });
      } else {
        std::sort(idx.begin(), idx.end(), [&](std::int64_t a, std::int64_t b) {
          return wg[a] > wg[b] || (wg[a] == wg[b] && a < b);
        });
        if (o.kind == selector::bottom) std::reverse(idx.begin(), idx.end());
      }
      chosen.assign(static_cast<std::size_t>(P), 0);
      for (std::int64_t i = 0; i < M; ++i)
        chosen[static_cast<std::size_t>(idx[i])] = 1;
      for (std::int64_t k = 0; k < P; ++k) {
        if (!chosen[k]) continue;
        out[w++] = pairs[static_cast<std::size_t>(2 * (base + k))];
        out[w++] = pairs[static_cast<std::size_t>(2 * (base + k) + 1)];
      }
      ++sum.groups_kept;
    }
    base += P;
  }
  sum.rows = w;
}

/// Importance resampling with replacement: 2M draws per group, mass |v|^p (integer masses as
/// ABS, so the draws are bit-identical everywhere).
template <class T>
inline void resample_kernel(const T* values, const host_layout& L, const selector_options& o,
                            std::int64_t* out, selection_summary& sum) {
  std::vector<std::uint64_t> cum;
  cum.reserve(static_cast<std::size_t>(L.largest()));  // before the first write to out
  std::int64_t w = 0;
  const auto step = static_cast<std::uint32_t>(o.step);
  for (std::int64_t g = 0; g < L.groups; ++g) {
    const std::int64_t draws = selector_capacity(L, g, o);
    if (draws == 0) continue;
    const std::int64_t begin = L.begin(g), n = L.size(g);
    double w_max = 0.0;
    for (std::int64_t k = 0; k < n; ++k)
      w_max = std::max(w_max, std::fabs(static_cast<double>(values[L.row(begin + k)])));
    const bool uniform = o.power == 0.0 || w_max == 0.0;
    if (w_max == 0.0 && o.power != 0.0 && o.zero_mass == zero_mass_policy::drop) {
      ++sum.groups_dropped;
      continue;
    }
    mass_plan plan;
    plan.kind = transform::power;
    plan.coeff = o.power;
    plan.w_ref = w_max;
    plan.unit = pow2(mass_bits(n));
    if (!uniform && o.power != 1.0) plan.q_ref = det_log(w_max);
    cum.resize(static_cast<std::size_t>(n));
    std::uint64_t total = 0;
    for (std::int64_t k = 0; k < n; ++k) {
      total +=
          uniform ? 1u : mass_of(plan, std::fabs(static_cast<double>(values[L.row(begin + k)])));
      cum[k] = total;
    }
    for (std::int64_t d = 0; d < draws; ++d) {
      const std::uint64_t x =
          research_word(o.seed, step, research_stream::resample, static_cast<std::uint64_t>(g),
                        static_cast<std::uint32_t>(d));
      const std::uint64_t r = mulhi64(x, total);  // in [0, total)
      const auto j = std::upper_bound(cum.begin(), cum.end(), r) - cum.begin();
      out[w++] = L.row(begin + j);
    }
    ++sum.groups_kept;
  }
  sum.rows = w;
}

}  // namespace detail::cpu
}  // namespace shuffle_r1
