/// @file types.hpp
/// @brief Options of every algorithm: plain structs with the defaults of ../SPEC.md and the
/// Shuffle-R1 release, and their enumerations with string conversions.
#pragma once

#include <shuffle_r1/config.hpp>

#include <cstdint>
#include <string_view>

namespace shuffle_r1 {

// ---------------------------------------------------------------------------------------------
// Advantage normalization
// ---------------------------------------------------------------------------------------------

/// Group advantage estimators. For group rewards x_1..x_n with mean mu:
enum class estimator {
  grpo,       ///< (x_i - mu) / (sigma + eps), sigma with `ddof` (verl, EasyR1, Shuffle-R1)
  mean_only,  ///< x_i - mu (Dr.GRPO; verl norm_adv_by_std_in_grpo=False; TRL "none")
  rloo,       ///< x_i - mean of the others = n/(n-1) (x_i - mu) (RLOO)
  batch_std,  ///< (x_i - mu) / (sigma_batch + eps), sigma over all rows (TRL "batch")
};

/// What to do with a group of one row (its variance is undefined).
enum class singleton_policy {
  error,  ///< throw error(errc::singleton_group) naming the group (default)
  verl,   ///< take mu = 0 and the group's scale as 1, as verl does: grpo gives x / (1 + eps)
  zero,   ///< advantage 0
};

/// Options of normalize_advantages.
struct advantage_options {
  estimator kind = estimator::grpo;
  int ddof = 1;       ///< 1: unbiased sample std (torch.std, verl); 0: population std. 0 or 1.
  double eps = 1e-6;  ///< added to sigma (not under the root); finite, >= 0
  singleton_policy singleton = singleton_policy::error;
};

// ---------------------------------------------------------------------------------------------
// PTS: pairwise trajectory selection
// ---------------------------------------------------------------------------------------------

/// Weight of a (hi, lo) pair from its two advantages.
enum class pair_weight {
  sum,   ///< |A_hi| + |A_lo| (default)
  max,   ///< max(|A_hi|, |A_lo|)
  mean,  ///< (|A_hi| + |A_lo|) / 2
  pos,   ///< |max(A_hi, A_lo)| = |A_hi|
};

/// What to do with a group of odd size (the release asserts).
enum class odd_policy {
  error,        ///< throw error(errc::odd_group) naming the group (default)
  drop_median,  ///< leave the middle row of the sorted order out and pair the rest
};

/// Options of select_pairs.
struct pair_options {
  /// alpha in (0, 1]: keep M = floor(alpha * P) pairs of a group with P pairs, computed in double
  /// exactly as the release does (`int(len(pairs) * (1 - purning_ratio))`). Used when
  /// keep_pairs < 0.
  double keep_ratio = 0.5;
  /// Explicit M >= 0 pairs per group (overrides keep_ratio); every group must have at least M
  /// pairs. Negative: use keep_ratio.
  std::int64_t keep_pairs = -1;
  pair_weight weight = pair_weight::sum;
  odd_policy odd = odd_policy::error;
};

// ---------------------------------------------------------------------------------------------
// ABS: advantage-based batch shuffle
// ---------------------------------------------------------------------------------------------

/// Transform of pair weights w into sampling mass q (then p = q / sum q).
enum class transform {
  power,        ///< q = w^kappa (kappa = 0: uniform, a random-shuffle control) (default)
  softmax,      ///< q = exp(w / tau), tau = (t_max - t_min) cos(pi/2 step/total) + t_min
  log_softmax,  ///< q = ln(1 + w / tau), tau = (t_max - t_min) sin(pi/2 step/total) + t_min
  inverse,      ///< q = 1 / (w + 1e-6): favours weak pairs (an ablation)
};

/// What to do when fewer than T pairs per round have non-zero mass.
enum class short_policy {
  error,   ///< throw error(errc::too_few_pairs) (default)
  fill,    ///< every non-zero pair in weighted order, then zero-mass pairs uniformly
  shrink,  ///< shorter rounds: T' = number of non-zero pairs
};

/// Options of shuffle_pairs.
struct shuffle_options {
  std::int64_t rounds = 8;      ///< S >= 1 independent rounds
  std::int64_t per_round = -1;  ///< T pairs per round, 0 <= T <= K; negative: floor(K / S)
  transform kind = transform::power;
  double coeff = 1.0;            ///< kappa of `power`; finite, >= 0
  double t_max = 2.0;            ///< temperature schedule of softmax / log_softmax
  double t_min = 1.0;            ///< 0 < t_min <= t_max
  std::int64_t step = 0;         ///< training step: schedule position and RNG coordinate
  std::int64_t total_steps = 1;  ///< schedule length (softmax, log_softmax): 0 <= step <= total
  std::uint64_t seed = 0;        ///< RNG seed
  short_policy on_short = short_policy::error;
};

// ---------------------------------------------------------------------------------------------
// Pipeline
// ---------------------------------------------------------------------------------------------

/// Options of run_pipeline: the three stages' options.
struct pipeline_config {
  advantage_options advantage;
  pair_options pairs;
  shuffle_options shuffle;
};

// ---------------------------------------------------------------------------------------------
// String conversions (CLI, logs, messages)
// ---------------------------------------------------------------------------------------------

/// Name of an enumerator, as accepted by the CLI. @par Complexity O(1). Never throws.
constexpr const char* to_string(estimator v) noexcept {
  switch (v) {
    case estimator::grpo:
      return "grpo";
    case estimator::mean_only:
      return "mean_only";
    case estimator::rloo:
      return "rloo";
    case estimator::batch_std:
      return "batch_std";
  }
  return "?";
}
/// @copydoc to_string(estimator)
constexpr const char* to_string(singleton_policy v) noexcept {
  switch (v) {
    case singleton_policy::error:
      return "error";
    case singleton_policy::verl:
      return "verl";
    case singleton_policy::zero:
      return "zero";
  }
  return "?";
}
/// @copydoc to_string(estimator)
constexpr const char* to_string(pair_weight v) noexcept {
  switch (v) {
    case pair_weight::sum:
      return "sum";
    case pair_weight::max:
      return "max";
    case pair_weight::mean:
      return "mean";
    case pair_weight::pos:
      return "pos";
  }
  return "?";
}
/// @copydoc to_string(estimator)
constexpr const char* to_string(odd_policy v) noexcept {
  switch (v) {
    case odd_policy::error:
      return "error";
    case odd_policy::drop_median:
      return "drop_median";
  }
  return "?";
}
/// @copydoc to_string(estimator)
constexpr const char* to_string(transform v) noexcept {
  switch (v) {
    case transform::power:
      return "power";
    case transform::softmax:
      return "softmax";
    case transform::log_softmax:
      return "log_softmax";
    case transform::inverse:
      return "inverse";
  }
  return "?";
}
/// @copydoc to_string(estimator)
constexpr const char* to_string(short_policy v) noexcept {
  switch (v) {
    case short_policy::error:
      return "error";
    case short_policy::fill:
      return "fill";
    case short_policy::shrink:
      return "shrink";
  }
  return "?";
}

namespace detail {
template <class E, int N>
constexpr bool parse_enum(std::string_view text, E& out, const E (&all)[N]) noexcept {
  for (E v : all)
    if (text == to_string(v)) {
      out = v;
      return true;
    }
  return false;
}
}  // namespace detail

/// Parses an enumerator name (exact, lowercase). Returns false and leaves `out` alone when
/// the text names none. @par Complexity O(number of enumerators). Never throws.
constexpr bool parse(std::string_view text, estimator& out) noexcept {
  constexpr estimator all[] = {estimator::grpo, estimator::mean_only, estimator::rloo,
                               estimator::batch_std};
  return detail::parse_enum(text, out, all);
}
/// @copydoc parse(std::string_view, estimator&)
constexpr bool parse(std::string_view text, singleton_policy& out) noexcept {
  constexpr singleton_policy all[] = {singleton_policy::error, singleton_policy::verl,
                                      singleton_policy::zero};
  return detail::parse_enum(text, out, all);
}
/// @copydoc parse(std::string_view, estimator&)
constexpr bool parse(std::string_view text, pair_weight& out) noexcept {
  constexpr pair_weight all[] = {pair_weight::sum, pair_weight::max, pair_weight::mean,
                                 pair_weight::pos};
  return detail::parse_enum(text, out, all);
}
/// @copydoc parse(std::string_view, estimator&)
constexpr bool parse(std::string_view text, odd_policy& out) noexcept {
  constexpr odd_policy all[] = {odd_policy::error, odd_policy::drop_median};
  return detail::parse_enum(text, out, all);
}
/// @copydoc parse(std::string_view, estimator&)
constexpr bool parse(std::string_view text, transform& out) noexcept {
  constexpr transform all[] = {transform::power, transform::softmax, transform::log_softmax,
                               transform::inverse};
  return detail::parse_enum(text, out, all);
}
/// @copydoc parse(std::string_view, estimator&)
constexpr bool parse(std::string_view text, short_policy& out) noexcept {
  constexpr short_policy all[] = {short_policy::error, short_policy::fill, short_policy::shrink};
  return detail::parse_enum(text, out, all);
}

}  // namespace shuffle_r1
