/// @file detail/advantage_math.hpp
/// @brief Scalar steps of advantage normalization shared by the CPU and GPU backends.
///
/// A backend computes, per group, min and max of the rewards and three canonical sums (of x,
/// of d = x - mean and of d^2); everything after the sums is here, so both backends turn the
/// same sums into the same bits.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/detail headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/detail/det_math.hpp>

#include <cmath>
#include <cstdint>

namespace shuffle_r1::detail {

/// An exact power-of-two scale c = c1 * c2 (two factors so that c may leave the double range),
/// applied when a group's magnitudes are so large or small that squares would overflow or
/// underflow. Rewards of type float never need it; it is inactive (c = 1) in all usual cases.
struct pow2_scale {
  double c1 = 1.0, c2 = 1.0;  ///< multiply by c1 then c2
  double u1 = 1.0, u2 = 1.0;  ///< the inverse factors: 1/c1, 1/c2
  bool active = false;
};

/// The range of max|x| that needs no rescaling, [scale_floor, scale_ceiling]. Above 2^500 the
/// squares of deviations (up to 2 max|x|) and their sums come near the double range. Below
/// 2^-400 the smallest non-zero deviation, an ulp of max|x| (2^-52 max|x|), has a square
/// outside the normal range (2^-1022): at 2^-490 it squares to 0, so sigma came out 0 for
/// rewards that differ. With an eps below sigma (0, or the smallest subnormal) the advantages
/// were then 0 instead of about +-0.7, or NaN and inf (0 * (1 / eps)). 2^-400 keeps that square
/// above 2^-904.
inline constexpr double scale_floor = 0x1p-400;
inline constexpr double scale_ceiling = 0x1p500;

/// Scale that brings max_abs into [1, 2) when max_abs is outside [scale_floor, scale_ceiling].
SHUFFLE_R1_HD inline pow2_scale scale_for(double max_abs) noexcept {
  pow2_scale s;
  if (!(max_abs > scale_ceiling) && !(max_abs < scale_floor)) return s;
  if (max_abs == 0.0) return s;
  // Exponent of max_abs (subnormals handled by a pre-scale of 2^54).
  int e = 0;
  double m = max_abs;
  if (m < 0x1p-1022) {
    m = fp::mul(m, 0x1p54);
    e = -54;
  }
  e += static_cast<int>((bits_of(m) >> 52) & 0x7FF) - 1023;
  const int a = -e / 2, b = -e - a;  // c = 2^-e = 2^a * 2^b, |a|, |b| <= 538
  s.c1 = pow2(a);
  s.c2 = pow2(b);
  s.u1 = pow2(-a);
  s.u2 = pow2(-b);
  s.active = true;
  return s;
}

/// v * c, exact for normal results.
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double scale_apply(const pow2_scale& s,
                                                             double v) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  return s.active ? fp::mul(fp::mul(v, s.c1), s.c2) : v;
}

/// v / c, exact for normal results.
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double scale_undo(const pow2_scale& s,
                                                            double v) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  return s.active ? fp::mul(fp::mul(v, s.u1), s.u2) : v;
}

/// x / (sigma_batch + eps), the advantage of a verl singleton under batch_std, from the
/// denominator den = sigma_batch + eps in the batch's scale s. den is 0 only when sigma_batch
/// is 0 (every reward equal to x) and eps is 0, where the advantage is 0, or eps vanished in
/// the scale (eps * c below the smallest subnormal, c ~ 1 / |x|): then the quotient, at least
/// 2^1074, is beyond every T and the result is +-infinity, which the range check refuses.
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double batch_singleton(double x, const pow2_scale& s,
                                                                 double den, double eps) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  if (den > 0.0) return fp::div(scale_apply(s, x), den);
  if (x == 0.0 || eps == 0.0) return 0.0;
  return x > 0.0 ? HUGE_VAL : -HUGE_VAL;
}

/// Sample variance from the canonical sums of d and d^2 (corrected two-pass formula),
/// (sum d^2 - (sum d)^2 / n) / (n - ddof), clamped at 0. @pre n > ddof.
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double variance_from_sums(double sum_d, double sum_dd,
                                                                    std::int64_t n,
                                                                    int ddof) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  const double nd = static_cast<double>(n);
  const double num = fp::sub(sum_dd, fp::div(fp::mul(sum_d, sum_d), nd));
  const double var = fp::div(num, static_cast<double>(n - ddof));
  return var > 0.0 ? var : 0.0;
}

/// The leave-one-out factor n / (n - 1) of RLOO. @pre n >= 2.
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double rloo_factor(std::int64_t n) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  return fp::div(static_cast<double>(n), static_cast<double>(n - 1));
}

}  // namespace shuffle_r1::detail
