// sr1: the shuffle_r1 command-line tool.
//
//   sr1 demo    [--prompts 512] [--rollouts 16] [--seed 0] [--write-csv FILE.csv]
//               [--backend cpu|cuda]
//   sr1 select  --input FILE.csv [--output FILE.json] [--selector pts|pods|dapo|...]
//               [--lengths COLUMN] [--backend cpu|cuda] [options of the stages and selector]
//   sr1 compare --input FILE.csv [--lengths COLUMN] [--format markdown|json] [same options]
//
// Exit status: 0 success; 2 bad input or options (one line on stderr naming the file line or
// the option; nothing written to --output); 1 any other failure.
#include "backend.hpp"
#include "csv.hpp"
#include "demo.hpp"
#include "json_writer.hpp"
#include "output.hpp"
#include "selection.hpp"

#include <shuffle_r1/shuffle_r1.hpp>

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace sr = shuffle_r1;

struct select_args {
  std::string input, output;
  std::string estimator = "grpo", singleton = "error", odd = "error", weight = "sum";
  std::string transform = "power", on_short = "error", dtype = "float32";
  int ddof = 1;
  double eps = 1e-6, keep_ratio = 0.5, coeff = 1.0;
  std::int64_t keep_pairs = -1, per_round = -1, step = 0, total_steps = 1, rounds = 8;
  std::uint64_t seed = 0;
  std::string seed_text = "0";
  bool keep_pairs_given = false, per_round_given = false;
  // Selection rules and diagnostics (docs/research.md).
  std::string selector = "pts", lengths, std_mode = "top_k", zero_mass = "uniform";
  std::string resample_on = "rewards", format = "markdown";
  std::string backend = "cpu";  // select only: where run_pipeline runs
  double tolerance = 0.0, group_ratio = 0.5, power = 1.0;
  bool keep_all_rows = false;
};

template <class E>
E parse_choice(const std::string& text, const char* flag, const char* choices) {
  E value{};
  if (!sr::parse(text, value))
    throw sr1::input_error(std::string(flag) + " '" + text + "' is not one of " + choices);
  return value;
}

/// Library messages speak of options.<name>; the CLI user knows --<name>.
std::string cli_message(const std::string& library_message) {
  static const std::pair<const char*, const char*> names[] = {
      {"options.keep_ratio", "--keep-ratio"},
      {"options.keep_pairs", "--keep-pairs"},
      {"options.per_round", "--per-round"},
      {"options.total_steps", "--total-steps"},
      {"options.rounds", "--rounds"},
      {"options.step", "--step"},
      {"options.coeff", "--coeff"},
      {"options.eps", "--eps"},
      {"options.ddof", "--ddof"},
      {"options.on_short", "--on-short"},
      {"options.t_min", "t_min"},
      {"options.t_max", "t_max"},
      {"options.tolerance", "--tolerance"},
      {"options.group_ratio", "--group-ratio"},
      {"options.power", "--power"},
      {"set the odd policy to drop_median", "use --odd drop_median"},
      {"set on_short to fill or shrink", "use --on-short fill or shrink"},
      {"set the singleton policy to verl or zero", "use --singleton verl or zero"},
  };
  std::string m = library_message;
  // Drop the library function name ("plan_pipeline: ..."): the user ran sr1, not a function.
  const std::size_t colon = m.find(": ");
  if (colon != std::string::npos && m.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == colon)
    m.erase(0, colon + 2);
  for (const auto& [from, to] : names)
    for (std::size_t at = m.find(from); at != std::string::npos; at = m.find(from, at))
      m.replace(at, std::string_view(from).size(), to);
  return m;
}

/// --backend: cpu, or cuda when this sr1 has the CUDA backend.
sr1::backend parse_backend(const std::string& text) {
  if (text == "cpu") return sr1::backend::cpu;
  if (text != "cuda") throw sr1::input_error("--backend '" + text + "' is not one of cpu, cuda");
  if (!sr1::have_cuda_backend) throw sr1::input_error(sr1::no_cuda_backend_message);
  return sr1::backend::cuda;
}

