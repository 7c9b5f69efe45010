/// @file cpu/shuffle.hpp
/// @brief CPU implementation of shuffle_pairs (ABS). Internal: include <shuffle_r1/shuffle.hpp>.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/simd.hpp>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/detail/sampler.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace shuffle_r1 {

/// What shuffle_pairs did.
struct shuffle_summary {
  std::int64_t pairs = 0;          ///< K, pairs offered
  std::int64_t nonzero_pairs = 0;  ///< pairs with positive sampling mass
  std::int64_t rounds = 0;         ///< S
  std::int64_t per_round = 0;      ///< pairs drawn per round (T, or fewer under shrink)
  std::int64_t size = 0;           ///< rounds * per_round: entries written to `order`
  std::int64_t extra_phases = 0;   ///< phases beyond the first, over all rounds (diagnostic)
};

namespace detail {

/// Validated shape of a shuffle: S, T (requested) and the mass plan (without references).
struct shuffle_shape {
  std::int64_t rounds = 0, per_round = 0;
};

/// Checks every option that does not depend on the weights. @throws error.
inline shuffle_shape validate_shuffle_options(const char* fn, std::int64_t K,
                                              const shuffle_options& o) {
  switch (o.kind) {
    case transform::power:
    case transform::softmax:
    case transform::log_softmax:
    case transform::inverse:
      break;
    default:
      fail(errc::invalid_argument, fn, "options.kind has no valid transform value (",
           static_cast<int>(o.kind), ")");
  }
  switch (o.on_short) {
    case short_policy::error:
    case short_policy::fill:
    case short_policy::shrink:
      break;
    default:
      fail(errc::invalid_argument, fn, "options.on_short has no valid policy value (",
           static_cast<int>(o.on_short), ")");
  }
  if (o.rounds < 1 || o.rounds > 0xFFFFFFFFll)
    fail(errc::invalid_argument, fn, "options.rounds is ", o.rounds,
         ", expected 1 <= rounds < 2^32");
  if (K > max_shuffle_pairs)
    fail(errc::out_of_range, fn, "there are ", K, " pairs; at most ", max_shuffle_pairs,
         " are supported");
  if (o.step < 0 || o.step > 0xFFFFFFFFll)
    fail(errc::invalid_argument, fn, "options.step is ", o.step, ", expected 0 <= step < 2^32");
  const std::int64_t T = o.per_round < 0 ? K / o.rounds : o.per_round;
  if (T > K)
    fail(errc::too_few_pairs, fn, "options.per_round is ", T, " but there are only ", K,
         " pairs; a round draws distinct pairs");
  if (o.rounds > 0 && T > 0 && o.rounds > (std::int64_t{1} << 62) / T)
    fail(errc::out_of_range, fn, "rounds * per_round overflows");
  if (o.kind == transform::power && (!is_finite(o.coeff) || o.coeff < 0.0))
    fail(errc::invalid_argument, fn, "options.coeff is ", o.coeff,
         ", expected a finite value >= 0");
  if (o.kind == transform::softmax || o.kind == transform::log_softmax) {
    if (!is_finite(o.t_min) || !is_finite(o.t_max) || !(o.t_min > 0.0) || o.t_max < o.t_min)
      fail(errc::invalid_argument, fn, "options.t_min = ", o.t_min,
           " and options.t_max = ", o.t_max, " must be finite with 0 < t_min <= t_max");
    if (o.total_steps < 1)
      fail(errc::invalid_argument, fn, "options.total_steps is ", o.total_steps, ", expected >= 1");
    if (o.step > o.total_steps)
      fail(errc::invalid_argument, fn, "options.step is ", o.step,
           ", beyond options.total_steps = ", o.total_steps);
  }
  return shuffle_shape{o.rounds, T};
}

/// The temperature of the softmax / log_softmax schedules at this step (host, deterministic).
SHUFFLE_R1_STRICT_FP inline double schedule_tau(const shuffle_options& o) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  const double u = fp::div(static_cast<double>(o.step), static_cast<double>(o.total_steps));
  const double phase = o.kind == transform::softmax ? det_cos_half_pi(u) : det_sin_half_pi(u);
  return fp::add(fp::mul(fp::sub(o.t_max, o.t_min), phase), o.t_min);
}

}  // namespace detail

namespace detail::cpu {

/// Reusable scratch of the sampler.
struct shuffle_scratch {
  std::vector<std::uint64_t> mass, cum, cum_phase, fill_mass, fill_cum;
  std::vector<std::uint32_t> guide, guide_phase, fill_guide;
  std::vector<std::uint64_t> taken;  // bitmap of pairs taken in the current round

