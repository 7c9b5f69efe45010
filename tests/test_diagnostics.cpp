// Diagnostics of SPEC.md section 6.
#include "support.hpp"

namespace sr = shuffle_r1;

TEST_CASE("diagnostics: collapse ratio over all rows and over a subset") {
  const std::vector<float> a = {0.05f, -0.05f, 0.1f, -2.0f, 0.0f, 1.0f};
  CHECK(sr::collapse_ratio(sr::cpu, sr::host_span<const float>(a), 0.1) ==
        doctest::Approx(3.0 / 6));
  const std::vector<std::int64_t> rows = {3, 5, 0, 0};
  CHECK(sr::collapse_ratio(sr::cpu, sr::host_span<const float>(a),
                           sr::host_span<const std::int64_t>(rows), 0.1) == doctest::Approx(0.5));
  CHECK(sr::collapse_ratio(sr::cpu, sr::host_span<const float>(), 0.1) == 0.0);
  CHECK_THROWS_AS(sr::collapse_ratio(sr::cpu, sr::host_span<const float>(a), -1.0), sr::error);
  const std::vector<std::int64_t> bad = {6};
  CHECK_THROWS_WITH_AS(sr::collapse_ratio(sr::cpu, sr::host_span<const float>(a),
                                          sr::host_span<const std::int64_t>(bad)),
                       doctest::Contains("rows[0] = 6 is outside [0, 6)"), sr::error);
}

TEST_CASE("diagnostics: non-zero-gradient ratio of the training rows") {
  const std::vector<double> a = {0.0, 1.0, -0.0, -2.0};
  const std::vector<std::int64_t> rows = {0, 1, 2, 3, 1, 3};
  CHECK(sr::nonzero_gradient_ratio(sr::cpu, sr::host_span<const double>(a),
                                   sr::host_span<const std::int64_t>(rows)) ==
        doctest::Approx(4.0 / 6));
}

TEST_CASE("diagnostics: pair multiplicity histogram") {
  const std::vector<std::int64_t> order = {0, 2, 2, 3, 2, 0};
  std::vector<std::int64_t> h(4);
  CHECK(sr::pair_multiplicity(sr::cpu, order, 5, h) == 3);
  // pair 0 used twice, 2 three times, 3 once, 1 and 4 never
  CHECK(h == std::vector<std::int64_t>{2, 1, 1, 1});
  std::vector<std::int64_t> h2(2);  // counts above 1 go to the last entry
  CHECK(sr::pair_multiplicity(sr::cpu, order, 5, h2) == 3);
  CHECK(h2 == std::vector<std::int64_t>{2, 3});
  const std::vector<std::int64_t> bad = {5};
  CHECK_THROWS_AS(sr::pair_multiplicity(sr::cpu, bad, 5, h), sr::error);
}