sr::pipeline_config make_config(const select_args& a) {
  sr::pipeline_config c;
  c.advantage.kind =
      parse_choice<sr::estimator>(a.estimator, "--estimator", "grpo, mean_only, rloo, batch_std");
  c.advantage.singleton =
      parse_choice<sr::singleton_policy>(a.singleton, "--singleton", "error, verl, zero");
  c.advantage.ddof = a.ddof;
  c.advantage.eps = a.eps;
  c.pairs.odd = parse_choice<sr::odd_policy>(a.odd, "--odd", "error, drop_median");
  c.pairs.weight = parse_choice<sr::pair_weight>(a.weight, "--weight", "sum, max, mean, pos");
  c.pairs.keep_ratio = a.keep_ratio;
  c.pairs.keep_pairs = a.keep_pairs_given ? a.keep_pairs : -1;
  c.shuffle.kind = parse_choice<sr::transform>(a.transform, "--transform",
                                               "power, softmax, log_softmax, inverse");
  c.shuffle.on_short =
      parse_choice<sr::short_policy>(a.on_short, "--on-short", "error, fill, shrink");
  c.shuffle.coeff = a.coeff;
  c.shuffle.step = a.step;
  c.shuffle.total_steps = a.total_steps;
  c.shuffle.rounds = a.rounds;
  c.shuffle.per_round = a.per_round_given ? a.per_round : -1;
  c.shuffle.seed = a.seed;
  if (a.dtype != "float32" && a.dtype != "float64")
    throw sr1::input_error("--dtype '" + a.dtype + "' is not one of float32, float64");
  if (a.keep_pairs_given && a.keep_pairs < 0)
    throw sr1::input_error("--keep-pairs is " + std::to_string(a.keep_pairs) +
                           ", expected an integer >= 0");
  if (a.per_round_given && a.per_round < 1)
    throw sr1::input_error("--per-round is " + std::to_string(a.per_round) +
                           ", expected an integer >= 1");
  if (a.total_steps < 1)
    throw sr1::input_error("--total-steps is " + std::to_string(a.total_steps) +
                           ", expected an integer >= 1");
  if ((c.shuffle.kind == sr::transform::softmax || c.shuffle.kind == sr::transform::log_softmax) &&
      a.step > a.total_steps)
    throw sr1::input_error("--step " + std::to_string(a.step) + " is beyond --total-steps " +
                           std::to_string(a.total_steps) +
                           " (the temperature schedule runs from step 0 to --total-steps)");
  return c;
}

sr::selector_options make_selector(const select_args& a) {
  sr::selector_options o;
  o.kind = parse_choice<sr::selector>(a.selector, "--selector",
                                      "pts, pods, dapo, std_topk, random, top, bottom, resample");
  o.std_mode = parse_choice<sr::std_filter>(a.std_mode, "--std-mode", "top_k, top_p");
  o.zero_mass = parse_choice<sr::zero_mass_policy>(a.zero_mass, "--zero-mass", "uniform, drop");
  if (a.resample_on != "rewards" && a.resample_on != "advantages")
    throw sr1::input_error("--resample-on '" + a.resample_on +
                           "' is not one of rewards, advantages");
  o.resample_advantages = a.resample_on == "advantages";
  o.tolerance = a.tolerance;
  o.group_ratio = a.group_ratio;
  o.power = a.power;
  o.keep_all_rows = a.keep_all_rows;
  o.seed = a.seed;
  o.step = a.step;
  return o;
}