  /// Bytes reserved by the buffers.
  std::size_t bytes() const noexcept {
    return (mass.capacity() + cum.capacity() + cum_phase.capacity() + fill_mass.capacity() +
            fill_cum.capacity() + taken.capacity()) *
               sizeof(std::uint64_t) +
           (guide.capacity() + guide_phase.capacity() + fill_guide.capacity()) *
               sizeof(std::uint32_t);
  }
};

/// Checks weights (finite, >= 0) and fills the mass plan. @throws error naming the pair.
template <class T>
SHUFFLE_R1_STRICT_FP inline mass_plan plan_masses(const char* fn, host_span<const T> w,
                                                  const shuffle_options& o) {
  SHUFFLE_R1_STRICT_FP_BODY
  mass_plan m;
  m.kind = o.kind;
  m.coeff = o.coeff;
  m.unit = pow2(mass_bits(static_cast<std::int64_t>(w.size())));
  // One branch-free pass over the bit patterns (vectorizes): a weight is finite and >= 0 with
  // its sign bit clear iff its pattern is below that of +infinity, and on such patterns the
  // integer order is the numeric order, so the maximum and minimum are integer reductions.
  // Anything else (a bad weight, or -0.0) takes the slow pass, which names the offending pair.
  using bits_t = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr bits_t inf_bits = sizeof(T) == 4 ? bits_t(0x7F800000u) : bits_t(0x7FF0000000000000ull);
  bits_t bad = 0;  // an integer OR vectorizes where `bool &=` does not (GCC 12)
  bits_t hi_bits = 0, lo_bits = inf_bits;
  for (std::size_t j = 0; j < w.size(); ++j) {
    bits_t b;
    std::memcpy(&b, &w[j], sizeof b);
    bad |= static_cast<bits_t>(b >= inf_bits);
    hi_bits = b > hi_bits ? b : hi_bits;
    lo_bits = b < lo_bits ? b : lo_bits;
  }
  const bool ok = bad == 0;
  T hi = T(0), lo = T(0);
  if (ok && !w.empty()) {
    std::memcpy(&hi, &hi_bits, sizeof hi);
    std::memcpy(&lo, &lo_bits, sizeof lo);
  } else if (!ok) {
    for (std::size_t j = 0; j < w.size(); ++j) {
      const double v = static_cast<double>(w[j]);
      if (!is_finite(w[j]))
        fail(errc::non_finite, fn, "weights[", j, "] is ",
             v != v ? "NaN" : (v > 0 ? "+inf" : "-inf"));
      if (v < 0.0) fail(errc::invalid_argument, fn, "weights[", j, "] is ", v, ", expected >= 0");
      if (j == 0 || w[j] > hi) hi = w[j];
      if (j == 0 || w[j] < lo) lo = w[j];
    }
  }
  const double w_max = static_cast<double>(hi), w_min = static_cast<double>(lo);
  switch (o.kind) {
    case transform::power:
      m.w_ref = w_max;
      if (o.coeff != 0.0 && o.coeff != 1.0 && w_max > 0.0) m.q_ref = det_log(w_max);
      break;
    case transform::softmax:
      m.tau = schedule_tau(o);
      m.w_ref = w_max;
      break;
    case transform::log_softmax:
      m.tau = schedule_tau(o);
      m.q_ref = det_log1p(fp::div(w_max, m.tau));
      break;
    case transform::inverse:
      m.w_ref = w_min;
      m.q_ref = fp::div(1.0, fp::add(w_min, 1e-6));
      break;
  }
  return m;
}

#if SHUFFLE_R1_X86_SIMD
/// The vector part of masses_of's default-transform loop with AVX2, four weights at a time:
/// the same divisions, multiplications and additions, then the truncation to an integer, for
/// which AVX2 (unlike AVX-512) has no instruction: from the exponent e of units (a double in
/// [0.5, 2^62 + 0.5]), the significand with its implicit bit shifted left by e - 52 or right by
/// 52 - e (shifts by 64 or more, including "negative" counts, give 0), i.e. exactly the
/// truncation of the scalar cast. Writes out[0..4 floor(K/4)), adds the positive weights to
/// `nonzero`, returns the number of weights done.
template <class T>
SHUFFLE_R1_AVX2 std::int64_t masses_power1_avx2(const T* w, std::int64_t K, double w_ref,
                                                double unit, std::uint64_t* out,
                                                std::int64_t& nonzero) {
  SHUFFLE_R1_STRICT_FP_BODY
  const __m256d ref = _mm256_set1_pd(w_ref), u = _mm256_set1_pd(unit), half = _mm256_set1_pd(0.5);
  const __m256i mantissa = _mm256_set1_epi64x((std::int64_t{1} << 52) - 1);
  const __m256i implicit = _mm256_set1_epi64x(std::int64_t{1} << 52);
  const __m256i bias = _mm256_set1_epi64x(1023 + 52), one = _mm256_set1_epi64x(1);
  const __m256i zero = _mm256_setzero_si256();
  std::int64_t j = 0, positives = 0;
  for (; j + 4 <= K; j += 4) {
    __m256d v;
    if constexpr (std::is_same_v<T, float>) {
      v = _mm256_cvtps_pd(_mm_loadu_ps(w + j));
    } else {
      v = _mm256_loadu_pd(w + j);
    }
    const __m256d units = _mm256_add_pd(_mm256_mul_pd(_mm256_div_pd(v, ref), u), half);
    const __m256i b = _mm256_castpd_si256(units);
    const __m256i e = _mm256_sub_epi64(_mm256_srli_epi64(b, 52), bias);  // exponent - 52
    const __m256i m = _mm256_or_si256(_mm256_and_si256(b, mantissa), implicit);
    const __m256i q =
        _mm256_or_si256(_mm256_sllv_epi64(m, e), _mm256_srlv_epi64(m, _mm256_sub_epi64(zero, e)));
    const __m256d positive = _mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_GT_OQ);
    // (q | (q == 0)) & -positive, as in the scalar loop
    const __m256i q1 = _mm256_or_si256(q, _mm256_and_si256(_mm256_cmpeq_epi64(q, zero), one));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j),
                        _mm256_and_si256(q1, _mm256_castpd_si256(positive)));
    positives += popcount64(static_cast<std::uint64_t>(_mm256_movemask_pd(positive)));
  }
  nonzero += positives;
  return j;
}

