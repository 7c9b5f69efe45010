// normalize_advantages: worked numbers of SPEC.md, exact zeros, invariants, layouts, policies,
// numerics at the edges, and every error path.
#include "support.hpp"

namespace sr = shuffle_r1;

long long allocation_count();  // alloc_counter.cpp

namespace {
template <class T>
std::vector<T> normalize(const std::vector<T>& r, std::int64_t G, std::int64_t n,
                         const sr::advantage_options& o = {}) {
  std::vector<T> a(r.size());
  sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{G, n}, a, o);
  return a;
}
const std::vector<double> spec_group = {1, 1, 0, 0, 0, 1, 0, 0};
}  // namespace

TEST_CASE_TEMPLATE("advantage: worked numbers of SPEC.md section 2", T, float, double) {
  const std::vector<T> r(spec_group.begin(), spec_group.end());
  struct row {
    sr::estimator kind;
    int ddof;
    double eps;
    double one, zero;
  };
  const row table[] = {
      {sr::estimator::grpo, 1, 1e-6, 1.2076, -0.7246},
      {sr::estimator::grpo, 1, 1e-4, 1.2074, -0.7244},
      {sr::estimator::grpo, 0, 1e-8, 1.2910, -0.7746},
      {sr::estimator::mean_only, 1, 1e-6, 0.6250, -0.3750},
      {sr::estimator::rloo, 1, 1e-6, 0.7143, -0.4286},
  };
  for (const row& t : table) {
    CAPTURE(sr::to_string(t.kind));
    CAPTURE(t.ddof);
    CAPTURE(t.eps);
    sr::advantage_options o;
    o.kind = t.kind;
    o.ddof = t.ddof;
    o.eps = t.eps;
    const std::vector<T> a = normalize(r, 1, 8, o);
    for (std::size_t i = 0; i < 8; ++i) {
      const double want = r[i] == 1 ? t.one : t.zero;
      CHECK(std::fabs(static_cast<double>(a[i]) - want) < 6e-5);
    }
  }
  // sigma values of the spec: ddof 1 -> 0.517549, ddof 0 -> 0.484123
  std::vector<double> mean(1), sd(1);
  std::vector<T> a(8);
  sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{1, 8}, a, {}, {mean, sd});
  CHECK(mean[0] == doctest::Approx(0.375).epsilon(1e-12));
  CHECK(sd[0] == doctest::Approx(0.517549).epsilon(1e-6));
  sr::advantage_options o0;
  o0.ddof = 0;
  sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{1, 8}, a, o0, {mean, sd});
  CHECK(sd[0] == doctest::Approx(0.484123).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("advantage: zero-variance groups get exactly 0 under every estimator", T, float,
                   double) {
  // A group of 0.9s: float32 arithmetic as in the release gives about -0.056 here.
  for (const double value : {0.9, 0.1, -3.7, 0.0, 1e-30, 123456.789}) {
    for (const std::int64_t n : {2, 3, 8, 16, 17, 32, 33, 100}) {
      for (const sr::estimator kind : {sr::estimator::grpo, sr::estimator::mean_only,
                                       sr::estimator::rloo, sr::estimator::batch_std}) {
        CAPTURE(value);
        CAPTURE(n);
        const std::vector<T> r(static_cast<std::size_t>(n), static_cast<T>(value));
        sr::advantage_options o;
        o.kind = kind;
        std::vector<T> a(r.size(), T(7));
        const sr::advantage_summary s =
            sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{1, n}, a, o);
        CHECK(s.zero_variance_groups == 1);
        for (T x : a)
          CHECK(test::ulp_distance(x, T(0)) == 0);  // +0 exactly
      }
    }
  }
}

TEST_CASE_TEMPLATE("advantage: grpo gives per-group mean 0 and sample std 1", T, float, double) {
  std::mt19937_64 rng(2024);
  for (int trial = 0; trial < 60; ++trial) {
    const std::int64_t n = 2 + trial % 70;  // covers 2..71: small, padded and chunked groups
    const auto kind = static_cast<test::reward_kind>(trial % 4);
    std::vector<T> r = test::random_rewards<T>(rng, static_cast<std::size_t>(3 * n), kind);
    sr::advantage_options o;
    o.eps = 0.0;
    const std::vector<T> a = normalize(r, 3, n, o);
    for (int g = 0; g < 3; ++g) {
      bool equal = true;
      for (std::int64_t i = 0; i < n; ++i)
        equal = equal && r[g * n + i] == r[g * n];
      long double s = 0, s2 = 0;
      for (std::int64_t i = 0; i < n; ++i)
        s += a[g * n + i];
      const long double m = s / n;
      for (std::int64_t i = 0; i < n; ++i)
        s2 += (a[g * n + i] - m) * (a[g * n + i] - m);
      CAPTURE(n);
      CAPTURE(trial);
      const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
      CHECK(std::fabs(static_cast<double>(m)) < tol * 10);
      if (!equal) CHECK(std::fabs(static_cast<double>(std::sqrt(s2 / (n - 1))) - 1.0) < tol * 10);
    }
  }
}