/// Data checks whose messages should name the CSV line and group (the library checks them too).
void check_groups(const sr1::batch& b, const sr::pipeline_config& c, const std::string& file) {
  std::vector<std::int64_t> sizes(b.group_names.size(), 0);
  for (const std::int64_t g : b.group_ids)
    ++sizes[static_cast<std::size_t>(g)];
  for (std::size_t g = 0; g < sizes.size(); ++g) {
    const std::string where =
        file + ":" + std::to_string(b.group_first_line[g]) + ": group '" + b.group_names[g] + "'";
    if (sizes[g] == 1 && c.advantage.singleton == sr::singleton_policy::error)
      throw sr1::input_error(where +
                             " has a single row; its std is undefined (use --singleton verl or "
                             "zero to accept such groups)");
    if (sizes[g] % 2 != 0 && c.pairs.odd == sr::odd_policy::error)
      throw sr1::input_error(where + " has " + std::to_string(sizes[g]) +
                             " rows, an odd number; PTS pairs rows (use --odd drop_median to "
                             "leave the median row out)");
    if (c.pairs.keep_pairs > sizes[g] / 2)
      throw sr1::input_error(where + " has " + std::to_string(sizes[g]) + " rows (" +
                             std::to_string(sizes[g] / 2) + " pairs), fewer than --keep-pairs " +
                             std::to_string(c.pairs.keep_pairs));
  }
}

/// The batch's rewards in T; a reward that overflows float32 is an input error.
template <class T>
std::vector<T> rewards_as(const sr1::batch& b, const std::string& file) {
  std::vector<T> rewards(b.rewards.size());
  for (std::size_t i = 0; i < rewards.size(); ++i) {
    rewards[i] = static_cast<T>(b.rewards[i]);
    if (!std::isfinite(rewards[i]))
      throw sr1::input_error(file + ":" + std::to_string(b.lines[i]) + ": reward " +
                             b.reward_texts[i] + " overflows float32 (use --dtype float64)");
  }
  return rewards;
}

/// Writes a ratio, or null when it was not measured.
void ratio_or_null(sr1::json_writer& j, bool have, double value) {
  if (have)
    j.value(value);
  else
    j.null();
}

template <class T>
std::string run_select(const sr1::batch& b, const sr::pipeline_config& c,
                       const sr::selector_options& so, const std::string& file, sr1::backend be) {
  const std::vector<T> rewards = rewards_as<T>(b, file);
  const sr::id_groups<std::int64_t> groups{b.group_ids};
  const auto B = static_cast<std::int64_t>(rewards.size());
  const auto G = static_cast<std::int64_t>(b.group_names.size());
  const bool paired = sr1::is_pair_rule(so.kind);
  const sr1::selection<T> s =
      sr1::run_selection(rewards, groups, G, c, so,
                         paired ? sr1::training_mode::abs : sr1::training_mode::once, false, be);
  const sr1::diagnostics d = sr1::diagnose(s, b.lengths.empty() ? nullptr : &b.lengths, c);
  const std::int64_t K = static_cast<std::int64_t>(s.pairs.size() / 2);

  sr1::json_writer j;
  j.begin_object();
  j.key("advantages");
  j.array(s.advantages);
  j.key("pairs");
  j.begin_array();
  for (std::int64_t k = 0; k < K; ++k) {
    j.begin_array();
    j.value(s.pairs[static_cast<std::size_t>(2 * k)]);
    j.value(s.pairs[static_cast<std::size_t>(2 * k + 1)]);
    j.end_array();
  }
  j.end_array();
  j.key("pair_weights");
  j.array(s.weights);
  j.key("order");
  j.array(s.order);
  j.key("rows");
  j.array(s.rows);
  j.key("groups");
  j.begin_array();
  for (const std::string& name : b.group_names)
    j.value(name);
  j.end_array();
  j.key("group_mean");
  j.array(s.group_mean);
  j.key("group_std");
  j.array(s.group_std);
  j.key("stats");
  j.begin_object();
  j.key("rows");
  j.value(B);
  j.key("groups");
  j.value(s.advantage.groups);
  j.key("zero_variance_groups");
  j.value(s.advantage.zero_variance_groups);
  j.key("singleton_groups");
  j.value(s.advantage.singleton_groups);
  j.key("pairs");
  j.value(K);
  j.key("nonzero_pairs");
  j.value(s.shuffle.nonzero_pairs);
  j.key("rounds");
  j.value(s.shuffle.rounds);
  j.key("per_round");
  j.value(s.shuffle.per_round);
  j.key("order_size");
  j.value(s.shuffle.size);
  j.key("distinct_pairs_used");
  j.value(s.distinct_pairs_used);
  j.key("multiplicity_histogram");
  j.array(d.histogram);
  j.key("collapse_ratio_all");
  j.value(d.collapse_all);
  j.key("collapse_ratio_after_pts");  // over the rows the selector kept (PTS's pairs by default)
  j.value(d.collapse_selected);
  j.key("nonzero_gradient_ratio");
  j.value(d.nonzero_gradient);
  j.key("seed");
  j.value(c.shuffle.seed);
  j.key("step");
  j.value(c.shuffle.step);
  j.key("dtype");
  j.value(std::is_same_v<T, float> ? "float32" : "float64");
  j.key("selector");
  j.value(sr::to_string(so.kind));
  j.key("selected_rows");
  j.value(s.summary.rows);
  j.key("groups_kept");
  j.value(s.summary.groups_kept);
  j.key("groups_dropped");
  j.value(s.summary.groups_dropped);
  j.key("collapse_ratio_after_selection");
  j.value(d.collapse_selected);
  j.key("collapse_ratio_training");
  j.value(d.collapse_training);
  j.key("distinct_rows_used");
  j.value(d.distinct_rows);
  j.key("effective_sample_size");
  ratio_or_null(j, d.have_ess, d.ess);
  j.key("token_utilization");
  ratio_or_null(j, d.have_tokens, d.token_training);
  j.key("token_utilization_all");
  ratio_or_null(j, d.have_tokens, d.token_all);
  j.end_object();
  j.end_object();
  j.str() += '\n';
  return std::move(j.str());
}

