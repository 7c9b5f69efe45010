// Deterministic math (log, exp, log1p, cos/sin of the schedule) and the canonical sum.
#include "support.hpp"

namespace sr = shuffle_r1;
using sr::detail::det_exp;
using sr::detail::det_log;
using sr::detail::det_log1p;

TEST_CASE("det_math: log is within 2 ulp of the C library over the double range") {
  std::mt19937_64 rng(42);
  std::vector<double> xs = {1.0,
                            2.0,
                            0.5,
                            3.0,
                            10.0,
                            1e-300,
                            1e300,
                            0x1p-1074,
                            0x1p-1022,
                            std::numeric_limits<double>::max(),
                            1.0 + 0x1p-52,
                            1.0 - 0x1p-53,
                            0.70710678118654757,
                            1.4142135623730951,
                            1.4142135623730954};
  for (int i = 0; i < 20000; ++i) {
    const double e = std::uniform_real_distribution<double>(-1070, 1020)(rng);
    xs.push_back(std::exp2(e));
  }
  for (const double x : xs) {
    INFO("x = " << x);
    CHECK(test::ulp_distance(det_log(x), std::log(x)) <= 2);
  }
  CHECK(det_log(1.0) == 0.0);
}

TEST_CASE("det_math: exp is within 2 ulp of the C library and exact at 0") {
  std::mt19937_64 rng(43);
  CHECK(det_exp(0.0) == 1.0);
  CHECK(det_exp(-746.0) == 0.0);
  CHECK(det_exp(-1000.0) == 0.0);
  for (int i = 0; i < 20000; ++i) {
    const double x = std::uniform_real_distribution<double>(-708, 709)(rng);
    INFO("x = " << x);
    CHECK(test::ulp_distance(det_exp(x), std::exp(x)) <= 2);
  }
  // subnormal results: relative error is larger, absolute error tiny
  for (double x = -745.0; x < -708.0; x += 0.37)
    CHECK(std::fabs(det_exp(x) - std::exp(x)) <= 4 * 0x1p-1074 + 1e-15 * std::exp(x));
}

TEST_CASE("det_math: log1p is accurate for small and large arguments") {
  CHECK(det_log1p(0.0) == 0.0);
  std::mt19937_64 rng(44);
  for (int i = 0; i < 20000; ++i) {
    const double y = std::exp2(std::uniform_real_distribution<double>(-60, 60)(rng));
    INFO("y = " << y);
    CHECK(test::ulp_distance(det_log1p(y), std::log1p(y)) <= 4);
  }
}

TEST_CASE("det_math: schedule cos and sin match the C library to 1e-15") {
  for (int i = 0; i <= 1000; ++i) {
    const double u = i / 1000.0;
    CHECK(std::fabs(sr::detail::det_cos_half_pi(u) - std::cos(M_PI / 2 * u)) < 1e-15);
    CHECK(std::fabs(sr::detail::det_sin_half_pi(u) - std::sin(M_PI / 2 * u)) < 1e-15);
  }
  CHECK(sr::detail::det_cos_half_pi(0.0) == 1.0);
  CHECK(sr::detail::det_sin_half_pi(1.0) == 1.0);
}

TEST_CASE("det_math: the finite test works on bit patterns") {
  CHECK(sr::detail::is_finite(0.0));
  CHECK(sr::detail::is_finite(std::numeric_limits<double>::max()));
  CHECK(sr::detail::is_finite(std::numeric_limits<double>::denorm_min()));
  CHECK_FALSE(sr::detail::is_finite(std::numeric_limits<double>::infinity()));
  CHECK_FALSE(sr::detail::is_finite(-std::numeric_limits<double>::infinity()));
  CHECK_FALSE(sr::detail::is_finite(std::numeric_limits<double>::quiet_NaN()));
  CHECK(sr::detail::is_finite(1.0f));
  CHECK_FALSE(sr::detail::is_finite(std::numeric_limits<float>::infinity()));
  CHECK_FALSE(sr::detail::is_finite(std::numeric_limits<float>::quiet_NaN()));
}

TEST_CASE("tree_sum: the canonical order is stride halving, chunks of 32 above") {
  using sr::detail::canonical_sum;
  std::vector<double> scratch(64);
  // n = 3 pads to 4: (x0 + x2) + (x1 + 0). Values chosen so the order is visible.
  const double a[3] = {1.0, 0x1p-53, -1.0};
  CHECK(canonical_sum(a, 3, scratch.data()) == (1.0 + -1.0) + (0x1p-53 + 0.0));
  CHECK(canonical_sum(a, 3, scratch.data()) == 0x1p-53);  // sequential order would give 0
  // n = 40: chunk 0 (32 values, stride halving) + chunk 1 (8 values padded to 32)
  std::vector<double> v(40);
  std::mt19937_64 rng(5);
  for (auto& x : v)
    x = std::uniform_real_distribution<double>(-1, 1)(rng) * 1e10;
  double c0[32], c1[32] = {};
  for (int i = 0; i < 32; ++i)
    c0[i] = v[i];
  for (int i = 0; i < 8; ++i)
    c1[i] = v[32 + i];
  const auto halve = [](double* t, int P) {
    for (int h = P / 2; h >= 1; h /= 2)
      for (int i = 0; i < h; ++i)
        t[i] += t[i + h];
    return t[0];
  };
  const double want = halve(c0, 32) + halve(c1, 32);
  CHECK(canonical_sum(v.data(), 40, scratch.data()) == want);
}

TEST_CASE("tree_sum: padding to a larger power of two adds exact zeros only") {
  std::mt19937_64 rng(6);
  std::vector<double> scratch(8);
  for (int trial = 0; trial < 2000; ++trial) {
    double v[32] = {};
    const int n = 2 + trial % 15;
    for (int i = 0; i < n; ++i)
      v[i] = std::uniform_real_distribution<double>(-1, 1)(rng) * (i + 1);
    // canonical_sum pads to bit_ceil(n); the fixed 32-wide tree adds zeros on top: same value
    CHECK(sr::detail::tree_sum<32>(v) == sr::detail::canonical_sum(v, n, scratch.data()));
  }
}

TEST_CASE("tree_sum: integers are summed exactly at every size") {
  std::vector<double> scratch(4096);
  for (const std::int64_t n : {1, 2, 31, 32, 33, 100, 1023, 1024, 1025, 40000}) {
    std::vector<double> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 1.0);
    scratch.resize(static_cast<std::size_t>(sr::detail::canonical_sum_scratch(n) + 2));
    CHECK(sr::detail::canonical_sum(v.data(), n, scratch.data()) == double(n) * (n + 1) / 2);
  }
}