TEST_CASE_TEMPLATE("advantage: every estimator matches a long-double reference", T, float, double) {
  std::mt19937_64 rng(77);
  for (int trial = 0; trial < 40; ++trial) {
    const auto sizes = test::random_sizes(rng, 1 + trial % 9, 2, trial % 2 ? 40 : 12, false);
    const auto off = test::offsets_of(sizes);
    const std::vector<T> r = test::random_rewards<T>(rng, static_cast<std::size_t>(off.back()),
                                                     static_cast<test::reward_kind>(trial % 4));
    for (const sr::estimator kind : {sr::estimator::grpo, sr::estimator::mean_only,
                                     sr::estimator::rloo, sr::estimator::batch_std}) {
      for (const int ddof : {0, 1}) {
        sr::advantage_options o;
        o.kind = kind;
        o.ddof = ddof;
        o.eps = trial % 3 == 0 ? 0.0 : 1e-6;
        std::vector<T> a(r.size());
        sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a, o);
        const auto ref = test::reference_advantages(r, off, kind, ddof, o.eps);
        for (std::size_t i = 0; i < r.size(); ++i) {
          CAPTURE(i);
          CAPTURE(sr::to_string(kind));
          const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-13;
          CHECK(std::fabs(static_cast<double>(a[i]) - static_cast<double>(ref[i])) <=
                tol * (1 + std::fabs(static_cast<double>(ref[i]))));
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("advantage: float results are the correctly rounded double results", T, float,
                   double) {
  // Everything is computed in double and rounded once to T: float outputs must equal the
  // double outputs rounded to float, for the same (float-representable) rewards.
  std::mt19937_64 rng(3);
  const std::vector<float> rf =
      test::random_rewards<float>(rng, 16 * 50, test::reward_kind::normal);
  const std::vector<double> rd(rf.begin(), rf.end());
  const auto af = normalize(rf, 50, 16);
  const auto ad = normalize(rd, 50, 16);
  for (std::size_t i = 0; i < af.size(); ++i)
    CHECK(af[i] == static_cast<float>(ad[i]));
}

TEST_CASE_TEMPLATE("advantage: ragged, indexed and id layouts equal the uniform result", T, float,
                   double) {
  std::mt19937_64 rng(99);
  const std::int64_t G = 23, n = 16;
  const std::vector<T> r = test::random_rewards<T>(rng, G * n, test::reward_kind::graded);
  const std::vector<T> uniform = normalize(r, G, n);
  // ragged with the same boundaries
  std::vector<std::int64_t> off(G + 1);
  for (std::int64_t g = 0; g <= G; ++g)
    off[g] = g * n;
  std::vector<T> a(r.size());
  sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a);
  CHECK(a == uniform);
  // shuffle the rows, keep each row's group id: the advantage of every row must follow it
  std::vector<std::int64_t> perm(r.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<T> r2(r.size());
  std::vector<std::int64_t> ids(r.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    r2[i] = r[perm[i]];
    ids[i] = perm[i] / n;
  }
  // rows keep batch order inside a group: reorder the uniform result's groups the same way
  // (advantages depend on the multiset of a group's rewards only, not their order... except for
  // rounding of the canonical sum, which follows batch order; compare with a tolerance)
  std::vector<T> a2(r.size());
  sr::normalize_advantages(sr::cpu, r2, sr::id_groups<std::int64_t>{ids}, a2);
  for (std::size_t i = 0; i < perm.size(); ++i) {
    CAPTURE(i);
    CHECK(std::fabs(static_cast<double>(a2[i] - uniform[perm[i]])) <=
          4e-7 * (1 + std::fabs(double(uniform[perm[i]]))));
  }
  // the explicit indexed layout gives bit-identical results to id_groups
  std::vector<std::int64_t> o(r.size() + 1), rows(r.size());
  const auto g = sr::groups_from_ids(sr::cpu, ids, o, rows);
  std::vector<T> a3(r.size());
  sr::normalize_advantages(sr::cpu, r2, g, a3);
  CHECK(a3 == a2);
}

TEST_CASE_TEMPLATE("advantage: in-place normalization gives the same result", T, float, double) {
  std::mt19937_64 rng(5);
  std::vector<T> r = test::random_rewards<T>(rng, 16 * 9, test::reward_kind::normal);
  const std::vector<T> expected = normalize(r, 9, 16);
  sr::normalize_advantages(sr::cpu, sr::host_span<const T>(r), sr::uniform_groups{9, 16},
                           sr::host_span<T>(r));
  CHECK(r == expected);
  // With statistics, and zero-variance groups, whose reported mean is their common reward: the
  // SIMD kernels (groups of 8, 16, 32) had read it back after writing the advantages over it.
  for (const std::int64_t n : {2, 5, 8, 16, 32, 64}) {
    for (const sr::estimator kind : {sr::estimator::grpo, sr::estimator::mean_only}) {
      const std::int64_t G = 70;
      std::vector<T> x =
          test::random_rewards<T>(rng, static_cast<std::size_t>(G * n), test::reward_kind::graded);
      for (std::int64_t g = 0; g < G; g += 3)
        for (std::int64_t i = 0; i < n; ++i)
          x[static_cast<std::size_t>(g * n + i)] = T(0.25) * static_cast<T>(g % 5 + 1);
      sr::advantage_options o;
      o.kind = kind;
      const sr::uniform_groups groups{G, n};
      std::vector<T> a(x.size());
      std::vector<double> m1(G), s1(G), m2(G), s2(G);
      sr::normalize_advantages(sr::cpu, x, groups, a, o, {m1, s1});
      sr::normalize_advantages(sr::cpu, sr::host_span<const T>(x), groups, sr::host_span<T>(x), o,
                               {m2, s2});
      CAPTURE(n);
      CHECK(x == a);
      CHECK(m2 == m1);
      CHECK(s2 == s1);
      CHECK(m1[3] == 1.0);  // group 3 is constant with reward 0.25 * (3 % 5 + 1) = 1
    }
  }
}

TEST_CASE_TEMPLATE("advantage: a workspace gives the same results and allocates nothing once sized",
                   T, float, double) {
  std::mt19937_64 rng(12);
  const std::int64_t G = 300;
  sr::normalize_workspace ws;
  CHECK(ws.bytes() == 0);
  const auto check_layout = [&](const auto& groups, std::int64_t B, sr::estimator kind) {
    const std::vector<T> r =
        test::random_rewards<T>(rng, static_cast<std::size_t>(B), test::reward_kind::graded);
    sr::advantage_options o;
    o.kind = kind;
    std::vector<T> expected(r.size());
    std::vector<double> m0(G), s0(G);
    sr::normalize_advantages(sr::cpu, r, groups, expected, o, {m0, s0});
    for (int call = 0; call < 3; ++call) {
      std::vector<T> a(r.size(), T(-5));
      std::vector<double> m(G, -5), s(G, -5);
      const long long before = allocation_count();
      sr::normalize_advantages(sr::cpu, r, groups, a, o, {m, s}, ws);
      if (call > 0) CHECK(allocation_count() - before == 0);  // sized by the first call
      CHECK(a == expected);
      CHECK(m == m0);
      CHECK(s == s0);
    }
  };
  for (const sr::estimator kind : {sr::estimator::grpo, sr::estimator::batch_std}) {
    CAPTURE(sr::to_string(kind));
    check_layout(sr::uniform_groups{G, 16}, G * 16, kind);  // the SIMD path on AVX2 / AVX-512
    check_layout(sr::uniform_groups{G, 5}, G * 5, kind);
    std::vector<std::int64_t> offsets(G + 1, 0);
    for (std::int64_t g = 0; g < G; ++g)
      offsets[static_cast<std::size_t>(g + 1)] = offsets[static_cast<std::size_t>(g)] + 2 + g % 40;
    check_layout(sr::ragged_groups{offsets}, offsets.back(), kind);  // groups up to 41 rows
  }
  CHECK(ws.bytes() > 0);
  // A refused call keeps the workspace usable.
  std::vector<T> bad(16 * G, T(1));
  bad[7] = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> out(bad.size(), T(-5));
  CHECK_THROWS_AS(
      sr::normalize_advantages(sr::cpu, bad, sr::uniform_groups{G, 16}, out, {}, {}, ws),
      sr::error);
  CHECK(out == std::vector<T>(bad.size(), T(-5)));
  check_layout(sr::uniform_groups{G, 16}, G * 16, sr::estimator::grpo);
  ws.release();
  CHECK(ws.bytes() == 0);
  // A group of 1000 rows, then batch_std on 100 rows (which resizes the squares buffer to the
  // batch), then the large group again: its buffers must be sized again, each on its own (the
  // squares had been left at 100 entries while the kernel wrote 1000).
  const std::vector<T> big = test::random_rewards<T>(rng, 1000, test::reward_kind::normal);
  const std::vector<T> small = test::random_rewards<T>(rng, 100, test::reward_kind::normal);
  std::vector<T> a1(1000), a2(100), a3(1000);
  sr::advantage_options bstd;
  bstd.kind = sr::estimator::batch_std;
  sr::normalize_advantages(sr::cpu, big, sr::uniform_groups{1, 1000}, a1, {}, {}, ws);
  sr::normalize_advantages(sr::cpu, small, sr::uniform_groups{10, 10}, a2, bstd, {}, ws);
  sr::normalize_advantages(sr::cpu, big, sr::uniform_groups{1, 1000}, a3, {}, {}, ws);
  CHECK(ws.scratch().q.size() >= 1000);
  CHECK(ws.scratch().d.size() >= 1000);
  CHECK(a3 == a1);
}

TEST_CASE(
    "advantage: outputs large enough for non-temporal stores equal those computed in pieces") {
  // 2^18 groups of 16 floats: 16 MiB of output, the threshold of the streaming stores of the AVX2
  // kernel (with the output aligned to 32 bytes); each half alone is written normally. Groups
  // are independent, so both must agree bit for bit.
  const std::int64_t G = std::int64_t{1} << 18, n = 16, B = G * n;
  std::vector<float> r(static_cast<std::size_t>(B));
  sr::synthetic_rewards(G, n, 31, sr::host_span<float>(r));
  std::vector<float> storage(static_cast<std::size_t>(B + 8), -5.0f);
  std::size_t skip = 0;
  while (reinterpret_cast<std::uintptr_t>(storage.data() + skip) % 32 != 0)
    ++skip;
  const sr::host_span<float> whole(storage.data() + skip, static_cast<std::size_t>(B));
  std::vector<double> mean(static_cast<std::size_t>(G)), sd(static_cast<std::size_t>(G));
  sr::normalize_advantages(sr::cpu, sr::host_span<const float>(r), sr::uniform_groups{G, n}, whole,
                           {}, {mean, sd});
  std::vector<float> piece(static_cast<std::size_t>(B / 2));
  std::vector<double> pm(static_cast<std::size_t>(G / 2)), ps(static_cast<std::size_t>(G / 2));
  std::int64_t mismatches = 0;
  for (std::int64_t half = 0; half < 2; ++half) {
    const std::size_t off = static_cast<std::size_t>(half * B / 2);
    sr::normalize_advantages(sr::cpu, sr::host_span<const float>(r.data() + off, piece.size()),
                             sr::uniform_groups{G / 2, n}, sr::host_span<float>(piece), {},
                             {pm, ps});
    for (std::size_t i = 0; i < piece.size(); ++i)
      mismatches += piece[i] != whole[off + i];
    for (std::size_t g = 0; g < pm.size(); ++g)
      mismatches += pm[g] != mean[off / n + g] || ps[g] != sd[off / n + g];
  }
  CHECK(mismatches == 0);
  CHECK(storage[skip + static_cast<std::size_t>(B)] == -5.0f);  // nothing past the end
  if (skip > 0) CHECK(storage[skip - 1] == -5.0f);
}

TEST_CASE_TEMPLATE("advantage: singleton policies", T, float, double) {
  const std::vector<T> r = {T(0.5), T(1), T(0), T(2)};  // groups: {0.5}, {1, 0}, {2}
  const std::vector<std::int64_t> off = {0, 1, 3, 4};
  std::vector<T> a(4, T(-9));
  CHECK_THROWS_WITH_AS(sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a),
                       doctest::Contains("group 0 (row 0) has a single row"), sr::error);
  for (T x : a)
    CHECK(x == T(-9));
  try {
    sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a);
  } catch (const sr::error& e) {
    CHECK(e.code() == sr::errc::singleton_group);
  }
  sr::advantage_options o;
  o.singleton = sr::singleton_policy::verl;
  auto s = sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a, o);
  CHECK(s.singleton_groups == 2);
  CHECK(a[0] == static_cast<T>(0.5 / (1 + 1e-6)));
  CHECK(a[3] == static_cast<T>(2.0 / (1 + 1e-6)));
  o.kind = sr::estimator::mean_only;
  sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a, o);
  CHECK(a[0] == T(0.5));
  o.kind = sr::estimator::rloo;
  sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a, o);
  CHECK(a[3] == T(2));
  o.singleton = sr::singleton_policy::zero;
  o.kind = sr::estimator::grpo;
  sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a, o);
  CHECK(a[0] == T(0));
  CHECK(a[3] == T(0));
  CHECK(a[1] > T(0));
}