int run_select_command(const select_args& a) {
  const sr1::backend be = parse_backend(a.backend);
  const sr::pipeline_config c = make_config(a);
  const sr::selector_options so = make_selector(a);
  if (be == sr1::backend::cuda) {
    if (so.kind != sr::selector::pts)
      throw sr1::input_error("--backend cuda runs the PTS + ABS pipeline only; --selector " +
                             a.selector + " has no CUDA implementation (use --backend cpu)");
    sr1::require_cuda_device();
  }
  const sr1::batch b = sr1::read_csv(a.input, a.lengths);
  check_groups(b, c, a.input);
  const std::string json = a.dtype == "float64" ? run_select<double>(b, c, so, a.input, be)
                                                : run_select<float>(b, c, so, a.input, be);
  sr1::write_result(a.output, json);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// sr1 compare: every rule on the same batch, one row of diagnostics each.
// ---------------------------------------------------------------------------------------------

struct compare_rule {
  const char* name;
  sr::selector kind;
  sr1::training_mode mode;
  bool all_rows;
};

/// The rules of the comparison table, in the order of docs/research.md.
constexpr compare_rule compare_rules[] = {
    {"grpo", sr::selector::pts, sr1::training_mode::once, true},
    {"pts", sr::selector::pts, sr1::training_mode::abs, false},
    {"pts", sr::selector::pts, sr1::training_mode::permute, false},
    {"top", sr::selector::top, sr1::training_mode::abs, false},
    {"bottom", sr::selector::bottom, sr1::training_mode::abs, false},
    {"random", sr::selector::random, sr1::training_mode::abs, false},
    {"pods", sr::selector::pods, sr1::training_mode::once, false},
    {"dapo", sr::selector::dapo, sr1::training_mode::once, false},
    {"std_topk", sr::selector::std_topk, sr1::training_mode::once, false},
    {"resample", sr::selector::resample, sr1::training_mode::once, false},
};

std::string training_text(const compare_rule& r, const sr::shuffle_summary& sh) {
  if (r.all_rows) return "all rows once";
  switch (r.mode) {
    case sr1::training_mode::abs:
      return "ABS " + std::to_string(sh.rounds) + "x" + std::to_string(sh.per_round);
    case sr1::training_mode::permute:
      return "random shuffle";
    case sr1::training_mode::once:
      break;
  }
  return "selected rows once";
}

std::string pct(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * ratio);
  return buf;
}