/// masses_power1_avx2 with AVX-512: eight weights at a time, and the truncation to an integer
/// is AVX-512DQ's conversion with truncation (units <= 2^62 + 0.5, so it is exact, as the
/// scalar cast). Writes out[0..8 floor(K/8)), adds the positive weights to `nonzero`, returns
/// the number of weights done.
template <class T>
SHUFFLE_R1_AVX512 std::int64_t masses_power1_avx512(const T* w, std::int64_t K, double w_ref,
                                                    double unit, std::uint64_t* out,
                                                    std::int64_t& nonzero) {
  SHUFFLE_R1_STRICT_FP_BODY
  const __m512d ref = _mm512_set1_pd(w_ref), u = _mm512_set1_pd(unit), half = _mm512_set1_pd(0.5);
  const __m512i one = _mm512_set1_epi64(1);
  std::int64_t j = 0, positives = 0;
  for (; j + 8 <= K; j += 8) {
    __m512d v;
    if constexpr (std::is_same_v<T, float>) {
      v = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(w + j));  // maskz: see draw_words_avx512
    } else {
      v = _mm512_loadu_pd(w + j);
    }
    const __m512d units = _mm512_add_pd(_mm512_mul_pd(_mm512_div_pd(v, ref), u), half);
    const __m512i q = _mm512_cvttpd_epi64(units);
    const __mmask8 positive = _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GT_OQ);
    // (q | (q == 0)) & -positive, as in the scalar loop
    const __m512i q1 =
        _mm512_mask_or_epi64(q, _mm512_cmpeq_epi64_mask(q, _mm512_setzero_si512()), q, one);
    _mm512_storeu_si512(out + j, _mm512_maskz_mov_epi64(positive, q1));
    positives += popcount64(static_cast<std::uint64_t>(positive));
  }
  nonzero += positives;
  return j;
}
#endif

/// mass_of for every weight (in one STRICT_FP function so that mass_of inlines); returns the
/// number of non-zero masses.
template <class T>
SHUFFLE_R1_STRICT_FP inline std::int64_t masses_of(const mass_plan& m, const T* w, std::int64_t K,
                                                   std::uint64_t* out) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  std::int64_t nonzero = 0;
  if (m.kind == transform::power && m.coeff == 1.0 && m.w_ref > 0.0) {
    // The default transform, branch-free so that it vectorizes: the operations of mass_of.
    // (units <= 2^62 + 0.5, so the conversion through int64 is exact and vectorizes)
    std::int64_t j = 0;
#if SHUFFLE_R1_X86_SIMD
    // (AVX2 has no double -> int64 conversion: masses_power1_avx2 emulates the truncation)
    if (has_avx512())
      j = masses_power1_avx512(w, K, m.w_ref, m.unit, out, nonzero);
    else if (has_avx2())
      j = masses_power1_avx2(w, K, m.w_ref, m.unit, out, nonzero);
#endif
    for (; j < K; ++j) {
      const double v = static_cast<double>(w[j]);
      const double units = fp::add(fp::mul(fp::div(v, m.w_ref), m.unit), 0.5);
      const auto q = static_cast<std::uint64_t>(static_cast<std::int64_t>(units));
      const auto positive = static_cast<std::uint64_t>(v > 0.0);
      out[j] = (q | static_cast<std::uint64_t>(q == 0)) & (0 - positive);
      nonzero += static_cast<std::int64_t>(positive);
    }
    return nonzero;
  }
  for (std::int64_t j = 0; j < K; ++j) {
    out[j] = mass_of(m, static_cast<double>(w[j]));
    nonzero += out[j] != 0;
  }
  return nonzero;
}

/// Entries search_from compares at once.
inline constexpr std::int64_t search_width = 4;

/// Padding of the prefix sums: the searches read up to this many entries past the last one.
/// The pad value is above any r (r < total <= 2^62) both as an unsigned and as a signed 64-bit
/// integer (the AVX2 search compares signed).
inline constexpr std::int64_t cum_pad = 8;
inline constexpr std::uint64_t cum_pad_value = 0x7FFFFFFFFFFFFFFFull;

/// Requests the cache line of p (a hint; no effect on results).
inline void prefetch(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p);
#else
  (void)p;
#endif
}

/// The search of draw_pair (detail/sampler.hpp) for r = mulhi64(x, total) from its guide entry
/// j, without a data-dependent branch in the common case: the first search_width candidates
/// are compared at once (the prefix sums are increasing, so the count of those <= r is the
/// number of steps); the loop continues only when all of them are <= r. Same result as
/// draw_pair.
inline std::int64_t search_from(const mass_table& t, std::uint64_t r, std::int64_t j) noexcept {
  for (;;) {
    const std::uint64_t* c = t.cum + j;
    const std::int64_t steps =
        static_cast<std::int64_t>(c[0] <= r) + (c[1] <= r) + (c[2] <= r) + (c[3] <= r);
    j += steps;
    if (steps < search_width) return j;
  }
}

/// The CPU's guide table has K / 2^cpu_guide_shift buckets (the CUDA backend's has K). The guide
/// only gives the search its starting point, so its size changes speed, never a draw: with
/// about 2^cpu_guide_shift pairs per bucket (and starts up to guide_stride - 1 pairs early),
/// the eight-wide searches of the AVX2 and AVX-512 paths end about 97% of the searches in
/// one step at the paper's size, and building the table costs a quarter as much.
inline constexpr int cpu_guide_shift = 2;