TEST_CASE_TEMPLATE("advantage: batch_std divides by the batch sigma", T, float, double) {
  // two groups {1, 3} and {10, 10, 14, 14}: batch mean 52/6, batch std (ddof 1) over all six
  const std::vector<T> r = {1, 3, 10, 10, 14, 14};
  const std::vector<std::int64_t> off = {0, 2, 6};
  sr::advantage_options o;
  o.kind = sr::estimator::batch_std;
  std::vector<T> a(6);
  const auto s = sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a, o);
  const double m = 52.0 / 6;
  double ss = 0;
  for (T x : r)
    ss += (x - m) * (x - m);
  const double sb = std::sqrt(ss / 5);
  CHECK(s.batch_std == doctest::Approx(sb).epsilon(1e-12));
  CHECK(static_cast<double>(a[0]) == doctest::Approx(-1.0 / (sb + 1e-6)).epsilon(1e-6));
  CHECK(static_cast<double>(a[5]) == doctest::Approx(2.0 / (sb + 1e-6)).epsilon(1e-6));
}

TEST_CASE("advantage: double rewards at extreme magnitudes stay finite and scale-invariant") {
  const std::vector<double> base = {1, 1, 0, 0, 0, 1, 0, 0};
  sr::advantage_options o;
  o.eps = 0.0;
  const std::vector<double> ref = normalize(base, 1, 8, o);
  for (const double scale : {1e300, 1e-300, 1e-310, 0x1p-1070, 1e150}) {
    std::vector<double> r = base;
    for (auto& x : r)
      x *= scale;
    const std::vector<double> a = normalize(r, 1, 8, o);
    CAPTURE(scale);
    for (std::size_t i = 0; i < 8; ++i) {
      CHECK(std::isfinite(a[i]));
      CHECK(a[i] == doctest::Approx(ref[i]).epsilon(1e-12));
    }
  }
  // a group spanning the whole range
  const std::vector<double> wide = {1e308, -1e308, 1e308, -1e308};
  const std::vector<double> a = normalize(wide, 1, 4, o);
  for (double x : a)
    CHECK(std::isfinite(x));
  CHECK(a[0] == doctest::Approx(std::sqrt(3.0) / 2).epsilon(1e-12));
  // large groups take the chunked path: same result as the small path on equal data
  std::vector<double> big(64);
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = (i % 3) * 1e-305;
  for (double x : normalize(big, 1, 64, o))
    CHECK(std::isfinite(x));
}