template <class T>
std::string run_compare(const sr1::batch& b, const sr::pipeline_config& c,
                        const sr::selector_options& base, const select_args& a) {
  const std::vector<T> rewards = rewards_as<T>(b, a.input);
  const sr::id_groups<std::int64_t> groups{b.group_ids};
  const auto G = static_cast<std::int64_t>(b.group_names.size());
  const std::vector<std::int64_t>* lengths = b.lengths.empty() ? nullptr : &b.lengths;
  struct row {
    const compare_rule* rule;
    sr1::selection<T> sel;
    sr1::diagnostics diag;
  };
  std::vector<row> rows;
  for (const compare_rule& r : compare_rules) {
    sr::selector_options so = base;
    so.kind = r.kind;
    row out{&r, sr1::run_selection(rewards, groups, G, c, so, r.mode, r.all_rows), {}};
    out.diag = sr1::diagnose(out.sel, lengths, c);
    rows.push_back(std::move(out));
  }
  const sr1::selection<T>& ref = rows.front().sel;
  const sr1::diagnostics& ref_d = rows.front().diag;
  if (a.format == "json") {
    sr1::json_writer j;
    j.begin_object();
    j.key("input");
    j.value(a.input);
    j.key("rows");
    j.value(static_cast<std::int64_t>(rewards.size()));
    j.key("groups");
    j.value(G);
    j.key("zero_variance_groups");
    j.value(ref.advantage.zero_variance_groups);
    j.key("collapse_ratio_all");
    j.value(ref_d.collapse_all);
    j.key("token_utilization_all");
    ratio_or_null(j, ref_d.have_tokens, ref_d.token_all);
    j.key("rules");
    j.begin_array();
    for (const row& r : rows) {
      j.begin_object();
      j.key("rule");
      j.value(r.rule->name);
      j.key("training");
      j.value(r.rule->all_rows ? "all" : sr1::to_string(r.rule->mode));
      j.key("selected_rows");
      j.value(r.sel.summary.rows);
      j.key("training_rows");
      j.value(static_cast<std::int64_t>(r.sel.rows.size()));
      j.key("groups_kept");
      j.value(r.rule->all_rows ? G : r.sel.summary.groups_kept);
      j.key("groups_dropped");
      j.value(r.sel.summary.groups_dropped);
      j.key("collapse_ratio_selected");
      j.value(r.diag.collapse_selected);
      j.key("collapse_ratio_training");
      j.value(r.diag.collapse_training);
      j.key("nonzero_gradient_ratio");
      j.value(r.diag.nonzero_gradient);
      j.key("token_utilization");
      ratio_or_null(j, r.diag.have_tokens, r.diag.token_training);
      j.key("distinct_rows_used");
      j.value(r.diag.distinct_rows);
      j.key("pairs");
      j.value(static_cast<std::int64_t>(r.sel.pairs.size() / 2));
      j.key("distinct_pairs_used");
      j.value(r.sel.distinct_pairs_used);
      j.key("effective_sample_size");
      ratio_or_null(j, r.diag.have_ess && r.rule->mode == sr1::training_mode::abs, r.diag.ess);
      j.end_object();
    }
    j.end_array();
    j.end_object();
    j.str() += '\n';
    return std::move(j.str());
  }
  std::string t;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "Batch %s: %lld rows in %lld groups (%lld zero-variance); keep ratio %g; seed "
                "%llu, step %lld.\n",
                a.input.c_str(), static_cast<long long>(rewards.size()), static_cast<long long>(G),
                static_cast<long long>(ref.advantage.zero_variance_groups), c.pairs.keep_ratio,
                static_cast<unsigned long long>(c.shuffle.seed),
                static_cast<long long>(c.shuffle.step));
  t += buf;
  t += "|A| < 0.1 on all rows: " + pct(ref_d.collapse_all);
  if (ref_d.have_tokens)
    t += "; token utilization of all rows: " + pct(ref_d.token_all) + " (column '" + a.lengths +
         "')";
  t += ".\n\n";
  // Pipes inside cells are escaped so that the table renders as Markdown.
  t += "| rule | training batch | rows | groups kept | dropped | \\|A\\|<0.1 selected | "
       "\\|A\\|<0.1 training | non-zero grad | token util | distinct rows | distinct pairs | "
       "ESS |\n";
  t += "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const row& r : rows) {
    const bool shuffled = r.rule->mode != sr1::training_mode::once && !r.rule->all_rows;
    const auto K = static_cast<long long>(r.sel.pairs.size() / 2);
    std::string ess = "-", pairs_used = "-";
    if (shuffled) pairs_used = std::to_string(r.sel.distinct_pairs_used) + "/" + std::to_string(K);
    if (shuffled && r.rule->mode == sr1::training_mode::abs) {
      std::snprintf(buf, sizeof buf, "%.1f/%lld", r.diag.ess, K);
      ess = buf;
    }
    t += "| " + std::string(r.rule->name) + " | " + training_text(*r.rule, r.sel.shuffle) + " | " +
         std::to_string(r.sel.rows.size()) + " | " +
         std::to_string(r.rule->all_rows ? G : r.sel.summary.groups_kept) + " | " +
         std::to_string(r.sel.summary.groups_dropped) + " | " + pct(r.diag.collapse_selected) +
         " | " + pct(r.diag.collapse_training) + " | " + pct(r.diag.nonzero_gradient) + " | " +
         (r.diag.have_tokens ? pct(r.diag.token_training) : std::string("-")) + " | " +
         std::to_string(r.diag.distinct_rows) + " | " + pairs_used + " | " + ess + " |\n";
  }
  return t;
}