/// Sizes of build_table's arrays for K pairs: guide bits (2^gbits buckets), entries of the
/// prefix sums (K plus the searches' padding) and of the guide (one slot past the buckets).
struct table_shape {
  int gbits;
  std::size_t cum, guide;
};
inline table_shape table_shape_of(std::int64_t K) noexcept {
  const int gbits = std::max(1, guide_bits(K) - cpu_guide_shift);
  return {gbits, static_cast<std::size_t>(K + cum_pad), (std::size_t{1} << gbits) + 1};
}

/// Prefix sums between two guide stores of build_table: the guide bound is computed for every
/// guide_stride-th prefix sum only (see build_table).
inline constexpr std::int64_t guide_stride = 4;

/// Builds prefix sums and the guide table of `mass` (masses of taken pairs read as 0 when
/// `taken` is given). Returns the table.
///
/// The guide entry of bucket b only has to be a lower bound of the pair any r of the bucket
/// draws (r >= r_b = floor(b * total / 2^gbits)): exactly, the number of j with cum[j] <= r_b,
/// i.e. with e_j <= b where e_j = ceil(cum[j] * 2^gbits / total). Here e_j is computed in
/// double precision and rounded up generously (x + 2^-16, then + 1), which can only exceed the
/// exact value, and only for every guide_stride-th j (j = guide_stride - 1, 2 guide_stride - 1,
/// ...): storing j + 1 at guide[e_j] in increasing j leaves in each bucket the largest j + 1 of
/// those j with e_j equal to it or less, and buckets without a store take their left
/// neighbour's entry (a running maximum). Each entry is then a count of prefix sums <= r_b or
/// less: still a lower bound, at most one bucket's worth of pairs plus guide_stride - 1 early.
/// The searches are exact from any lower bound, so the guide changes speed, never a draw; with
/// one store per guide_stride prefix sums, building it costs a quarter of a store per pair (a
/// store per pair, extracted from vector registers, took half of build_table on a Zen 5).
/// No search per bucket and no data-dependent branch.
SHUFFLE_R1_STRICT_FP inline mass_table build_table(const std::uint64_t* mass, std::int64_t K,
                                                   const std::uint64_t* taken,
                                                   std::vector<std::uint64_t>& cum,
                                                   std::vector<std::uint32_t>& guide) {
  // Strict: x * scale + margin stays unfused.
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(max_shuffle_pairs <= (std::int64_t{1} << 31),
                "build_table's rounding margin assumes at most 2^31 guide buckets");
  // The searches read up to cum_pad entries past a guide entry: pad with a value above any r.
  const table_shape shape = table_shape_of(K);
  cum.resize(shape.cum);
  std::uint64_t* c = cum.data();
  for (std::int64_t j = K; j < K + cum_pad; ++j)
    c[j] = cum_pad_value;
  std::uint64_t total = 0;
  if (taken) {
    for (std::int64_t j = 0; j < K; ++j) {
      const bool skip = (taken[j >> 6] >> (j & 63)) & 1u;
      total += skip ? 0 : mass[j];
      c[j] = total;
    }
  } else {
    for (std::int64_t j = 0; j < K; ++j) {
      total += mass[j];
      c[j] = total;
    }
  }
  mass_table t;
  t.gbits = shape.gbits;
  const std::int64_t buckets = std::int64_t{1} << t.gbits;
  // One slot past the last bucket takes the stores of pairs whose e_j is `buckets`.
  guide.assign(shape.guide, 0);
  std::uint32_t* g = guide.data();
  if (total > 0) {
    // cum[j] < 2^63 and total > 0: the conversions through int64 are exact up to rounding.
    const double scale = std::ldexp(1.0, t.gbits) / static_cast<double>(total);
    const double margin = 1.0 / 65536;  // far above the rounding error (< 2^-20 at 2^31)
    for (std::int64_t j = guide_stride - 1; j + 1 < K; j += guide_stride) {
      // x <= 2^gbits plus rounding (cum[j] <= total), so e <= buckets + 1
      const double x = static_cast<double>(static_cast<std::int64_t>(c[j])) * scale + margin;
      const auto e = static_cast<std::int64_t>(x) + 1;
      g[std::min(e, buckets)] = static_cast<std::uint32_t>(j + 1);
    }
    std::uint32_t run = 0;
    for (std::int64_t b = 0; b < buckets; ++b) {
      run = std::max(run, g[b]);
      g[b] = run;
    }
  }
  t.cum = c;
  t.guide = g;
  t.total = total;
  return t;
}

/// Draws computed ahead per batch: the random words of 32 Philox blocks, and the pairs they
/// select, are computed before the sequential first-occurrence filter, so that the generator
/// vectorizes and the table lookups of a batch overlap in memory. (64 rather than 32: ABS took
/// 6-8% less time on a Zen 5 at 512 x 16 and 65536 x 16, with four independent Philox
/// registers in flight instead of two; 128 wasted too many draws at the ends of streams.
/// Draws past the end of a stream are discarded, so the size never changes a result.)
inline constexpr int draw_batch = 64;
static_assert(draw_batch % 16 == 0,
              "the vector Philox kernels compute 8 blocks (16 draws) per register or pair");

/// Philox words of draws 2 * first_block .. + draw_batch of one phase (see draw_block), in
/// block-major layout: w[0][b] and w[1][b] are words 0 and 1 of block first_block + b.
inline void draw_words_portable(philox_key key, std::uint32_t c1, std::uint32_t round,
                                std::uint32_t step, std::uint32_t first_block,
                                std::uint64_t (*w)[draw_batch / 2]) noexcept {
  for (int b = 0; b < draw_batch / 2; ++b) {
    const philox_block x = philox4x32_10(
        philox_block{{first_block + static_cast<std::uint32_t>(b), c1, round, step}}, key);
    w[0][b] = join64(x.v[0], x.v[1]);
    w[1][b] = join64(x.v[2], x.v[3]);
  }
}