TEST_CASE("advantage: mean_only and rloo refuse rewards too large for the output type") {
  std::vector<float> r = {1, 2, 3e38f, 4};
  std::vector<float> a(4, -1);
  sr::advantage_options o;
  o.kind = sr::estimator::mean_only;
  CHECK_THROWS_WITH_AS(sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{2, 2}, a, o),
                       doctest::Contains("rewards[2] = "), sr::error);
  for (float x : a)
    CHECK(x == -1);
  o.kind = sr::estimator::grpo;  // grpo is bounded: fine
  sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{2, 2}, a, o);
  for (float x : a)
    CHECK(std::isfinite(x));
}

TEST_CASE_TEMPLATE("advantage: batch_std refuses a verl singleton whose advantage T cannot hold", T,
                   float, double) {
  // A singleton's batch_std advantage is x / (sigma_batch + eps), and sigma_batch is 0 when all
  // rewards are equal: x / 1e-6. Every other advantage is bounded by the rewards' spread.
  const T lim = std::numeric_limits<T>::max();
  const T big = lim / T(4), fits = lim * T(1e-7);             // x / 1e-6: overflows, fits
  const std::vector<std::int64_t> offsets = {0, 2, 3, 4, 6};  // groups 1 and 2 are singletons
  const sr::ragged_groups groups{offsets};
  sr::advantage_options o;
  o.kind = sr::estimator::batch_std;
  o.singleton = sr::singleton_policy::verl;
  std::vector<T> a(6, T(-5));
  std::vector<double> mean(4, -5.0);
  const sr::group_stats_out stats{mean, {}};
  try {
    sr::normalize_advantages(sr::cpu, std::vector<T>(6, big), groups, a, o, stats);
    FAIL("no exception");
  } catch (const sr::error& e) {
    CHECK(e.code() == sr::errc::out_of_range);
    const std::string what = e.what();
    INFO(what);
    // the first singleton in group order, with the type and the constants
    CHECK(what.rfind("normalize_advantages: rewards[2] = ", 0) == 0);
    CHECK(what.find("the only row of group 1, is too large for the batch_std estimator: its "
                    "advantage rewards[2] / (sigma_batch + eps) overflows ") != std::string::npos);
    CHECK(what.find(std::is_same_v<T, float> ? "overflows float" : "overflows double") !=
          std::string::npos);
    CHECK(what.find("(sigma_batch = 0, eps = 9.99") != std::string::npos);
  }
  for (T x : a)
    CHECK(x == T(-5));
  for (double m : mean)
    CHECK(m == -5.0);

  // The bound is on the quotient, not on |x|: x / 1e-6 near max(T) / 10 passes.
  const sr::advantage_summary s =
      sr::normalize_advantages(sr::cpu, std::vector<T>(6, fits), groups, a, o, stats);
  CHECK(s.singleton_groups == 2);
  CHECK(a[2] == a[3]);
  CHECK(std::isfinite(a[2]));
  CHECK(a[2] > lim / T(20));
  CHECK(a[0] == T(0));
  // A positive spread lowers the quotient: with sigma_batch > 0 the big singleton fits.
  const std::vector<T> r = {T(0), T(1), big, T(1), T(0), T(1)};
  sr::normalize_advantages(sr::cpu, r, groups, a, o);
  CHECK(std::isfinite(a[2]));
  CHECK(a[2] > T(1));
  // Other policies and estimators are bounded and accept the batch that failed.
  o.singleton = sr::singleton_policy::zero;
  sr::normalize_advantages(sr::cpu, std::vector<T>(6, big), groups, a, o);
  CHECK(a[2] == T(0));
  o.singleton = sr::singleton_policy::verl;
  o.kind = sr::estimator::grpo;
  sr::normalize_advantages(sr::cpu, std::vector<T>(6, big), groups, a, o);
  CHECK(a[2] == static_cast<T>(static_cast<double>(big) / (1.0 + 1e-6)));
  // eps = 0 with sigma_batch = 0: the denominator is 0 and the advantage is defined as 0.
  o.kind = sr::estimator::batch_std;
  o.eps = 0.0;
  sr::normalize_advantages(sr::cpu, std::vector<T>(6, big), groups, a, o);
  CHECK(a[2] == T(0));
  // A tiny eps > 0 is still refused. For doubles near max the batch is rescaled by about
  // 2^-1021 and eps * 2^-1021 underflows to 0: the denominator is 0, but x / eps is not.
  o.eps = 1e-300;
  std::fill(a.begin(), a.end(), T(-5));
  try {
    sr::normalize_advantages(sr::cpu, std::vector<T>(6, big), groups, a, o);
    FAIL("no exception");
  } catch (const sr::error& e) {
    CHECK(e.code() == sr::errc::out_of_range);
    CHECK(std::string(e.what()).find("the only row of group 1") != std::string::npos);
  }
  for (T x : a)
    CHECK(x == T(-5));
}