int run_compare_command(const select_args& a) {
  const sr::pipeline_config c = make_config(a);
  const sr::selector_options so = make_selector(a);
  if (a.format != "markdown" && a.format != "json")
    throw sr1::input_error("--format '" + a.format + "' is not one of markdown, json");
  const sr1::batch b = sr1::read_csv(a.input, a.lengths);
  check_groups(b, c, a.input);
  const std::string text =
      a.dtype == "float64" ? run_compare<double>(b, c, so, a) : run_compare<float>(b, c, so, a);
  sr1::write_result(a.output, text);
  return 0;
}

/// Options shared by select and compare: the three stages, the selector, the lengths column.
struct shared_flags {
  CLI::Option* keep = nullptr;
  CLI::Option* per_round = nullptr;
};

shared_flags add_selection_options(CLI::App* cmd, select_args& sel) {
  shared_flags f;
  cmd->add_option("--input", sel.input, "CSV file with a header")->required();
  cmd->add_option("--output", sel.output,
                  "Output file, replaced atomically (default: standard output)");
  cmd->add_option("--dtype", sel.dtype,
                  "Precision of rewards and advantages: float32 (as trainers) or float64")
      ->capture_default_str();
  cmd->add_option("--lengths", sel.lengths,
                  "CSV column of response lengths in tokens, for token utilization");
  cmd->add_option("--estimator", sel.estimator, "grpo, mean_only, rloo, batch_std")
      ->capture_default_str();
  cmd->add_option("--ddof", sel.ddof, "Delta degrees of freedom of the std: 0 or 1")
      ->capture_default_str()
      ->check(CLI::IsMember({0, 1}));
  cmd->add_option("--eps", sel.eps, "Added to the std (grpo, batch_std), >= 0")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) {
            double v = 0;
            return CLI::detail::lexical_cast(text, v) && v >= 0 && std::isfinite(v)
                       ? std::string()
                       : "--eps " + text + " is not a finite number >= 0";
          },
          "EPS >= 0"));
  cmd->add_option("--singleton", sel.singleton, "Groups of one row: error, verl, zero")
      ->capture_default_str();
  auto* ratio = cmd->add_option("--keep-ratio", sel.keep_ratio,
                                "PTS keep ratio alpha in (0, 1]: M = floor(alpha * n/2)")
                    ->capture_default_str();
  f.keep = cmd->add_option("--keep-pairs", sel.keep_pairs,
                           "PTS pairs kept per group (instead of --keep-ratio)");
  ratio->excludes(f.keep);
  cmd->add_option("--odd", sel.odd, "Groups of odd size: error, drop_median")
      ->capture_default_str();
  cmd->add_option("--weight", sel.weight, "Pair weight: sum, max, mean, pos")
      ->capture_default_str();
  cmd->add_option("--transform", sel.transform,
                  "ABS weight transform: power, softmax, log_softmax, inverse")
      ->capture_default_str();
  cmd->add_option("--coeff", sel.coeff, "Exponent kappa of the power transform (>= 0)")
      ->capture_default_str();
  cmd->add_option("--step", sel.step, "Training step (schedule position, RNG coordinate)")
      ->capture_default_str();
  cmd->add_option("--total-steps", sel.total_steps,
                  "Length of the softmax/log_softmax temperature schedule")
      ->capture_default_str();
  cmd->add_option("--rounds", sel.rounds, "ABS rounds S")->capture_default_str();
  f.per_round =
      cmd->add_option("--per-round", sel.per_round, "ABS pairs per round T (default K/S)");
  cmd->add_option("--on-short", sel.on_short, "Fewer than T non-zero pairs: error, fill, shrink")
      ->capture_default_str();
  cmd->add_option("--seed", sel.seed_text, "Seed of ABS and of the random rules (0 to 2^64 - 1)")
      ->capture_default_str();
  cmd->add_option("--tolerance", sel.tolerance,
                  "dapo: a group is zero-variance when max - min <= tolerance")
      ->capture_default_str();
  cmd->add_option("--group-ratio", sel.group_ratio,
                  "std_topk: share of groups (top_k) or of the std sum (top_p), in (0, 1]")
      ->capture_default_str();
  cmd->add_option("--std-mode", sel.std_mode, "std_topk: top_k or top_p")->capture_default_str();
  cmd->add_flag("--keep-all-rows", sel.keep_all_rows,
                "dapo, std_topk: keep every row of a kept group instead of 2M");
  cmd->add_option("--power", sel.power, "resample: sampling mass |value|^power (>= 0)")
      ->capture_default_str();
  cmd->add_option("--resample-on", sel.resample_on, "resample: rewards or advantages")
      ->capture_default_str();
  cmd->add_option("--zero-mass", sel.zero_mass, "resample: groups without mass: uniform or drop")
      ->capture_default_str();
  return f;
}

