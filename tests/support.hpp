// Test support: random batches and independent reference implementations.
//
// The references are written the obvious way (long double, std::stable_sort, enumeration of
// orderings) so that they share no code with the library: a bug has to be made twice, in two
// different styles, to go unnoticed.
#pragma once

#include <shuffle_r1/shuffle_r1.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <type_traits>
#include <vector>

namespace test {

namespace sr = shuffle_r1;

/// A random batch: rewards and group sizes, of a few reward kinds.
enum class reward_kind { binary, graded, decimals, normal };

template <class T>
std::vector<T> random_rewards(std::mt19937_64& rng, std::size_t n, reward_kind kind) {
  std::vector<T> r(n);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> g(0.0, 1.0);
  const double p = u(rng);
  for (auto& x : r) {
    switch (kind) {
      case reward_kind::binary:
        x = static_cast<T>(u(rng) < p ? 1.0 : 0.0);
        break;
      case reward_kind::graded:
        x = static_cast<T>(0.9 * (u(rng) < p) + 0.1 * (u(rng) < 0.9));
        break;
      case reward_kind::decimals:
        x = static_cast<T>(std::round(u(rng) * 100.0) / 100.0);
        break;
      case reward_kind::normal:
        x = static_cast<T>(g(rng));
        break;
    }
  }
  return r;
}

/// Group sizes summing to B (ragged), each in [lo, hi].
inline std::vector<std::int64_t> random_sizes(std::mt19937_64& rng, std::size_t groups,
                                              std::int64_t lo, std::int64_t hi, bool even) {
  std::uniform_int_distribution<std::int64_t> d(lo, hi);
  std::vector<std::int64_t> s(groups);
  for (auto& x : s) {
    x = d(rng);
    if (even && x % 2) x = x + 1 <= hi ? x + 1 : x - 1;
  }
  return s;
}

inline std::vector<std::int64_t> offsets_of(const std::vector<std::int64_t>& sizes) {
  std::vector<std::int64_t> o(sizes.size() + 1, 0);
  for (std::size_t g = 0; g < sizes.size(); ++g)
    o[g + 1] = o[g] + sizes[g];
  return o;
}

/// Reference advantages in long double, straightforward formulas.
template <class T>
std::vector<long double> reference_advantages(const std::vector<T>& x,
                                              const std::vector<std::int64_t>& offsets,
                                              sr::estimator kind, int ddof, double eps) {
  std::vector<long double> a(x.size());
  long double bsum = 0, bsq = 0;
  for (T v : x)
    bsum += v;
  const long double bmean = x.empty() ? 0 : bsum / x.size();
  for (T v : x)
    bsq += (v - bmean) * (v - bmean);
  const long double bstd =
      x.size() > static_cast<std::size_t>(ddof) ? std::sqrt(bsq / (x.size() - ddof)) : 0;
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    const auto b = static_cast<std::size_t>(offsets[g]),
               e = static_cast<std::size_t>(offsets[g + 1]);
    const auto n = static_cast<long double>(e - b);
    long double sum = 0;
    bool equal = true;
    for (std::size_t i = b; i < e; ++i) {
      sum += x[i];
      equal = equal && x[i] == x[b];
    }
    const long double mean = sum / n;
    long double sq = 0;
    for (std::size_t i = b; i < e; ++i)
      sq += (x[i] - mean) * (x[i] - mean);
    const long double sd = std::sqrt(sq / (n - ddof));
    for (std::size_t i = b; i < e; ++i) {
      const long double d = x[i] - mean;
      if (equal) {
        a[i] = 0;
        continue;
      }
      switch (kind) {
        case sr::estimator::grpo:
          a[i] = d / (sd + eps);
          break;
        case sr::estimator::mean_only:
          a[i] = d;
          break;
        case sr::estimator::rloo: {
          long double others = (sum - x[i]) / (n - 1);
          a[i] = x[i] - others;
          break;
        }
        case sr::estimator::batch_std:
          a[i] = d / (bstd + eps);
          break;
      }
    }
  }
  return a;
}

