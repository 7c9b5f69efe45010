/// @file research_types.hpp
/// @brief Options of the research toolkit: selection rules beside PTS (selectors.hpp) and
/// data-parallel partitioning (partition.hpp), with string conversions for the CLI.
///
/// Defaults follow the sources each rule comes from; docs/research.md explains every choice.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/types.hpp>

#include <cstdint>
#include <string_view>

namespace shuffle_r1 {

// ---------------------------------------------------------------------------------------------
// Selection rules
// ---------------------------------------------------------------------------------------------

/// Which rows of each group a selection rule keeps. Every rule keeps at most 2 M_g rows of
/// group g, M_g being the number of pairs PTS keeps there (pair_options), so that rules are
/// compared at the same training budget.
enum class selector {
  pts,       ///< PTS (SPEC section 3): the M outermost max-min pairs (the default)
  pods,      ///< PODS max-variance down-sampling (arXiv 2504.13818): the 2M rows of largest
             ///< advantage variance, among "top i plus bottom 2M - i" subsets
  dapo,      ///< DAPO dynamic sampling: drop groups whose rewards are all equal (tolerance)
  std_topk,  ///< RAGEN StarPO-S: keep the groups of largest reward std (top-k or top-p)
  random,    ///< ablation: M of the group's max-min pairs, uniformly at random
  top,       ///< ablation: the M max-min pairs of largest pair weight
  bottom,    ///< ablation: the M max-min pairs of smallest pair weight
  resample,  ///< PF-PPO-style importance resampling of 2M rows with replacement, mass |v|^p
};

/// How selector::std_topk chooses groups, ranked by reward std (descending, ties in group
/// order).
enum class std_filter {
  top_k,  ///< the first floor(group_ratio * G) groups (the default)
  top_p,  ///< the shortest prefix whose std sum reaches group_ratio * (sum of all stds)
};

/// What selector::resample does with a group whose rows all have zero sampling mass.
enum class zero_mass_policy {
  uniform,  ///< draw its rows uniformly (keeps 2M rows per group, the default)
  drop,     ///< keep none of its rows
};

/// Options of select_rows.
struct selector_options {
  selector kind = selector::pts;  ///< the rule (PTS by default)
  /// M_g per group (keep_ratio / keep_pairs), the odd-size policy and the pair weight
  /// (PTS and the pair ablations) exactly as select_pairs.
  pair_options pairs;
  /// dapo: a group is zero-variance when max - min <= tolerance (finite, >= 0; 0: all equal).
  double tolerance = 0.0;
  /// std_topk: the share of groups (top_k) or of the std sum (top_p), in (0, 1].
  double group_ratio = 0.5;
  std_filter std_mode = std_filter::top_k;  ///< std_topk: top-k groups or top-p of the std sum
  /// dapo, std_topk: keep every row of a kept group instead of its first 2M rows.
  bool keep_all_rows = false;
  /// resample: sampling mass |v|^power of each row (finite, >= 0; 0: uniform).
  double power = 1.0;
  /// resample: draw by |advantage|^p instead of |reward|^p.
  bool resample_advantages = false;
  /// resample: a group whose rows all have zero mass is drawn uniformly or dropped.
  zero_mass_policy zero_mass = zero_mass_policy::uniform;
  /// random, resample: the random draws are Philox4x32-10 of (seed; step, group, draw).
  std::uint64_t seed = 0;
  std::int64_t step = 0;  ///< 0 <= step < 2^32
};

// ---------------------------------------------------------------------------------------------
// Data-parallel partitioning
// ---------------------------------------------------------------------------------------------

/// How partition_rows spreads the units of one mini-batch over the ranks.
enum class balance_method {
  karmarkar_karp,  ///< balanced largest differencing (equal unit counts), the default
  lpt,             ///< longest processing time first with equal unit counts
  contiguous,      ///< consecutive chunks, no balancing (what the authors' release does)
};

/// Options of partition_rows.
struct partition_options {
  std::int64_t ranks = 1;        ///< R >= 1 data-parallel ranks
  std::int64_t minibatches = 1;  ///< m >= 1 mini-batches (optimizer steps) per rank
  std::int64_t unit_rows = 2;    ///< consecutive training rows that stay together (2: pairs)
  balance_method method = balance_method::karmarkar_karp;  ///< how ranks are balanced
};

// ---------------------------------------------------------------------------------------------
// String conversions
// ---------------------------------------------------------------------------------------------

/// Name of an enumerator, as accepted by the CLI. @par Complexity O(1). Never throws.
constexpr const char* to_string(selector v) noexcept {
  switch (v) {
    case selector::pts:
      return "pts";
    case selector::pods:
      return "pods";
    case selector::dapo:
      return "dapo";
    case selector::std_topk:
      return "std_topk";
    case selector::random:
      return "random";
    case selector::top:
      return "top";
    case selector::bottom:
      return "bottom";
    case selector::resample:
      return "resample";
  }
  return "?";
}
/// @copydoc to_string(selector)
constexpr const char* to_string(std_filter v) noexcept {
  switch (v) {
    case std_filter::top_k:
      return "top_k";
    case std_filter::top_p:
      return "top_p";
  }
  return "?";
}
/// @copydoc to_string(selector)
constexpr const char* to_string(zero_mass_policy v) noexcept {
  switch (v) {
    case zero_mass_policy::uniform:
      return "uniform";
    case zero_mass_policy::drop:
      return "drop";
  }
  return "?";
}
/// @copydoc to_string(selector)
constexpr const char* to_string(balance_method v) noexcept {
  switch (v) {
    case balance_method::karmarkar_karp:
      return "karmarkar_karp";
    case balance_method::lpt:
      return "lpt";
    case balance_method::contiguous:
      return "contiguous";
  }
  return "?";
}

/// Parses an enumerator name (exact, lowercase). Returns false and leaves `out` alone when
/// the text names none. @par Complexity O(number of enumerators). Never throws.
constexpr bool parse(std::string_view text, selector& out) noexcept {
  constexpr selector all[] = {selector::pts,      selector::pods,    selector::dapo,
                              selector::std_topk, selector::random,  selector::top,
                              selector::bottom,   selector::resample};
  return detail::parse_enum(text, out, all);
}
/// @copydoc parse(std::string_view, selector&)
constexpr bool parse(std::string_view text, std_filter& out) noexcept {
  constexpr std_filter all[] = {std_filter::top_k, std_filter::top_p};
  return detail::parse_enum(text, out, all);
}
/// @copydoc parse(std::string_view, selector&)
constexpr bool parse(std::string_view text, zero_mass_policy& out) noexcept {
  constexpr zero_mass_policy all[] = {zero_mass_policy::uniform, zero_mass_policy::drop};
  return detail::parse_enum(text, out, all);
}
/// @copydoc parse(std::string_view, selector&)
constexpr bool parse(std::string_view text, balance_method& out) noexcept {
  constexpr balance_method all[] = {balance_method::karmarkar_karp, balance_method::lpt,
                                    balance_method::contiguous};
  return detail::parse_enum(text, out, all);
}

}  // namespace shuffle_r1