#if SHUFFLE_R1_X86_SIMD
/// The same words, 8 blocks per register: each 64-bit lane holds one 32-bit Philox word in its
/// low half. `_mm512_mul_epu32` reads only the low halves, and the high halves of the XOR
/// results are never read before the final masking, so the lanes compute exactly the scalar
/// rounds of philox4x32_10.
SHUFFLE_R1_AVX512 inline void draw_words_avx512(philox_key key, std::uint32_t c1,
                                                std::uint32_t round, std::uint32_t step,
                                                std::uint32_t first_block,
                                                std::uint64_t (*w)[draw_batch / 2]) noexcept {
  constexpr int lanes = 8, vectors = draw_batch / 2 / lanes;
  const __m512i m0 = _mm512_set1_epi64(philox_m0), m1 = _mm512_set1_epi64(philox_m1);
  const __m512i low = _mm512_set1_epi64(0xFFFFFFFFll);
  const __mmask8 all = 0xFF;  // maskz forms: GCC 12's unmasked forms warn (-Wuninitialized)
  __m512i x0[vectors], x1[vectors], x2[vectors], x3[vectors];
  for (int q = 0; q < vectors; ++q) {
    x0[q] = _mm512_add_epi64(_mm512_set1_epi64(first_block + q * lanes),
                             _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
    x1[q] = _mm512_set1_epi64(c1);
    x2[q] = _mm512_set1_epi64(round);
    x3[q] = _mm512_set1_epi64(step);
  }
  std::uint32_t k0 = key.v[0], k1 = key.v[1];
  for (int r = 0; r < 10; ++r) {
    const __m512i vk0 = _mm512_set1_epi64(k0), vk1 = _mm512_set1_epi64(k1);
    for (int q = 0; q < vectors; ++q) {
      const __m512i p0 = _mm512_maskz_mul_epu32(all, m0, x0[q]);
      const __m512i p1 = _mm512_maskz_mul_epu32(all, m1, x2[q]);
      const __m512i n0 =
          _mm512_xor_si512(_mm512_xor_si512(_mm512_maskz_srli_epi64(all, p1, 32), x1[q]), vk0);
      const __m512i n2 =
          _mm512_xor_si512(_mm512_xor_si512(_mm512_maskz_srli_epi64(all, p0, 32), x3[q]), vk1);
      x0[q] = n0;
      x1[q] = p1;
      x2[q] = n2;
      x3[q] = p0;
    }
    k0 += philox_w0;
    k1 += philox_w1;
  }
  for (int q = 0; q < vectors; ++q) {
    const __m512i lo0 = _mm512_and_si512(x0[q], low), lo2 = _mm512_and_si512(x2[q], low);
    _mm512_storeu_si512(w[0] + q * lanes,
                        _mm512_or_si512(lo0, _mm512_maskz_slli_epi64(all, x1[q], 32)));
    _mm512_storeu_si512(w[1] + q * lanes,
                        _mm512_or_si512(lo2, _mm512_maskz_slli_epi64(all, x3[q], 32)));
  }
}

/// The same words with AVX2: 4 blocks per register, laid out as in draw_words_avx512, two
/// registers (8 blocks) at a time: with all four the 16 state registers plus the constants
/// do not fit in the 16 ymm registers and GCC spilled state to the stack in every round.
__attribute__((target("avx2"))) inline void draw_words_avx2(
    philox_key key, std::uint32_t c1, std::uint32_t round, std::uint32_t step,
    std::uint32_t first_block, std::uint64_t (*w)[draw_batch / 2]) noexcept {
  constexpr int lanes = 4, vectors = 2;
  const __m256i m0 = _mm256_set1_epi64x(philox_m0), m1 = _mm256_set1_epi64x(philox_m1);
  const __m256i low = _mm256_set1_epi64x(0xFFFFFFFFll);
  for (int half = 0; half < draw_batch / 2 / (lanes * vectors); ++half) {
    __m256i x0[vectors], x1[vectors], x2[vectors], x3[vectors];
    for (int q = 0; q < vectors; ++q) {
      const int v = half * vectors + q;
      x0[q] = _mm256_add_epi64(_mm256_set1_epi64x(first_block + v * lanes),
                               _mm256_set_epi64x(3, 2, 1, 0));
      x1[q] = _mm256_set1_epi64x(c1);
      x2[q] = _mm256_set1_epi64x(round);
      x3[q] = _mm256_set1_epi64x(step);
    }
    std::uint32_t k0 = key.v[0], k1 = key.v[1];
    for (int r = 0; r < 10; ++r) {
      const __m256i vk0 = _mm256_set1_epi64x(k0), vk1 = _mm256_set1_epi64x(k1);
      for (int q = 0; q < vectors; ++q) {
        const __m256i p0 = _mm256_mul_epu32(m0, x0[q]);
        const __m256i p1 = _mm256_mul_epu32(m1, x2[q]);
        const __m256i n0 =
            _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1[q]), vk0);
        const __m256i n2 =
            _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x3[q]), vk1);
        x0[q] = n0;
        x1[q] = p1;
        x2[q] = n2;
        x3[q] = p0;
      }
      k0 += philox_w0;
      k1 += philox_w1;
    }
    for (int q = 0; q < vectors; ++q) {
      const int v = half * vectors + q;
      const __m256i lo0 = _mm256_and_si256(x0[q], low), lo2 = _mm256_and_si256(x2[q], low);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(w[0] + v * lanes),
                          _mm256_or_si256(lo0, _mm256_slli_epi64(x1[q], 32)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(w[1] + v * lanes),
                          _mm256_or_si256(lo2, _mm256_slli_epi64(x3[q], 32)));
    }
  }
}
#endif

