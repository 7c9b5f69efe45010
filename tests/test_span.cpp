// Views: construction from containers, Eigen objects, const conversion, memory spaces.
#include "support.hpp"

#include <Eigen/Core>

#include <array>

namespace sr = shuffle_r1;

static_assert(sr::is_host_viewable_v<std::vector<float>&>);
static_assert(sr::is_host_viewable_v<const std::vector<double>&>);
static_assert(sr::is_host_viewable_v<sr::host_span<float>>);
static_assert(sr::is_host_viewable_v<Eigen::VectorXf&>);
static_assert(!sr::is_host_viewable_v<sr::device_span<float>>);
static_assert(!sr::is_host_viewable_v<int>);
static_assert(!std::is_convertible_v<sr::device_span<float>, sr::host_span<float>>);
static_assert(!std::is_convertible_v<sr::host_span<float>, sr::device_span<float>>);
static_assert(std::is_convertible_v<sr::host_span<float>, sr::host_span<const float>>);
static_assert(!std::is_convertible_v<sr::host_span<const float>, sr::host_span<float>>);
static_assert(
    std::is_same_v<sr::host_view_t<const std::vector<float>&>, sr::host_span<const float>>);
static_assert(std::is_trivially_copyable_v<sr::host_span<float>>);

TEST_CASE("span: views std containers without copying") {
  std::vector<float> v = {1, 2, 3};
  sr::host_span<float> s(v);
  CHECK(s.data() == v.data());
  CHECK(s.size() == 3);
  s[1] = 5;
  CHECK(v[1] == 5);
  const std::array<double, 2> a = {1.5, 2.5};
  sr::host_span<const double> c(a);
  CHECK(c.size() == 2);
  CHECK(c[1] == 2.5);
  CHECK(sr::host_span<const float>(s).data() == v.data());
  CHECK(s.subspan(1, 2)[0] == 5);
  CHECK(s.first(1).size() == 1);
  CHECK(sr::host_span<float>().empty());
}

TEST_CASE("span: views contiguous Eigen objects and refuses strided ones") {
  Eigen::VectorXf v = Eigen::VectorXf::LinSpaced(4, 0, 3);
  sr::host_span<float> s(v);
  CHECK(s.size() == 4);
  CHECK(s.data() == v.data());
  Eigen::Map<Eigen::VectorXd> m(nullptr, 0);
  CHECK(sr::host_span<double>(m).empty());
  Eigen::Matrix<float, 3, 4> mat;
  CHECK(sr::host_span<float>(mat).size() == 12);  // whole contiguous matrix
  Eigen::MatrixXf big(4, 6);
  auto col = big.col(2);  // contiguous column of a column-major matrix
  CHECK(sr::host_span<float>(col).data() == big.data() + 8);
  auto row = big.row(1);  // inner stride 4: not a contiguous span
  CHECK_THROWS_AS(sr::host_span<float>{row}, sr::error);
  auto block = big.block(0, 0, 2, 2);  // outer stride 4 != inner size 2
  CHECK_THROWS_AS(sr::host_span<float>{block}, sr::error);
  Eigen::Map<Eigen::VectorXf, 0, Eigen::InnerStride<>> strided(big.data(), 3,
                                                               Eigen::InnerStride<>(2));
  CHECK_THROWS_WITH_AS(sr::host_span<float>{strided}, doctest::Contains("inner stride 2"),
                       sr::error);
}

TEST_CASE("span: algorithms take Eigen vectors directly") {
  Eigen::VectorXf r(8), a(8);
  r << 1, 1, 0, 0, 0, 1, 0, 0;
  sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{1, 8}, a);
  CHECK(a(0) == doctest::Approx(1.2076).epsilon(1e-4));
  CHECK(a(2) == doctest::Approx(-0.7246).epsilon(1e-4));
}