TEST_CASE(
    "advantage: constant float groups give +0 whatever eps, and nearly constant ones do not") {
  // Uniform groups of 8, 16 and 32 floats take the SIMD kernels, which tell constant groups by
  // a zero sum of squares instead of comparing rows: with eps = 0 or the smallest subnormal,
  // 1 / (sigma + eps) is 0 or +inf for a constant group, and its advantages must still be +0
  // (not NaN), also for zeros of both signs and when rounding toward -infinity (where x - x is
  // -0); its mean is its first row (with its sign) and its std 0. Groups one float ulp from
  // constant, also among subnormals, keep nonzero advantages.
  const float tiny = std::numeric_limits<float>::denorm_min();
  for (const std::int64_t P : {8, 16, 32}) {
    const std::int64_t G = 24;
    std::vector<float> r(static_cast<std::size_t>(G * P));
    std::vector<bool> constant(static_cast<std::size_t>(G));
    for (std::int64_t g = 0; g < G; ++g) {
      const float base = g % 3 == 0 ? tiny * static_cast<float>(g) : 1.5f * static_cast<float>(g);
      constant[static_cast<std::size_t>(g)] = g % 2 == 0;
      for (std::int64_t i = 0; i < P; ++i)
        r[static_cast<std::size_t>(g * P + i)] = base;
      if (g % 2 == 1)  // one row an ulp above the others
        r[static_cast<std::size_t>(g * P + g % P)] = std::nextafter(base, 1e30f);
    }
    for (std::int64_t i = 0; i < P; i += 3)  // group 0: zeros of both signs, -0 first
      r[static_cast<std::size_t>(i)] = -0.0f;
    test::for_each_rounding([&](const int rounding) {
      CAPTURE(rounding);
      for (const double eps : {0.0, std::numeric_limits<double>::denorm_min(), 1e-6}) {
        for (const sr::estimator kind : {sr::estimator::grpo, sr::estimator::mean_only,
                                         sr::estimator::rloo, sr::estimator::batch_std}) {
          for (const int ddof : {0, 1}) {
            CAPTURE(P);
            CAPTURE(eps);
            const std::string name(sr::to_string(kind));
            CAPTURE(name);
            CAPTURE(ddof);
            sr::advantage_options o;
            o.kind = kind;
            o.ddof = ddof;
            o.eps = eps;
            std::vector<float> a(r.size(), -7.0f);
            std::vector<double> mean(static_cast<std::size_t>(G)), sd(static_cast<std::size_t>(G));
            const auto s =
                sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{G, P}, a, o, {mean, sd});
            CHECK(s.zero_variance_groups == G / 2);
            std::int64_t wrong = 0;
            for (std::int64_t g = 0; g < G; ++g) {
              const auto gi = static_cast<std::size_t>(g);
              bool all_zero = true;
              for (std::int64_t i = 0; i < P; ++i) {
                const float v = a[static_cast<std::size_t>(g * P + i)];
                all_zero = all_zero && v == 0.0f;
                if (constant[gi]) wrong += !(v == 0.0f && !std::signbit(v));
              }
              if (constant[gi]) {
                const float first = r[gi * static_cast<std::size_t>(P)];
                wrong += mean[gi] != static_cast<double>(first);
                wrong += std::signbit(mean[gi]) != std::signbit(first);
                wrong += sd[gi] != 0.0 || std::signbit(sd[gi]);
              } else {
                // (batch_std divides a subnormal group's ulp by the batch's std: that underflows)
                if (kind != sr::estimator::batch_std || g % 3 != 0) wrong += all_zero;
                wrong += !(sd[gi] > 0.0);
              }
            }
            CHECK(wrong == 0);
          }
        }
      }
    });
  }
}