/// Reference PTS on a contiguous layout: stable sort by advantage descending, outer pairs.
template <class T>
std::vector<std::int64_t> reference_pairs(const std::vector<T>& adv,
                                          const std::vector<std::int64_t>& offsets,
                                          double keep_ratio, bool drop_median = false) {
  std::vector<std::int64_t> out;
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    std::vector<std::int64_t> rows;
    for (std::int64_t r = offsets[g]; r < offsets[g + 1]; ++r)
      rows.push_back(r);
    std::stable_sort(rows.begin(), rows.end(),
                     [&](std::int64_t a, std::int64_t b) { return adv[a] > adv[b]; });
    const std::size_t n = rows.size();
    if (n % 2 && !drop_median) continue;
    const std::size_t P = n / 2;
    const auto M = static_cast<std::size_t>(static_cast<double>(P) * keep_ratio);
    for (std::size_t k = 0; k < M; ++k) {
      out.push_back(rows[k]);
      out.push_back(rows[n - 1 - k]);
    }
  }
  return out;
}

/// Exact successive-sampling probability of every ordered sequence of T distinct items drawn
/// from masses q (small K only): key = the sequence.
inline std::map<std::vector<int>, double> sequence_probabilities(const std::vector<double>& q,
                                                                 int T) {
  std::map<std::vector<int>, double> out;
  std::vector<int> seq;
  std::vector<bool> used(q.size(), false);
  const auto rec = [&](auto&& self, double prob, double left) -> void {
    if (static_cast<int>(seq.size()) == T) {
      out[seq] += prob;
      return;
    }
    for (std::size_t j = 0; j < q.size(); ++j) {
      if (used[j] || q[j] == 0.0) continue;
      used[j] = true;
      seq.push_back(static_cast<int>(j));
      self(self, prob * q[j] / left, left - q[j]);
      seq.pop_back();
      used[j] = false;
    }
  };
  rec(rec, 1.0, std::accumulate(q.begin(), q.end(), 0.0));
  return out;
}

/// Pearson chi-square statistic of observed counts against expected probabilities.
inline double chi_square(const std::vector<double>& observed, const std::vector<double>& prob,
                         double total) {
  double chi = 0;
  for (std::size_t i = 0; i < observed.size(); ++i) {
    const double e = prob[i] * total;
    if (e > 0) chi += (observed[i] - e) * (observed[i] - e) / e;
  }
  return chi;
}

/// Upper bound of chi-square with `dof` degrees of freedom at tail probability below 1e-9
/// (Wilson-Hilferty with z = 6.1, plus a margin): a correct sampler exceeds it essentially
/// never, while a wrong distribution over many samples exceeds it by orders of magnitude.
inline double chi_square_limit(int dof) {
  const double k = dof, z = 6.1;
  const double t = 1.0 - 2.0 / (9.0 * k) + z * std::sqrt(2.0 / (9.0 * k));
  return k * t * t * t + 10.0;
}

/// ULP distance between two floats/doubles of the same sign class.
template <class T>
long long ulp_distance(T a, T b) {
  using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  I ia, ib;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  if (ia < 0) ia = std::numeric_limits<I>::min() - ia;
  if (ib < 0) ib = std::numeric_limits<I>::min() - ib;
  return static_cast<long long>(ia > ib ? ia - ib : ib - ia);
}

/// Sets the floating-point rounding mode for its lifetime and restores the caller's after, also
/// when a check throws.
class rounding_mode {
 public:
  explicit rounding_mode(int mode) : saved_(std::fegetround()) { std::fesetround(mode); }
  ~rounding_mode() { std::fesetround(saved_); }
  rounding_mode(const rounding_mode&) = delete;
  rounding_mode& operator=(const rounding_mode&) = delete;

 private:
  int saved_;
};

/// Runs f(mode) rounding to nearest, then toward -infinity (where x - x and -0 + 0 are -0): the
/// kernels must round as the portable code does in both.
template <class F>
void for_each_rounding(F&& f) {
  for (const int mode : {FE_TONEAREST, FE_DOWNWARD}) {
    const rounding_mode guard(mode);
    f(mode);
  }
}

}  // namespace test
