/// @file detail/det_math.hpp
/// @brief Deterministic double arithmetic: log, exp and log1p built only from IEEE-754
/// correctly rounded operations (+, -, *, /) and exact bit manipulation.
///
/// The platform's own `std::log` differs between glibc, CUDA's libdevice and other libms in the
/// last bit, so any selection derived from it could differ between backends. These functions
/// are evaluated in a fixed order of correctly rounded operations, with FMA contraction
/// forbidden (see config.hpp), so they return bit-identical results on every conforming
/// platform. Accuracy: within a few ulp of the true value, far beyond what sampling needs.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/detail headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

namespace shuffle_r1::detail {

/// Correctly rounded operations that no compiler may fuse.
namespace fp {
SHUFFLE_R1_HD inline double add(double a, double b) noexcept {
#if SHUFFLE_R1_DEVICE_PASS
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
SHUFFLE_R1_HD inline double sub(double a, double b) noexcept {
#if SHUFFLE_R1_DEVICE_PASS
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
SHUFFLE_R1_HD inline double mul(double a, double b) noexcept {
#if SHUFFLE_R1_DEVICE_PASS
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
SHUFFLE_R1_HD inline double div(double a, double b) noexcept {
#if SHUFFLE_R1_DEVICE_PASS
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
SHUFFLE_R1_HD inline double sqrt(double a) noexcept {
#if SHUFFLE_R1_DEVICE_PASS
  return __dsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
}  // namespace fp

/// Bit pattern of a double.
SHUFFLE_R1_HD inline std::uint64_t bits_of(double x) noexcept {
#if SHUFFLE_R1_DEVICE_PASS
  return static_cast<std::uint64_t>(__double_as_longlong(x));
#else
  std::uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
#endif
}

/// Double with the given bit pattern.
SHUFFLE_R1_HD inline double double_of(std::uint64_t b) noexcept {
#if SHUFFLE_R1_DEVICE_PASS
  return __longlong_as_double(static_cast<long long>(b));
#else
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
#endif
}

/// 2^k as a double, for -1022 <= k <= 1023 (exact).
SHUFFLE_R1_HD inline double pow2(int k) noexcept {
  return double_of(static_cast<std::uint64_t>(k + 1023) << 52);
}

/// Finite test on the bit pattern: stays correct under -ffast-math, unlike std::isfinite.
SHUFFLE_R1_HD inline bool is_finite(double x) noexcept {
  return (bits_of(x) & 0x7FF0000000000000ull) != 0x7FF0000000000000ull;
}

/// Finite test for float on the bit pattern.
SHUFFLE_R1_HD inline bool is_finite(float x) noexcept {
  std::uint32_t b;
#if SHUFFLE_R1_DEVICE_PASS
  b = static_cast<std::uint32_t>(__float_as_int(x));
#else
  std::memcpy(&b, &x, sizeof b);
#endif
  return (b & 0x7F800000u) != 0x7F800000u;
}

// ln 2 split so that k * ln2_hi is exact for |k| < 2^21 (ln2_hi has 32 significant bits).
inline constexpr double ln2_hi = 6.93147180369123816490e-01;
inline constexpr double ln2_lo = 1.90821492927058770002e-10;
inline constexpr double inv_ln2 = 1.4426950408889634;
inline constexpr double sqrt2 = 1.4142135623730951;

/// Natural logarithm of a finite x > 0, deterministic.
///
/// Reduction x = 2^e * m with m in (sqrt(1/2), sqrt(2)], then ln m = 2 atanh(s) with
/// s = (m - 1) / (m + 1), |s| < 0.172, summed as a series in s^2 to below 2^-56.
/// @pre x > 0 and finite (not checked: callers validate).
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double det_log(double x) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  int e = 0;
  if (x < 0x1p-1022) {  // subnormal: scale into the normal range (exact)
    x = fp::mul(x, 0x1p54);
    e = -54;
  }
  const std::uint64_t b = bits_of(x);
  e += static_cast<int>((b >> 52) & 0x7FF) - 1023;
  double m = double_of((b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);  // [1, 2)
  if (m > sqrt2) {
    m = fp::mul(m, 0.5);
    e += 1;
  }
  const double f = fp::sub(m, 1.0);  // exact (Sterbenz)
  const double s = fp::div(f, fp::add(2.0, f));
  const double z = fp::mul(s, s);
  // P(z) = 1/3 + z/5 + z^2/7 + ... + z^10/23
  double p = 0.043478260869565216;
  p = fp::add(fp::mul(p, z), 0.047619047619047616);
  p = fp::add(fp::mul(p, z), 0.052631578947368418);
  p = fp::add(fp::mul(p, z), 0.058823529411764705);
  p = fp::add(fp::mul(p, z), 0.066666666666666666);
  p = fp::add(fp::mul(p, z), 0.076923076923076927);
  p = fp::add(fp::mul(p, z), 0.090909090909090912);
  p = fp::add(fp::mul(p, z), 0.1111111111111111);
  p = fp::add(fp::mul(p, z), 0.14285714285714285);
  p = fp::add(fp::mul(p, z), 0.20000000000000001);
  p = fp::add(fp::mul(p, z), 0.33333333333333331);
  // ln m = 2s + 2 s z P(z)
  const double two_s = fp::mul(2.0, s);
  const double ln_m = fp::add(two_s, fp::mul(fp::mul(two_s, z), p));
  const double ed = static_cast<double>(e);
  return fp::add(fp::mul(ed, ln2_hi), fp::add(fp::mul(ed, ln2_lo), ln_m));
}

/// e^x for finite x, deterministic. Returns 0 below -745.2 and +inf above 709.8.
///
/// Reduction x = k ln2 + r with |r| <= ln2/2 (Cody-Waite, two-part ln 2), Taylor series of
/// e^r to degree 13 (truncation below 2^-60), then an exact scaling by 2^k in two steps so that
/// subnormal results round once.
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double det_exp(double x) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  if (x < -745.2) return 0.0;
  if (x > 709.8) return HUGE_VAL;
  const double kd = std::floor(fp::add(fp::mul(x, inv_ln2), 0.5));
  const double r = fp::sub(fp::sub(x, fp::mul(kd, ln2_hi)), fp::mul(kd, ln2_lo));
  double p = 1.6059043836821613e-10;  // 1/13!
  p = fp::add(fp::mul(p, r), 2.08767569878681e-09);
  p = fp::add(fp::mul(p, r), 2.505210838544172e-08);
  p = fp::add(fp::mul(p, r), 2.7557319223985888e-07);
  p = fp::add(fp::mul(p, r), 2.7557319223985893e-06);
  p = fp::add(fp::mul(p, r), 2.4801587301587302e-05);
  p = fp::add(fp::mul(p, r), 0.00019841269841269841);
  p = fp::add(fp::mul(p, r), 0.0013888888888888889);
  p = fp::add(fp::mul(p, r), 0.0083333333333333332);
  p = fp::add(fp::mul(p, r), 0.041666666666666664);
  p = fp::add(fp::mul(p, r), 0.16666666666666666);
  p = fp::add(fp::mul(p, r), 0.5);
  p = fp::add(fp::mul(p, r), 1.0);
  p = fp::add(fp::mul(p, r), 1.0);
  const int k = static_cast<int>(kd);
  if (k > 1023) return fp::mul(fp::mul(p, pow2(1023)), pow2(k - 1023));
  if (k < -1020) return fp::mul(fp::mul(p, pow2(k + 600)), pow2(-600));
  return fp::mul(p, pow2(k));
}

/// ln(1 + y) for finite y > -1, deterministic and accurate for small y.
///
/// Uses u = 1 + y rounded, then ln(u) * y / (u - 1), which cancels the rounding of u.
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double det_log1p(double y) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  const double u = fp::add(1.0, y);
  if (u == 1.0) return y;
  return fp::mul(det_log(u), fp::div(y, fp::sub(u, 1.0)));
}

}  // namespace shuffle_r1::detail