/// The words of one batch of draws (integer arithmetic only: identical on every path).
inline void draw_words(philox_key key, std::uint32_t c1, std::uint32_t round, std::uint32_t step,
                       std::uint32_t first_block, std::uint64_t (*w)[draw_batch / 2]) noexcept {
#if SHUFFLE_R1_X86_SIMD
  if (has_avx512()) return draw_words_avx512(key, c1, round, step, first_block, w);
  if (has_avx2()) return draw_words_avx2(key, c1, round, step, first_block, w);
#endif
  draw_words_portable(key, c1, round, step, first_block, w);
}

/// Guide sizes (bits) from which the searches request their cache lines ahead: from 2^15 pairs
/// on, i.e. prefix sums of 256 KiB or more (below that they stay in L2 and the requests only
/// cost).
inline constexpr int prefetch_gbits = 15 - cpu_guide_shift;

/// Where each search of a batch of words starts (word i is w[i % 2][i / 2]): start[i], its
/// guide entry, and r[i] = mulhi64(word i, total), the value searched for. For large tables in
/// two stages, so that the cache misses of a batch overlap: all guide entries requested, then
/// read while their prefix sums are requested. (The loops run over blocks b and words h,
/// i = 2 b + h, which indexes w without arithmetic on i.)
inline void batch_starts(const mass_table& t, const std::uint64_t (*w)[draw_batch / 2],
                         std::int64_t* start, std::uint64_t* r) noexcept {
  const int shift = 64 - t.gbits;
  const bool ahead = t.gbits >= prefetch_gbits;  // else tables in L2: requests would only cost
  if (ahead)
    for (int b = 0; b < draw_batch / 2; ++b)
      for (int h = 0; h < 2; ++h)
        prefetch(t.guide + (w[h][b] >> shift));
  for (int b = 0; b < draw_batch / 2; ++b)
    for (int h = 0; h < 2; ++h) {
      const int i = 2 * b + h;
      start[i] = t.guide[w[h][b] >> shift];
      r[i] = mulhi64(w[h][b], t.total);
      if (ahead) {  // both lines of the eight prefix sums a vector search reads
        prefetch(t.cum + start[i]);
        prefetch(t.cum + start[i] + 7);
      }
    }
}

/// The pairs of one batch of words: drawn[i] = draw_pair(t, word i).
inline void resolve_batch_portable(const mass_table& t, const std::uint64_t (*w)[draw_batch / 2],
                                   std::int64_t* drawn) noexcept {
  std::int64_t start[draw_batch];
  std::uint64_t r[draw_batch];
  batch_starts(t, w, start, r);
  for (int i = 0; i < draw_batch; ++i)
    drawn[i] = search_from(t, r[i], start[i]);
}

#if SHUFFLE_R1_X86_SIMD
/// search_from with AVX2: compares 8 prefix sums at once (signed compares: every prefix sum
/// and r are below 2^62, the padding is 2^63 - 1), so that with about 2^cpu_guide_shift pairs
/// per guide bucket the loop almost never takes a second step, and its branch is predictable.
/// The first set bit of the "cum > r" mask is the drawn pair (the prefix sums increase).
SHUFFLE_R1_AVX2_INLINE std::int64_t search8_avx2(const mass_table& t, std::uint64_t r_word,
                                                 std::int64_t j) noexcept {
  const __m256i r = _mm256_set1_epi64x(static_cast<std::int64_t>(r_word));
  for (;;) {
    const auto* c = reinterpret_cast<const __m256i*>(t.cum + j);
    const __m256i a = _mm256_cmpgt_epi64(_mm256_loadu_si256(c), r);
    const __m256i b = _mm256_cmpgt_epi64(_mm256_loadu_si256(c + 1), r);
    const auto above = static_cast<unsigned>(_mm256_movemask_pd(_mm256_castsi256_pd(a)) |
                                             (_mm256_movemask_pd(_mm256_castsi256_pd(b)) << 4));
    if (above != 0) return j + __builtin_ctz(above);
    j += 8;
  }
}

/// resolve_batch_portable with search8_avx2.
SHUFFLE_R1_AVX2 inline void resolve_batch_avx2(const mass_table& t,
                                               const std::uint64_t (*w)[draw_batch / 2],
                                               std::int64_t* drawn) noexcept {
  std::int64_t start[draw_batch];
  std::uint64_t r[draw_batch];
  batch_starts(t, w, start, r);
  for (int i = 0; i < draw_batch; ++i)
    drawn[i] = search8_avx2(t, r[i], start[i]);
}

/// search8_avx2 with AVX-512: the 8 prefix sums in one register, compared unsigned into a mask.
SHUFFLE_R1_AVX512_INLINE std::int64_t search8_avx512(const mass_table& t, std::uint64_t r_word,
                                                     std::int64_t j) noexcept {
  const __m512i r = _mm512_set1_epi64(static_cast<std::int64_t>(r_word));
  for (;;) {
    const __mmask8 above = _mm512_cmpgt_epu64_mask(_mm512_loadu_si512(t.cum + j), r);
    if (above != 0) return j + __builtin_ctz(above);
    j += 8;
  }
}