TEST_CASE("advantage: double rewards near 2^-490 that differ keep their spread") {
  // Two rewards an ulp apart near 2^-490 differ by u = 2^-542, whose square underflows to 0:
  // without rescaling, sigma was 0, so with eps = 0 the advantages were 0, and with eps the
  // smallest subnormal NaN and inf. Groups {a, b, a, b, ...}: the advantages of b and a differ
  // by u / sigma, sqrt(2) for two rows, 2 sqrt(7/8) for eight (ddof 1), whatever the mean
  // rounds to. (The default eps = 1e-6 dwarfs such a sigma: the advantages are then ~1e-157.)
  const double lo = 0x1p-490, hi = std::nextafter(lo, 1.0);
  for (const double eps : {0.0, std::numeric_limits<double>::denorm_min()}) {
    sr::advantage_options o;
    o.eps = eps;
    for (const sr::estimator kind : {sr::estimator::grpo, sr::estimator::batch_std}) {
      o.kind = kind;
      INFO("eps = ", eps, ", estimator ", sr::to_string(kind));
      // Uniform groups of 8 (the SIMD scan's path, which must hand them to the rescaling code).
      std::vector<double> r(32), a(32);
      for (std::size_t i = 0; i < r.size(); ++i)
        r[i] = i % 2 ? hi : lo;
      sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{4, 8}, a, o);
      const double spread8 =
          kind == sr::estimator::grpo ? 2 * std::sqrt(7.0 / 8.0) : 2 * std::sqrt(31.0 / 32.0);
      for (std::size_t i = 0; i < a.size(); i += 2) {
        CHECK(std::isfinite(a[i]));
        CHECK(a[i + 1] - a[i] == doctest::Approx(spread8).epsilon(1e-9));
      }
      // One ragged group of two (the portable path).
      const std::vector<double> r2 = {lo, hi};
      std::vector<double> a2(2);
      const std::vector<std::int64_t> offsets = {0, 2};
      sr::normalize_advantages(sr::cpu, r2, sr::ragged_groups{offsets}, a2, o);
      CHECK(a2[1] - a2[0] == doctest::Approx(std::sqrt(2.0)).epsilon(1e-9));
    }
  }
}

TEST_CASE_TEMPLATE("advantage: bad inputs are refused and nothing is written", T, float, double) {
  std::vector<T> r = {1, 0, 1, 0};
  std::vector<T> a(4, T(-5));
  const auto untouched = [&] {
    for (T x : a)
      CHECK(x == T(-5));
  };
  const auto expect = [&](const sr::advantage_options& o, sr::errc code, const char* text) {
    try {
      sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{2, 2}, a, o);
      FAIL("no exception");
    } catch (const sr::error& e) {
      CHECK(e.code() == code);
      CHECK(std::string(e.what()).find(text) != std::string::npos);
      CHECK(std::string(e.what()).rfind("normalize_advantages: ", 0) == 0);
    }
    untouched();
  };
  sr::advantage_options o;
  o.ddof = 2;
  expect(o, sr::errc::invalid_argument, "options.ddof is 2");
  o = {};
  o.eps = -1;
  expect(o, sr::errc::invalid_argument, "options.eps is -1");
  o.eps = std::numeric_limits<double>::quiet_NaN();
  expect(o, sr::errc::invalid_argument, "options.eps is nan");
  o = {};
  o.kind = static_cast<sr::estimator>(42);
  expect(o, sr::errc::invalid_argument, "options.kind");
  o = {};
  o.singleton = static_cast<sr::singleton_policy>(9);
  expect(o, sr::errc::invalid_argument, "options.singleton");
  o = {};
  r[2] = std::numeric_limits<T>::quiet_NaN();
  expect(o, sr::errc::non_finite, "rewards[2] is NaN");
  r[2] = std::numeric_limits<T>::infinity();
  expect(o, sr::errc::non_finite, "rewards[2] is +inf");
  r[2] = -std::numeric_limits<T>::infinity();
  expect(o, sr::errc::non_finite, "rewards[2] is -inf");
  r[2] = 1;
  std::vector<T> small(3);
  CHECK_THROWS_WITH_AS(sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{2, 2}, small),
                       doctest::Contains("advantages has 3 elements, expected 4"), sr::error);
  std::vector<double> mean(3);
  CHECK_THROWS_WITH_AS(
      sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{2, 2}, a, {}, {mean, {}}),
      doctest::Contains("stats.mean has 3 elements, expected 2"), sr::error);
  untouched();
}

TEST_CASE_TEMPLATE("advantage: empty batch", T, float, double) {
  const std::vector<T> r;
  std::vector<T> a;
  const auto s = sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{0, 8}, a);
  CHECK(s.rows == 0);
  CHECK(s.groups == 0);
  sr::advantage_options o;
  o.kind = sr::estimator::batch_std;
  CHECK(sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{0, 0}, a, o).batch_std == 0);
}

TEST_CASE("advantage: summary counts") {
  const std::vector<float> r = {1, 1, 0, 1, 5, 2, 2};
  const std::vector<std::int64_t> off = {0, 2, 4, 4, 5, 7};
  sr::advantage_options o;
  o.singleton = sr::singleton_policy::zero;
  std::vector<float> a(7);
  const auto s = sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a, o);
  CHECK(s.rows == 7);
  CHECK(s.groups == 5);
  CHECK(s.zero_variance_groups == 2);  // {1,1} and {2,2}
  CHECK(s.singleton_groups == 1);
  CHECK(s.empty_groups == 1);
}

