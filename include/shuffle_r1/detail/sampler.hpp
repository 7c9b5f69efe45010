/// @file detail/sampler.hpp
/// @brief The ABS sampler's definition, shared by the CPU and GPU backends.
///
/// Successive sampling without replacement is computed as a sequence of i.i.d. draws from the
/// sampling masses in which repeats are skipped: the first occurrences, in order, follow exactly
/// the successive-sampling distribution (the next new pair is drawn with probability
/// proportional to its mass among the pairs not yet taken). To bound the number of draws when a
/// few pairs hold most of the mass, a round proceeds in *phases*: phase p makes at most
/// L_p = 2 * (still needed) + 32 draws from the masses of the pairs not taken before phase p,
/// then a new phase starts from the reduced table. Every rule depends only on past draws, so the
/// result is exact successive sampling and the same on every backend.
///
/// Masses are integers: q_j / q_max quantized to 2^(62 - ceil(log2 K)) units (relative error
/// below 2^-40 for every pair within 2^-20 of the heaviest one), and a pair with mathematically
/// positive mass gets at least one unit. Integer masses make the prefix sums, the draws and hence
/// the selections bit-identical on any platform. See docs/design.md, "ABS sampler".
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/detail headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/detail/int_math.hpp>
#include <shuffle_r1/random.hpp>
#include <shuffle_r1/types.hpp>

#include <cstdint>

namespace shuffle_r1::detail {

/// Random streams of the library (counter word 1, high byte).
enum class rng_stream : std::uint32_t {
  abs_weighted = 0,  ///< ABS draws by mass
  abs_fill = 1,      ///< ABS fill of zero-mass pairs (short_policy::fill)
};

/// Largest number of pairs ABS accepts (draw counters are 32-bit per phase).
inline constexpr std::int64_t max_shuffle_pairs = std::int64_t{1} << 31;
/// Phases are numbered in 24 bits of the counter.
inline constexpr std::uint32_t max_phases = 1u << 24;

/// Draws a phase may make: twice what is still needed plus a constant.
SHUFFLE_R1_HD constexpr std::int64_t phase_draw_limit(std::int64_t needed) noexcept {
  return 2 * needed + 32;
}

/// The two 64-bit words of Philox block `block` of (stream, phase, round) at (seed, step).
/// Draw d of a phase uses word d % 2 of block d / 2.
SHUFFLE_R1_HD inline philox_block draw_block(std::uint64_t seed, std::uint32_t step,
                                             std::uint32_t round, rng_stream stream,
                                             std::uint32_t phase, std::uint32_t block) noexcept {
  const philox_block counter{
      {block, (static_cast<std::uint32_t>(stream) << 24) | phase, round, step}};
  return philox4x32_10(counter, philox_key_from_seed(seed));
}

/// Word `which` (0 or 1) of a block as 64 bits.
SHUFFLE_R1_HD inline std::uint64_t block_word(const philox_block& b, int which) noexcept {
  return which == 0 ? join64(b.v[0], b.v[1]) : join64(b.v[2], b.v[3]);
}

/// Fractional bits of the integer masses for K pairs: total mass stays below 2^62.
SHUFFLE_R1_HD constexpr int mass_bits(std::int64_t K) noexcept {
  return 62 - ceil_log2(static_cast<std::uint64_t>(K < 1 ? 1 : K));
}

/// cos(pi/2 * u) and sin(pi/2 * u) for u in [0, 1], deterministic (Taylor series of degree 24
/// in explicit operations; error below 1e-17 on [0, pi/2]).
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double det_cos_half_pi(double u) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  const double x = fp::mul(1.5707963267948966, u), z = fp::mul(x, x);
  // cos x = sum (-1)^k z^k / (2k)!, k = 0..12
  double p = 1.6117375710961184e-24;                   // 1/24!
  p = fp::sub(fp::mul(p, z), 8.8967913924505741e-22);  // 1/22!
  p = fp::add(fp::mul(p, z), 4.1103176233121648e-19);  // 1/20!
  p = fp::sub(fp::mul(p, z), 1.5619206968586225e-16);  // 1/18!
  p = fp::add(fp::mul(p, z), 4.7794773323873853e-14);  // 1/16!
  p = fp::sub(fp::mul(p, z), 1.1470745597729725e-11);  // 1/14!
  p = fp::add(fp::mul(p, z), 2.08767569878681e-09);    // 1/12!
  p = fp::sub(fp::mul(p, z), 2.7557319223985888e-07);  // 1/10!
  p = fp::add(fp::mul(p, z), 2.4801587301587302e-05);  // 1/8!
  p = fp::sub(fp::mul(p, z), 0.0013888888888888889);   // 1/6!
  p = fp::add(fp::mul(p, z), 0.041666666666666664);    // 1/4!
  p = fp::sub(fp::mul(p, z), 0.5);                     // 1/2!
  return fp::add(fp::mul(p, z), 1.0);
}
/// @copydoc det_cos_half_pi
SHUFFLE_R1_HD inline double det_sin_half_pi(double u) noexcept {
  return det_cos_half_pi(fp::sub(1.0, u));
}