/// A seed: decimal digits only, at most 2^64 - 1 (CLI11 would wrap "-1" and clamp 2^64).
std::uint64_t parse_seed(const std::string& text, const char* flag) {
  std::uint64_t v = 0;
  bool ok = !text.empty() && text.size() <= 20;
  for (const char ch : text) {
    if (!ok) break;
    if (ch < '0' || ch > '9') {
      ok = false;
      break;
    }
    const auto d = static_cast<std::uint64_t>(ch - '0');
    if (v > (~std::uint64_t{0} - d) / 10) ok = false;
    v = v * 10 + d;
  }
  if (!ok)
    throw sr1::input_error(std::string(flag) + " '" + text +
                           "' is not an integer from 0 to 18446744073709551615");
  return v;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sr1: Shuffle-R1 data selection for RL post-training (GRPO advantages, PTS "
      "pairs, ABS shuffle), on the shuffle_r1 library " SHUFFLE_R1_VERSION_STRING};
  app.require_subcommand(1, 1);
  app.set_version_flag("--version", SHUFFLE_R1_VERSION_STRING);

  sr1::demo_args demo;
  CLI::App* demo_cmd = app.add_subcommand(
      "demo", "Run the pipeline with the paper's defaults on a synthetic batch and summarize it");
  demo_cmd->add_option("--prompts", demo.prompts, "Prompts in the batch")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
  demo_cmd->add_option("--rollouts", demo.rollouts, "Responses per prompt (even)")
      ->check(CLI::Range(std::int64_t{2}, std::int64_t{1} << 16))
      ->check(CLI::Validator(
          [](std::string& text) {
            long long v = 0;
            return CLI::detail::lexical_cast(text, v) && v % 2 == 0
                       ? std::string()
                       : "--rollouts " + text + " is odd; PTS pairs responses, use an even count";
          },
          "EVEN"));
  std::string demo_seed = "0";
  demo_cmd->add_option("--seed", demo_seed, "Seed of the synthetic rewards (0 to 2^64 - 1)");

  demo_cmd->add_option("--write-csv", demo.write_csv,
                       "Also write the batch to this CSV file (group, reward, length)");
  std::string demo_backend = "cpu";
  demo_cmd
      ->add_option("--backend", demo_backend,
                   "Where the pipeline runs: cpu, or cuda (an sr1 built with the CUDA backend)")
      ->capture_default_str();

  select_args sel;
  CLI::App* select_cmd = app.add_subcommand(
      "select",
      "Read a CSV batch (columns group, reward; others ignored), run the selection (PTS and ABS "
      "by default), write JSON: advantages, pairs, pair_weights, order, rows, stats");
  const shared_flags select_flags = add_selection_options(select_cmd, sel);
  select_cmd
      ->add_option("--selector", sel.selector,
                   "Selection rule: pts, pods, dapo, std_topk, random, top, bottom, "
                   "resample (pair rules are followed by ABS)")
      ->capture_default_str();
  select_cmd
      ->add_option("--backend", sel.backend,
                   "Where the pipeline runs: cpu, or cuda (--selector pts; an sr1 built with the "
                   "CUDA backend); the output is the same")
      ->capture_default_str();

  select_args cmp;
  cmp.on_short = "shrink";  // a rule may leave fewer than T non-zero pairs: shorter rounds
  CLI::App* compare_cmd = app.add_subcommand(
      "compare",
      "Run every selection rule on the same CSV batch and print a table of diagnostics "
      "(docs/research.md)");
  const shared_flags compare_flags = add_selection_options(compare_cmd, cmp);
  compare_cmd->add_option("--format", cmp.format, "markdown (a table) or json")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "sr1: %s (see sr1 --help)\n", one_line(e.what()).c_str());
    return 2;
  }
  sel.keep_pairs_given = select_flags.keep->count() > 0;
  sel.per_round_given = select_flags.per_round->count() > 0;
  cmp.keep_pairs_given = compare_flags.keep->count() > 0;
  cmp.per_round_given = compare_flags.per_round->count() > 0;

  try {
    if (*demo_cmd) {
      demo.seed = parse_seed(demo_seed, "--seed");
      demo.be = parse_backend(demo_backend);
      return sr1::run_demo(demo);
    }
    if (*compare_cmd) {
      cmp.seed = parse_seed(cmp.seed_text, "--seed");
      return run_compare_command(cmp);
    }
    sel.seed = parse_seed(sel.seed_text, "--seed");
    return run_select_command(sel);
  } catch (const sr1::input_error& e) {
    std::fprintf(stderr, "sr1: %s\n", one_line(e.what()).c_str());
    return 2;
  } catch (const sr::error& e) {
    std::fprintf(stderr, "sr1: %s\n", one_line(cli_message(e.what())).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sr1: unexpected failure: %s\n", one_line(e.what()).c_str());
    return 1;
  }
}