TEST_CASE_TEMPLATE("advantage: the SIMD kernel is bit-identical to the portable kernel", T, float,
                   double) {
  // On a CPU with AVX-512 or AVX2, uniform groups of 8, 16 and 32 rows take a vector kernel;
  // the others, and all of them on other CPUs, take the lane kernel (four groups at a time, the
  // remainder group by group); portable_group is the scalar code every other layout uses.
  // Same bits, every estimator. (The next test runs each vector kernel directly.)
  INFO("AVX-512 kernel in use: " << sr::detail::cpu::has_avx512());
  INFO("AVX2 kernel in use: " << (!sr::detail::cpu::has_avx512() && sr::detail::cpu::has_avx2()));
  std::mt19937_64 rng(404);
  for (const std::int64_t n : {2, 3, 5, 8, 12, 16, 32}) {
    for (const std::int64_t G : {1, 7, 8, 9, 64, 65, 200}) {
      std::vector<T> r = test::random_rewards<T>(rng, static_cast<std::size_t>(G * n),
                                                 static_cast<test::reward_kind>((G + n) % 4));
      for (std::int64_t i = 0; i < n; ++i)
        r[i] = T(0.9);  // a constant group
      if constexpr (std::is_same_v<T, double>)
        if (G > 64)  // a chunk that needs rescaling
          for (std::int64_t i = 0; i < n; ++i)
            r[64 * n + i] *= 1e300;
      for (const sr::estimator kind : {sr::estimator::grpo, sr::estimator::mean_only,
                                       sr::estimator::rloo, sr::estimator::batch_std}) {
        for (const int ddof : {0, 1}) {
          CAPTURE(n);
          CAPTURE(G);
          CAPTURE(sr::to_string(kind));
          sr::advantage_options o;
          o.kind = kind;
          o.ddof = ddof;
          std::vector<T> fast(r.size());
          std::vector<double> mean(G), sd(G);
          const auto s =
              sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{G, n}, fast, o, {mean, sd});
          // the portable path, group by group
          const sr::detail::host_layout L = sr::detail::to_host_layout(sr::uniform_groups{G, n});
          sr::detail::cpu::norm_plan plan;
          plan.kind = kind;
          plan.ddof = ddof;
          plan.eps = o.eps;
          sr::detail::cpu::norm_scratch scratch;
          if (kind == sr::estimator::batch_std) {
            double max_abs = 0;
            for (T v : r)
              max_abs = std::max(max_abs, std::fabs(double(v)));
            sr::detail::cpu::plan_batch_std(r.data(), G * n, max_abs, plan, scratch);
          }
          std::vector<T> slow(r.size());
          std::int64_t zero_var = 0;
          for (std::int64_t g = 0; g < G; ++g) {
            const auto gr =
                sr::detail::cpu::portable_group(r.data(), L, g, slow.data(), plan, scratch);
            zero_var += gr.zero_variance;
            CHECK(test::ulp_distance(gr.mean, mean[g]) == 0);
            CHECK(test::ulp_distance(gr.std, sd[g]) == 0);
          }
          CHECK(s.zero_variance_groups == zero_var);
          for (std::size_t i = 0; i < r.size(); ++i) {
            if (test::ulp_distance(fast[i], slow[i]) != 0) {
              CAPTURE(i);
              CHECK(fast[i] == slow[i]);
            }
          }
        }
      }
    }
  }
}

