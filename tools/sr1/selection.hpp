// sr1: one selection rule applied to a batch (advantages, selected rows, training order) and
// the diagnostics of the result. Shared by `sr1 select` and `sr1 compare`.
#pragma once

#include "backend.hpp"

#include <shuffle_r1/shuffle_r1.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace sr1 {

namespace sr = shuffle_r1;

/// How the training batch is formed from the selected rows.
enum class training_mode {
  abs,      ///< pair rules: ABS over the kept pairs (pipeline_config.shuffle)
  permute,  ///< pair rules: a random permutation of the kept pairs (the paper's ablation)
  once,     ///< the selected rows, each once, in selection order
};

inline const char* to_string(training_mode m) {
  switch (m) {
    case training_mode::abs:
      return "abs";
    case training_mode::permute:
      return "permute";
    case training_mode::once:
      return "once";
  }
  return "?";
}

inline bool is_pair_rule(sr::selector k) {
  return k == sr::selector::pts || k == sr::selector::top || k == sr::selector::bottom ||
         k == sr::selector::random;
}

/// Everything one rule produced on one batch.
template <class T>
struct selection {
  sr::selector kind = sr::selector::pts;
  training_mode mode = training_mode::abs;
  bool all_rows = false;  // the GRPO reference: no selection at all
  std::vector<T> advantages, weights;
  std::vector<std::int64_t> selected;  // rows kept by the rule (pairs adjacent for pair rules)
  std::vector<std::int64_t> pairs;     // 2K, pair rules with a shuffle only
  std::vector<std::int64_t> order;     // pair indices (abs, permute)
  std::vector<std::int64_t> rows;      // the training batch
  std::vector<double> group_mean, group_std;
  sr::advantage_summary advantage;
  sr::selection_summary summary;
  sr::shuffle_summary shuffle;
  std::int64_t distinct_pairs_used = 0;
};

/// Runs one rule. PTS with ABS goes through run_pipeline (the library's one-call path), on the
/// CPU or, with backend::cuda, on the GPU; the other rules (CPU only) through
/// normalize_advantages, select_rows and, for pair rules, ABS or a permutation. G is the number
/// of groups of the layout. Throws shuffle_r1::error on bad input or options.
template <class T, class Layout>
selection<T> run_selection(const std::vector<T>& rewards, const Layout& groups, std::int64_t G,
                           const sr::pipeline_config& c, sr::selector_options so,
                           training_mode mode, bool all_rows = false, backend be = backend::cpu) {
  selection<T> s;
  so.pairs = c.pairs;
  s.kind = so.kind;
  s.mode = mode;
  s.all_rows = all_rows;
  const auto B = static_cast<std::int64_t>(rewards.size());
  if (so.kind == sr::selector::pts && mode == training_mode::abs && !all_rows) {
    const sr::pipeline_sizes sizes = sr::plan_pipeline(groups, B, c);
    s.advantages.resize(static_cast<std::size_t>(B));
    s.weights.resize(static_cast<std::size_t>(sizes.pairs));
    s.pairs.resize(static_cast<std::size_t>(2 * sizes.pairs));
    s.order.resize(static_cast<std::size_t>(sizes.order));
    s.rows.resize(static_cast<std::size_t>(sizes.training_rows));
    s.group_mean.resize(static_cast<std::size_t>(sizes.groups));
    s.group_std.resize(s.group_mean.size());
    sr::pipeline_workspace<T> ws;
    const sr::pipeline_summary p =
        run_pipeline_on(be, rewards, groups, c, ws,
                        sr::pipeline_outputs<T>{s.advantages, s.pairs, s.weights, s.order, s.rows,
                                                s.group_mean, s.group_std});
    s.order.resize(static_cast<std::size_t>(p.shuffle.size));
    s.rows.resize(static_cast<std::size_t>(2 * p.shuffle.size));
    s.advantage = p.advantage;
    s.shuffle = p.shuffle;
    s.distinct_pairs_used = p.distinct_pairs_used;
    s.selected = s.pairs;
    // The selection summary (groups kept) of the same PTS selection.
    std::vector<std::int64_t> check(s.pairs.size());
    s.summary = sr::select_rows(sr::cpu, rewards, s.advantages, groups, check, so);
    return s;
  }
  if (be != backend::cpu)
    throw sr::error(sr::errc::invalid_argument,
                    "--backend cuda runs only the PTS + ABS pipeline (--selector pts)");
  s.advantages.resize(static_cast<std::size_t>(B));
  s.group_mean.resize(static_cast<std::size_t>(G));
  s.group_std.resize(s.group_mean.size());
  s.advantage = sr::normalize_advantages(sr::cpu, rewards, groups, s.advantages, c.advantage,
                                         sr::group_stats_out{s.group_mean, s.group_std});
  if (all_rows) {
    s.selected.resize(static_cast<std::size_t>(B));
    for (std::int64_t b = 0; b < B; ++b)
      s.selected[static_cast<std::size_t>(b)] = b;
    s.summary.rows = B;
    s.summary.groups = G;
    s.rows = s.selected;
    return s;
  }
  s.selected.resize(static_cast<std::size_t>(sr::count_selected_rows(groups, B, so)));
  s.summary = sr::select_rows(sr::cpu, rewards, s.advantages, groups, s.selected, so);
  s.selected.resize(static_cast<std::size_t>(s.summary.rows));
  if (!is_pair_rule(so.kind) || mode == training_mode::once) {
    s.rows = s.selected;
    return s;
  }
  s.pairs = s.selected;
  const auto K = static_cast<std::int64_t>(s.pairs.size() / 2);
  s.weights.resize(static_cast<std::size_t>(K));
  sr::pair_weights(sr::cpu, s.advantages, s.pairs, s.weights, c.pairs.weight);
  if (mode == training_mode::abs) {
    s.order.resize(static_cast<std::size_t>(sr::shuffle_size(K, c.shuffle)));
    s.shuffle = sr::shuffle_pairs(sr::cpu, s.weights, s.order, c.shuffle);
    s.order.resize(static_cast<std::size_t>(s.shuffle.size));
  } else {
    s.order.resize(static_cast<std::size_t>(K));
    sr::permute_pairs(sr::cpu, K, s.order, c.shuffle.seed, c.shuffle.step);
    s.shuffle.pairs = K;
    s.shuffle.rounds = 1;
    s.shuffle.per_round = K;
    s.shuffle.size = K;
    for (const T w : s.weights)
      s.shuffle.nonzero_pairs += w > T(0);
  }
  s.rows.resize(2 * s.order.size());
  sr::pairs_to_rows(sr::cpu, sr::host_span<const std::int64_t>(s.pairs),
                    sr::host_span<const std::int64_t>(s.order),
                    sr::host_span<std::int64_t>(s.rows));
  std::vector<std::int64_t> none;
  s.distinct_pairs_used =
      sr::pair_multiplicity(sr::cpu, sr::host_span<const std::int64_t>(s.order), K, none);
  return s;
}