/// Per-call constants of the mass transform, computed once on the host.
struct mass_plan {
  transform kind = transform::power;
  double coeff = 1.0;  // kappa of power
  double tau = 1.0;    // softmax / log_softmax temperature
  double w_ref = 0.0;  // max weight (power, softmax); min weight (inverse)
  double q_ref = 0.0;  // ln q of the max weight (power, kappa != 0, 1); q_max otherwise
  double unit = 0.0;   // 2^mass_bits
};

/// Whether pair j's mass is mathematically positive (zero-mass pairs are never drawn).
SHUFFLE_R1_HD inline bool mass_positive(const mass_plan& m, double w) noexcept {
  switch (m.kind) {
    case transform::power:
      return m.coeff == 0.0 || w > 0.0;
    case transform::log_softmax:
      return w > 0.0;
    default:
      return true;
  }
}

/// Integer mass of a pair with weight w (finite, >= 0) under plan m.
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline std::uint64_t mass_of(const mass_plan& m,
                                                                double w) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  if (!mass_positive(m, w)) return 0;
  double ratio = 1.0;  // q / q_max in [0, 1]
  switch (m.kind) {
    case transform::power:
      if (m.coeff == 0.0) {
        ratio = 1.0;
      } else if (m.coeff == 1.0) {
        ratio = fp::div(w, m.w_ref);
      } else {
        ratio = det_exp(fp::mul(m.coeff, fp::sub(det_log(w), m.q_ref)));
      }
      break;
    case transform::softmax:
      ratio = det_exp(fp::div(fp::sub(w, m.w_ref), m.tau));
      break;
    case transform::log_softmax:
      ratio = fp::div(det_log1p(fp::div(w, m.tau)), m.q_ref);
      break;
    case transform::inverse:
      ratio = fp::div(fp::div(1.0, fp::add(w, 1e-6)), m.q_ref);
      break;
  }
  const double units = fp::add(fp::mul(ratio, m.unit), 0.5);
  const auto q = static_cast<std::uint64_t>(units);
  return q == 0 ? 1 : q;
}

/// A sampling table: inclusive prefix sums of masses and a guide table over 2^gbits buckets.
struct mass_table {
  const std::uint64_t* cum = nullptr;  // cum[j] = mass_0 + ... + mass_j
  const std::uint32_t* guide = nullptr;
  std::uint64_t total = 0;
  int gbits = 1;
};

/// Guide bits for K pairs: 2^gbits >= K buckets, at least 2.
SHUFFLE_R1_HD constexpr int guide_bits(std::int64_t K) noexcept {
  const int g = ceil_log2(static_cast<std::uint64_t>(K < 2 ? 2 : K));
  return g;
}

/// The pair drawn by the 64-bit random word x: the j with cum[j-1] <= r < cum[j] where
/// r = floor(x * total / 2^64). The guide entry of x's top bits is a lower bound of j.
/// @pre total > 0.
SHUFFLE_R1_HD inline std::int64_t draw_pair(const mass_table& t, std::uint64_t x) noexcept {
  const std::uint64_t r = mulhi64(x, t.total);
  std::int64_t j = t.guide[x >> (64 - t.gbits)];
  while (t.cum[j] <= r)
    ++j;
  return j;
}

}  // namespace shuffle_r1::detail