#if SHUFFLE_R1_X86_SIMD
namespace {

// One SIMD normalization kernel (K = norm_simd<true> for AVX-512, <false> for AVX2) on G uniform
// groups of P rows, called directly (the run-time choice only ever runs the widest kernel) and
// checked bit for bit against portable_group.
template <class K, class T, int P>
void check_simd_kernel(const std::vector<T>& r, std::int64_t G, sr::estimator kind, int ddof,
                       double eps) {
  namespace cpu = sr::detail::cpu;
  const sr::detail::host_layout L = sr::detail::to_host_layout(sr::uniform_groups{G, P});
  cpu::norm_plan plan;
  plan.kind = kind;
  plan.ddof = ddof;
  plan.eps = eps;
  cpu::norm_scratch scratch;
  double max_abs = 0;
  for (T v : r)
    max_abs = std::max(max_abs, std::fabs(double(v)));
  if (kind == sr::estimator::batch_std)
    cpu::plan_batch_std(r.data(), G * P, max_abs, plan, scratch);
  bool finite = false;
  double scan_max = -1;
  const std::int64_t covered = cpu::scan_simd_isa<K, T, P>(r.data(), G, scratch, finite, scan_max);
  CHECK(covered == G / K::block * K::block);
  CHECK(finite);
  double covered_max = 0;  // the largest magnitude among the rows the scan covers
  for (std::int64_t i = 0; i < covered * P; ++i)
    covered_max = std::max(covered_max, std::fabs(double(r[static_cast<std::size_t>(i)])));
  CHECK(scan_max == covered_max);
  if (plan.global.active) return;  // normalize_kernel does not take the SIMD path then
  // one buffer for both outputs (two vectors of the same size set GCC 12's -Wfree-nonheap-object
  // off, falsely)
  std::vector<T> both(2 * r.size(), T(-7));
  T* const fast = both.data();
  T* const slow = both.data() + r.size();
  std::vector<double> mean(static_cast<std::size_t>(G), -1), sd(static_cast<std::size_t>(G), -1);
  sr::advantage_summary summary;
  CHECK(cpu::uniform_simd_isa<K, T, P>(r.data(), G, fast, plan, {mean, sd}, L, scratch, summary) ==
        covered);
  std::int64_t zero_var = 0;
  // bit for bit: ulp_distance does not tell -0 from +0, signbit does
  const auto same = [](auto a, auto b) {
    return test::ulp_distance(a, b) == 0 && std::signbit(a) == std::signbit(b);
  };
  for (std::int64_t g = 0; g < covered; ++g) {
    const auto gr = cpu::portable_group(r.data(), L, g, slow, plan, scratch);
    zero_var += gr.zero_variance;
    CHECK(same(gr.mean, mean[g]));
    CHECK(same(gr.std, sd[g]));
  }
  CHECK(summary.zero_variance_groups == zero_var);
  for (std::int64_t i = 0; i < covered * P; ++i) {
    if (!same(fast[i], slow[i])) {
      CAPTURE(i);
      CHECK(fast[i] == slow[i]);
      CHECK(std::signbit(fast[i]) == std::signbit(slow[i]));
    }
  }
  for (std::int64_t i = covered * P; i < G * P; ++i)
    CHECK(fast[i] == T(-7));  // rows past the covered blocks are left to the caller
}

// The scan of one SIMD kernel on 16 uniform groups of P rows: a NaN or an infinity at any row
// makes the batch non-finite, and a group that differs from its first row at any single row is
// not constant, which the summary of the kernel's normalization counts (constant float groups
// are found in pass 2 from their sums of squares, constant double groups in the scan).
template <class K, class T, int P>
void check_scan_lanes() {
  namespace cpu = sr::detail::cpu;
  constexpr std::int64_t G = 16;
  std::mt19937_64 rng(406);
  const std::vector<T> base =
      test::random_rewards<T>(rng, static_cast<std::size_t>(G * P), test::reward_kind::normal);
  const T bad_values[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                          -std::numeric_limits<T>::infinity()};
  std::int64_t missed = 0, wrong_constant = 0;
  for (std::int64_t i = 0; i < G * P; ++i) {
    for (const T bad : bad_values) {
      std::vector<T> r = base;
      r[static_cast<std::size_t>(i)] = bad;
      cpu::norm_scratch scratch;
      bool finite = true;
      double max_abs = 0;
      (void)cpu::scan_simd_isa<K, T, P>(r.data(), G, scratch, finite, max_abs);
      missed += finite;
    }
    // group i / P constant but for row i (or wholly constant when i is its first row)
    std::vector<T> r = base;
    const std::int64_t g = i / P;
    for (std::int64_t k = 0; k < P; ++k)
      r[static_cast<std::size_t>(g * P + k)] = T(0.5);
    r[static_cast<std::size_t>(i)] = i % P == 0 ? T(0.5) : T(0.25);
    cpu::norm_scratch scratch;
    bool finite = false;
    double max_abs = 0;
    (void)cpu::scan_simd_isa<K, T, P>(r.data(), G, scratch, finite, max_abs);
    cpu::norm_plan plan;  // grpo
    std::vector<T> a(r.size());
    sr::advantage_summary summary;
    const sr::detail::host_layout L = sr::detail::to_host_layout(sr::uniform_groups{G, P});
    (void)cpu::uniform_simd_isa<K, T, P>(r.data(), G, a.data(), plan, {}, L, scratch, summary);
    wrong_constant += summary.zero_variance_groups != (i % P == 0 ? 1 : 0);
  }
  CHECK(missed == 0);
  CHECK(wrong_constant == 0);
}

template <class K, class T>
void check_simd_kernels() {
  check_scan_lanes<K, T, 8>();
  check_scan_lanes<K, T, 16>();
  check_scan_lanes<K, T, 32>();
  std::mt19937_64 rng(405);
  for (const std::int64_t G : {3, 4, 7, 8, 63, 64, 65, 130}) {
    for (const int P : {8, 16, 32}) {
      std::vector<T> r = test::random_rewards<T>(rng, static_cast<std::size_t>(G * P),
                                                 static_cast<test::reward_kind>((G + P) % 4));
      for (int i = 0; i < P; ++i)
        r[static_cast<std::size_t>(i)] = T(0.9);  // a constant group
      for (int i = 0; i < P; ++i)  // a constant group of zeros of both signs, -0 first
        r[static_cast<std::size_t>(P + i)] = i % 3 == 0 ? T(-0.0) : T(0.0);
      if constexpr (std::is_same_v<T, double>)
        if (G > 64)  // a chunk that needs rescaling (back to the scalar kernel)
          for (int i = 0; i < P; ++i)
            r[static_cast<std::size_t>(64 * P + i)] *= 1e300;
      for (const sr::estimator kind : {sr::estimator::grpo, sr::estimator::mean_only,
                                       sr::estimator::rloo, sr::estimator::batch_std}) {
        for (const int ddof : {0, 1}) {
          CAPTURE(G);
          CAPTURE(P);
          CAPTURE(sr::to_string(kind));
          CAPTURE(ddof);
          // the default eps, and eps whose inverse is 1 / 0 or overflows for a constant group;
          // both rounding modes
          test::for_each_rounding([&](const int rounding) {
            CAPTURE(rounding);
            for (const double eps :
                 {sr::advantage_options{}.eps, 0.0, std::numeric_limits<double>::denorm_min()}) {
              CAPTURE(eps);
              if (P == 8) check_simd_kernel<K, T, 8>(r, G, kind, ddof, eps);
              if (P == 16) check_simd_kernel<K, T, 16>(r, G, kind, ddof, eps);
              if (P == 32) check_simd_kernel<K, T, 32>(r, G, kind, ddof, eps);
            }
          });
        }
      }
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("advantage: each SIMD kernel the CPU has is bit-identical to the portable one",
                   T, float, double) {
  namespace cpu = sr::detail::cpu;
  if (!cpu::has_avx2() && !cpu::has_avx512()) {
    MESSAGE("neither AVX2 nor AVX-512 on this CPU: nothing to compare");
    return;
  }
  if (cpu::has_avx2()) {
    INFO("AVX2 kernel");
    check_simd_kernels<cpu::norm_simd<false>, T>();
  }
  if (cpu::has_avx512()) {
    INFO("AVX-512 kernel");
    check_simd_kernels<cpu::norm_simd<true>, T>();
  }
}
#endif
