// Research diagnostics: token utilization, effective sample size of the ABS distribution, and
// the existing collapse / non-zero-gradient / multiplicity diagnostics on selector outputs.
#include "support.hpp"

namespace sr = shuffle_r1;

namespace {
template <class T>
using cspan = sr::host_span<const T>;
}  // namespace

TEST_CASE_TEMPLATE("diagnostics: token utilization counts the tokens of non-zero rows", T, float,
                   double) {
  const std::vector<T> adv = {0, 1, -1, 0};
  const std::vector<std::int32_t> len = {10, 20, 30, 40};
  // All rows: (20 + 30) / 100.
  CHECK(sr::token_utilization(sr::cpu, cspan<T>(adv), cspan<std::int32_t>(len)) == 0.5);
  // Training rows with repeats: 1, 1, 3 -> (20 + 20) / (20 + 20 + 40).
  const std::vector<std::int64_t> rows = {1, 1, 3};
  CHECK(sr::token_utilization(sr::cpu, cspan<T>(adv), cspan<std::int32_t>(len),
                              cspan<std::int64_t>(rows)) == 0.5);
  const std::vector<std::int64_t> silent = {0, 3};
  CHECK(sr::token_utilization(sr::cpu, cspan<T>(adv), cspan<std::int32_t>(len),
                              cspan<std::int64_t>(silent)) == 0.0);
  // Zero-length rows and empty lists give 0, not NaN.
  const std::vector<std::int32_t> zero(4, 0);
  CHECK(sr::token_utilization(sr::cpu, cspan<T>(adv), cspan<std::int32_t>(zero)) == 0.0);
  CHECK(sr::token_utilization(sr::cpu, cspan<T>(adv), cspan<std::int32_t>(len),
                              cspan<std::int64_t>()) == 0.0);
  // Equal lengths: token utilization is the non-zero-gradient ratio.
  const std::vector<std::int64_t> same(4, 7);
  CHECK(sr::token_utilization(sr::cpu, cspan<T>(adv), cspan<std::int64_t>(same),
                              cspan<std::int64_t>(rows)) ==
        doctest::Approx(
            sr::nonzero_gradient_ratio(sr::cpu, cspan<T>(adv), cspan<std::int64_t>(rows))));
}

TEST_CASE("diagnostics: token utilization refuses bad lengths and rows") {
  const std::vector<float> adv = {0.f, 1.f};
  const std::vector<std::int64_t> len = {3, -4}, ok = {3, 4}, three = {1, 2, 3};
  const std::vector<std::int64_t> rows = {0, 2};
  CHECK_THROWS_WITH_AS(sr::token_utilization(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(len)),
                       doctest::Contains("token_utilization: lengths[1] = -4 is not a token count"),
                       sr::error);
  CHECK_THROWS_WITH_AS(
      sr::token_utilization(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(three)),
      doctest::Contains("lengths has 3 entries, expected 2"), sr::error);
  CHECK_THROWS_WITH_AS(sr::token_utilization(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(ok),
                                             cspan<std::int64_t>(rows)),
                       doctest::Contains("rows[1] = 2 is outside [0, 2)"), sr::error);
  // Unsigned lengths (torch has none, numpy and C++ callers do): valid up to 2^63 - 1.
  const std::vector<std::uint32_t> u32 = {3, 4};
  CHECK(sr::token_utilization(sr::cpu, cspan<float>(adv), cspan<std::uint32_t>(u32)) ==
        doctest::Approx(4.0 / 7));
  const std::vector<std::uint64_t> huge = {1, std::uint64_t{1} << 63};
  CHECK_THROWS_WITH_AS(
      sr::token_utilization(sr::cpu, cspan<float>(adv), cspan<std::uint64_t>(huge)),
      doctest::Contains("lengths[1] = 9223372036854775808 is not a token count"), sr::error);
}