/// resolve_batch_portable with search8_avx512.
SHUFFLE_R1_AVX512 inline void resolve_batch_avx512(const mass_table& t,
                                                   const std::uint64_t (*w)[draw_batch / 2],
                                                   std::int64_t* drawn) noexcept {
  std::int64_t start[draw_batch];
  std::uint64_t r[draw_batch];
  batch_starts(t, w, start, r);
  for (int i = 0; i < draw_batch; ++i)
    drawn[i] = search8_avx512(t, r[i], start[i]);
}
#endif

/// resolve_batch with the widest instruction set this CPU has (same results on every path).
inline void resolve_batch(const mass_table& t, const std::uint64_t (*w)[draw_batch / 2],
                          std::int64_t* drawn) noexcept {
#if SHUFFLE_R1_X86_SIMD
  if (has_avx512()) return resolve_batch_avx512(t, w, drawn);
  if (has_avx2()) return resolve_batch_avx2(t, w, drawn);
#endif
  resolve_batch_portable(t, w, drawn);
}

/// Training rows of pair j at rows[2 i], rows[2 i + 1]: its hi and lo rows (pairs[2 j],
/// pairs[2 j + 1]), copied as one 16-byte block.
inline void put_pair_rows(std::int64_t* rows, std::int64_t i, const std::int64_t* pairs,
                          std::int64_t j) noexcept {
  std::memcpy(rows + 2 * i, pairs + 2 * j, 2 * sizeof(std::int64_t));
}

/// rows[2 i .. 2 i + 2) = the rows of pair order[i] for i < n (pairs_to_rows and run_pipeline;
/// order entries in [0, K), checked by the caller). For K of 2^15 pairs or more (512 KiB,
/// beyond L2) each pair's line is requested `ahead` entries early (a hint; no effect on
/// results).
inline void gather_rows(const std::int64_t* pairs, std::int64_t K, const std::int64_t* order,
                        std::int64_t n, std::int64_t* rows) noexcept {
  constexpr std::int64_t ahead = 32;
  std::int64_t i = 0;
  if (K >= (std::int64_t{1} << 15))
    for (; i + ahead < n; ++i) {
      prefetch(pairs + 2 * order[i + ahead]);
      put_pair_rows(rows, i, pairs, order[i]);
    }
  for (; i < n; ++i)
    put_pair_rows(rows, i, pairs, order[i]);
}

/// The training rows of the drawn pairs, written as they are drawn (run_pipeline): entry i of
/// a stream's order (pair j) gets pair j's rows (put_pair_rows). Empty (rows null): nothing.
struct row_gather {
  const std::int64_t* pairs = nullptr;
  std::int64_t* rows = nullptr;
  void put(std::int64_t i, std::int64_t j) const noexcept {
    if (rows) put_pair_rows(rows, i, pairs, j);
  }
  /// The gather of the entries from `offset` on.
  row_gather from(std::int64_t offset) const noexcept {
    return {pairs, rows ? rows + 2 * offset : nullptr};
  }
};

/// One stream of a round: draws `needed` distinct pairs of positive mass in `base` (all of
/// which must be untaken), appending them to out. Returns the number of extra phases.
/// Draw d of a phase uses word d % 2 of Philox block d / 2 (draw_block); draws are computed in
/// batches ahead of the filter, which consumes them strictly in order, so the result is the
/// same as drawing one at a time.
inline std::int64_t sample_distinct(const std::uint64_t* mass, std::int64_t K, mass_table base,
                                    std::int64_t needed, std::uint64_t seed, std::uint32_t step,
                                    std::uint32_t round, rng_stream stream, shuffle_scratch& s,
                                    std::int64_t* out, row_gather rows = {}) {
  std::uint64_t* taken = s.taken.data();
  std::int64_t got = 0;
  mass_table table = base;
  std::uint32_t phase = 0;
  const philox_key key = philox_key_from_seed(seed);
  std::uint64_t words[2][draw_batch / 2];
  std::int64_t drawn[draw_batch];
  // Pairs beyond L2, as the tables' own requests (batch_starts).
  const bool gather_ahead = rows.rows && base.gbits >= prefetch_gbits;
  while (got < needed) {
    const std::int64_t limit = phase_draw_limit(needed - got);
    const std::uint32_t c1 = (static_cast<std::uint32_t>(stream) << 24) | phase;
    for (std::int64_t d0 = 0; d0 < limit && got < needed; d0 += draw_batch) {
      draw_words(key, c1, round, step, static_cast<std::uint32_t>(d0 >> 1), words);
      resolve_batch(table, words, drawn);
      const int n = static_cast<int>(std::min<std::int64_t>(draw_batch, limit - d0));
      if (gather_ahead)  // each drawn pair's line, requested before the filter reads it
        for (int i = 0; i < n; ++i)
          prefetch(rows.pairs + 2 * drawn[i]);
      if (needed - got >= n) {
        // The batch cannot complete the stream: no early exit, and no branch on whether a draw
        // is new (that branch is unpredictable); a repeat's store is overwritten by the next
        // new pair or left past the end of what this stream has written.
        for (int i = 0; i < n; ++i) {
          const std::int64_t j = drawn[i];
          std::uint64_t& word = taken[j >> 6];
          const std::uint64_t bit = std::uint64_t{1} << (j & 63);
          const std::uint64_t old = word;
          word = old | bit;
          out[got] = j;
          rows.put(got, j);
          got += static_cast<std::int64_t>((old & bit) == 0);
        }
        continue;
      }
      for (int i = 0; i < n; ++i) {
        const std::int64_t j = drawn[i];
        std::uint64_t& word = taken[j >> 6];
        const std::uint64_t bit = std::uint64_t{1} << (j & 63);
        if (word & bit) continue;
        word |= bit;
        rows.put(got, j);
        out[got++] = j;
        if (got == needed) break;
      }
    }
    if (got == needed) break;
    ++phase;
    if (phase >= max_phases)
      fail(errc::out_of_range, "shuffle_pairs", "round ", round, " needed more than ", max_phases,
           " sampling phases");
    table = build_table(mass, K, taken, s.cum_phase, s.guide_phase);
  }
  return static_cast<std::int64_t>(phase);
}