/// The diagnostics of one selection (docs/research.md, "Diagnostics").
struct diagnostics {
  double collapse_all = 0, collapse_selected = 0, collapse_training = 0;
  double nonzero_gradient = 0;
  bool have_tokens = false;
  double token_all = 0, token_training = 0;
  std::int64_t distinct_rows = 0;  // distinct rows of the training batch
  bool have_ess = false;
  double ess = 0;
  std::vector<std::int64_t> histogram;  // pair multiplicities 0..S (pair rules with a shuffle)
};

template <class T>
diagnostics diagnose(const selection<T>& s, const std::vector<std::int64_t>* lengths,
                     const sr::pipeline_config& c, double threshold = 0.1) {
  diagnostics d;
  const sr::host_span<const T> adv(s.advantages);
  const sr::host_span<const std::int64_t> selected(s.selected), rows(s.rows);
  d.collapse_all = sr::collapse_ratio(sr::cpu, adv, threshold);
  d.collapse_selected = sr::collapse_ratio(sr::cpu, adv, selected, threshold);
  d.collapse_training = sr::collapse_ratio(sr::cpu, adv, rows, threshold);
  d.nonzero_gradient = sr::nonzero_gradient_ratio(sr::cpu, adv, rows);
  if (lengths) {
    const sr::host_span<const std::int64_t> len(*lengths);
    d.have_tokens = true;
    d.token_all = sr::token_utilization(sr::cpu, adv, len);
    d.token_training = sr::token_utilization(sr::cpu, adv, len, rows);
  }
  std::vector<std::int64_t> none;
  d.distinct_rows =
      sr::pair_multiplicity(sr::cpu, rows, static_cast<std::int64_t>(s.advantages.size()), none);
  if (is_pair_rule(s.kind) && s.mode != training_mode::once && !s.all_rows) {
    const std::int64_t rounds = s.mode == training_mode::abs ? c.shuffle.rounds : 1;
    // A pair appears at most once per round and at most order.size() times.
    const auto most = std::min<std::int64_t>(rounds, static_cast<std::int64_t>(s.order.size()));
    d.histogram.assign(static_cast<std::size_t>(most + 1), 0);
    (void)sr::pair_multiplicity(sr::cpu, sr::host_span<const std::int64_t>(s.order),
                                static_cast<std::int64_t>(s.pairs.size() / 2), d.histogram);
    d.have_ess = true;
    d.ess = s.mode == training_mode::abs
                ? sr::effective_sample_size(sr::cpu, sr::host_span<const T>(s.weights), c.shuffle)
                : static_cast<double>(s.pairs.size() / 2);
  }
  return d;
}

}  // namespace sr1