TEST_CASE("diagnostics: effective sample size of the ABS distribution") {
  // Kish ESS = (sum q)^2 / sum q^2 of the sampling masses.
  CHECK(sr::effective_sample_size(sr::cpu, std::vector<double>{1, 1, 1, 1}) == 4.0);
  CHECK(sr::effective_sample_size(sr::cpu, std::vector<double>{5, 0, 0, 0}) == 1.0);
  // q = w: (3 + 1)^2 / (9 + 1) = 1.6
  CHECK(sr::effective_sample_size(sr::cpu, std::vector<double>{3, 1}) ==
        doctest::Approx(1.6).epsilon(1e-12));
  sr::shuffle_options o;
  o.coeff = 2;  // q = w^2: (9 + 1)^2 / (81 + 1) = 100 / 82
  CHECK(sr::effective_sample_size(sr::cpu, std::vector<double>{3, 1}, o) ==
        doctest::Approx(100.0 / 82.0).epsilon(1e-12));
  o.coeff = 0;  // uniform, zero weights included: K
  CHECK(sr::effective_sample_size(sr::cpu, std::vector<float>{3, 1, 0}, o) == 3.0);
  // softmax at step 0: tau = t_max = 2, q = exp(w / 2).
  o = {};
  o.kind = sr::transform::softmax;
  const double q0 = std::exp(1.5), q1 = std::exp(0.5);
  CHECK(sr::effective_sample_size(sr::cpu, std::vector<double>{3, 1}, o) ==
        doctest::Approx((q0 + q1) * (q0 + q1) / (q0 * q0 + q1 * q1)).epsilon(1e-10));
  // The PTS weights of the SPEC group [1,0,0,0,0,0,0,0]: 2.8284 and 0.7071 (alpha 0.5).
  const std::vector<float> r = {1, 0, 0, 0, 0, 0, 0, 0};
  std::vector<float> a(8), w(2);
  std::vector<std::int64_t> pairs(4);
  sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{1, 8}, a);
  sr::select_pairs(sr::cpu, a, sr::uniform_groups{1, 8}, pairs, w);
  const double w0 = w[0], w1 = w[1];
  CHECK(sr::effective_sample_size(sr::cpu, w) ==
        doctest::Approx((w0 + w1) * (w0 + w1) / (w0 * w0 + w1 * w1)).epsilon(1e-10));
  // Empty, all-zero, errors.
  CHECK(sr::effective_sample_size(sr::cpu, std::vector<double>{}) == 0.0);
  CHECK(sr::effective_sample_size(sr::cpu, std::vector<double>{0, 0}) == 0.0);
  CHECK_THROWS_WITH_AS(sr::effective_sample_size(sr::cpu, std::vector<double>{1, -1}),
                       doctest::Contains("effective_sample_size: weights[1] is -1"), sr::error);
  CHECK_THROWS_AS(sr::effective_sample_size(sr::cpu, std::vector<double>{1, std::nan("")}),
                  sr::error);
}

TEST_CASE("diagnostics: ESS lies in [1, K] and is K only for equal masses (random weights)") {
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<double> u(0.0, 3.0);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<double> w(1 + rng() % 200);
    for (auto& x : w)
      x = u(rng);
    const double ess = sr::effective_sample_size(sr::cpu, w);
    CHECK(ess >= 1.0);
    CHECK(ess <= static_cast<double>(w.size()) * (1 + 1e-12));
    long double s = 0, q = 0;
    for (double x : w) {
      s += x;
      q += static_cast<long double>(x) * x;
    }
    CHECK(ess == doctest::Approx(static_cast<double>(s * s / q)).epsilon(1e-9));
  }
}

TEST_CASE("diagnostics: collapse and gradient shares before and after the selection rules") {
  // Two groups: [1,0,0,0,0,0,0,0] (A = 2.4749 and -0.3536) and [1,1,0,0,0,1,0,0].
  const std::vector<double> r = {1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0};
  std::vector<double> a(16);
  sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{2, 8}, a);
  const cspan<double> adv(a);
  // With threshold 0.5, the seven -0.3536 rows are collapsed: 7 of 16 before selection.
  CHECK(sr::collapse_ratio(sr::cpu, adv, 0.5) == doctest::Approx(7.0 / 16));
  sr::selector_options o;  // PTS: (0,7) (1,6) | (8,15) (9,14): 3 of 8 collapsed
  std::vector<std::int64_t> rows(8);
  sr::select_rows(sr::cpu, r, a, sr::uniform_groups{2, 8}, rows, o);
  CHECK(rows == std::vector<std::int64_t>{0, 7, 1, 6, 8, 15, 9, 14});
  CHECK(sr::collapse_ratio(sr::cpu, adv, cspan<std::int64_t>(rows), 0.5) ==
        doctest::Approx(3.0 / 8));
  CHECK(sr::nonzero_gradient_ratio(sr::cpu, adv, cspan<std::int64_t>(rows)) == 1.0);
  // Resampling rows: multiplicities from pair_multiplicity over B rows.
  o.kind = sr::selector::resample;
  sr::select_rows(sr::cpu, r, a, sr::uniform_groups{2, 8}, rows, o);
  std::vector<std::int64_t> h(9);
  const std::int64_t distinct = sr::pair_multiplicity(sr::cpu, cspan<std::int64_t>(rows), 16, h);
  CHECK(distinct == 16 - h[0]);
  CHECK(h[1] + 2 * h[2] + 3 * h[3] + 4 * h[4] == 8);
  // Only rows with reward 1 carry mass |r|^1: rows 0, 8, 9, 13.
  for (const auto row : rows)
    CHECK(r[row] == 1.0);
}