/// Reserves every buffer of prepare_shuffle and shuffle_kernel for K pairs (the fill stream's
/// too when `fill`), so that they allocate nothing: run_pipeline calls it before its first
/// write when it writes the caller's views directly.
inline void reserve_shuffle(std::int64_t K, bool fill, shuffle_scratch& s) {
  const table_shape shape = table_shape_of(K);
  const auto k = static_cast<std::size_t>(K);
  s.mass.reserve(k);
  s.cum.reserve(shape.cum);
  s.guide.reserve(shape.guide);
  s.taken.reserve((k + 63) / 64);
  s.cum_phase.reserve(shape.cum);
  s.guide_phase.reserve(shape.guide);
  if (fill) {
    s.fill_mass.reserve(k);
    s.fill_cum.reserve(shape.cum);
    s.fill_guide.reserve(shape.guide);
  }
}

/// The kernel: preconditions checked by the caller. `order` has room for S * T_eff entries.
/// When `used` is given ((K + 63) / 64 words, zeroed by the caller), the bits of the pairs drawn
/// in any round are set in it (each round's bitmap of taken pairs, ORed in).
inline std::int64_t shuffle_kernel(std::int64_t K, std::int64_t nonzero, std::int64_t S,
                                   std::int64_t T_eff, const shuffle_options& o, shuffle_scratch& s,
                                   std::int64_t* order, std::uint64_t* used = nullptr,
                                   row_gather rows = {}) {
  std::int64_t extra = 0;
  if (T_eff == 0) return 0;
  const mass_table base = build_table(s.mass.data(), K, nullptr, s.cum, s.guide);
  // Fill stream: unit mass on the zero-mass pairs.
  mass_table fill_table;
  const std::int64_t weighted = std::min(T_eff, nonzero);
  if (T_eff > weighted) {
    s.fill_mass.resize(static_cast<std::size_t>(K));
    for (std::int64_t j = 0; j < K; ++j)
      s.fill_mass[j] = s.mass[j] == 0 ? 1 : 0;
    fill_table = build_table(s.fill_mass.data(), K, nullptr, s.fill_cum, s.fill_guide);
  }
  s.taken.resize(static_cast<std::size_t>((K + 63) / 64));
  // A later phase's tables (rare) are built mid-round, after entries of `order` are written:
  // reserve them before the first write, so that no allocation can fail after it.
  const table_shape shape = table_shape_of(K);
  s.cum_phase.reserve(shape.cum);
  s.guide_phase.reserve(shape.guide);
  const auto step = static_cast<std::uint32_t>(o.step);
  for (std::int64_t r = 0; r < S; ++r) {
    std::fill(s.taken.begin(), s.taken.end(), 0);
    std::int64_t* out = order + r * T_eff;
    const auto round = static_cast<std::uint32_t>(r);
    if (weighted > 0)
      extra += sample_distinct(s.mass.data(), K, base, weighted, o.seed, step, round,
                               rng_stream::abs_weighted, s, out, rows.from(r * T_eff));
    if (T_eff > weighted)
      extra +=
          sample_distinct(s.fill_mass.data(), K, fill_table, T_eff - weighted, o.seed, step, round,
                          rng_stream::abs_fill, s, out + weighted, rows.from(r * T_eff + weighted));
    if (used)
      for (std::size_t w = 0; w < s.taken.size(); ++w)
        used[w] |= s.taken[w];
  }
  return extra;
}

/// Validates weights and options, computes masses into s.mass; returns the summary (size etc.).
template <class T>
inline shuffle_summary prepare_shuffle(const char* fn, host_span<const T> weights,
                                       const shuffle_options& o, shuffle_scratch& s) {
  const auto K = static_cast<std::int64_t>(weights.size());
  const shuffle_shape shape = validate_shuffle_options(fn, K, o);
  const mass_plan m = plan_masses(fn, weights, o);
  s.mass.resize(static_cast<std::size_t>(K));
  const std::int64_t nonzero = masses_of(m, weights.data(), K, s.mass.data());
  shuffle_summary sum;
  sum.pairs = K;
  sum.nonzero_pairs = nonzero;
  sum.rounds = shape.rounds;
  sum.per_round = shape.per_round;
  if (nonzero < shape.per_round) {
    switch (o.on_short) {
      case short_policy::error:
        fail(errc::too_few_pairs, fn, "only ", nonzero, " of ", K,
             " pairs have non-zero sampling mass, fewer than the pairs per round "
             "(options.per_round = ",
             shape.per_round, "; set on_short to fill or shrink to accept this)");
      case short_policy::shrink:
        sum.per_round = nonzero;
        break;
      case short_policy::fill:
        break;
    }
  }
  sum.size = sum.rounds * sum.per_round;
  return sum;
}

}  // namespace detail::cpu
}  // namespace shuffle_r1
