// sr1: the shuffle_r1 command-line tool.
//
//   sr1 demo   [--prompts 512] [--rollouts 16] [--seed 0]
//   sr1 select --input FILE.csv [--output FILE.json] [options of the three stages]
//
// Exit status: 0 success; 2 bad input or options (one line on stderr naming the file line or
// the option; nothing written to --output); 1 any other failure.
#include "csv.hpp"
#include "demo.hpp"
#include "json_writer.hpp"
#include "output.hpp"

#include <shuffle_r1/shuffle_r1.hpp>

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
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
  bool keep_pairs_given = false, per_round_given = false;
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
      {"options.keep_ratio", "--keep-ratio"}, {"options.keep_pairs", "--keep-pairs"},
      {"options.per_round", "--per-round"},   {"options.total_steps", "--total-steps"},
      {"options.rounds", "--rounds"},         {"options.step", "--step"},
      {"options.coeff", "--coeff"},           {"options.eps", "--eps"},
      {"options.ddof", "--ddof"},             {"options.on_short", "--on-short"},
      {"options.t_min", "t_min"},             {"options.t_max", "t_max"},
      {"set the odd policy to drop_median", "use --odd drop_median"},
      {"set on_short to fill or shrink", "use --on-short fill or shrink"},
      {"set the singleton policy to verl or zero", "use --singleton verl or zero"},
  };
  std::string m = library_message;
  // Drop the library function name ("plan_pipeline: ..."): the user ran sr1, not a function.
  const std::size_t colon = m.find(": ");
  if (colon != std::string::npos &&
      m.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == colon)
    m.erase(0, colon + 2);
  for (const auto& [from, to] : names)
    for (std::size_t at = m.find(from); at != std::string::npos; at = m.find(from, at))
      m.replace(at, std::string_view(from).size(), to);
  return m;
}

sr::pipeline_config make_config(const select_args& a) {
  sr::pipeline_config c;
  c.advantage.kind = parse_choice<sr::estimator>(a.estimator, "--estimator",
                                                 "grpo, mean_only, rloo, batch_std");
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

/// Data checks whose messages should name the CSV line and group (the library checks them too).
void check_groups(const sr1::batch& b, const sr::pipeline_config& c, const std::string& file) {
  std::vector<std::int64_t> sizes(b.group_names.size(), 0);
  for (const std::int64_t g : b.group_ids) ++sizes[static_cast<std::size_t>(g)];
  for (std::size_t g = 0; g < sizes.size(); ++g) {
    const std::string where = file + ":" + std::to_string(b.group_first_line[g]) + ": group '" +
                              b.group_names[g] + "'";
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

template <class T>
std::string run_select(const sr1::batch& b, const sr::pipeline_config& c, const std::string& file) {
  std::vector<T> rewards(b.rewards.size());
  for (std::size_t i = 0; i < rewards.size(); ++i) {
    rewards[i] = static_cast<T>(b.rewards[i]);
    if (!std::isfinite(rewards[i]))
      throw sr1::input_error(file + ":" + std::to_string(b.lines[i]) + ": reward " +
                             std::to_string(b.rewards[i]) +
                             " overflows float32 (use --dtype float64)");
  }
  const sr::id_groups<std::int64_t> groups{b.group_ids};
  const auto B = static_cast<std::int64_t>(rewards.size());
  const sr::pipeline_sizes sizes = sr::plan_pipeline(groups, B, c);
  std::vector<T> advantages(static_cast<std::size_t>(B)), weights(static_cast<std::size_t>(sizes.pairs));
  std::vector<std::int64_t> pairs(static_cast<std::size_t>(2 * sizes.pairs));
  std::vector<std::int64_t> order(static_cast<std::size_t>(sizes.order));
  std::vector<std::int64_t> rows(static_cast<std::size_t>(sizes.training_rows));
  std::vector<double> mean(static_cast<std::size_t>(sizes.groups)), stdev(mean.size());
  sr::pipeline_workspace<T> ws;
  const sr::pipeline_summary s = sr::run_pipeline(
      sr::cpu, rewards, groups, c, ws,
      sr::pipeline_outputs<T>{advantages, pairs, weights, order, rows, mean, stdev});
  order.resize(static_cast<std::size_t>(s.shuffle.size));
  rows.resize(static_cast<std::size_t>(2 * s.shuffle.size));

  std::vector<std::int64_t> histogram(static_cast<std::size_t>(c.shuffle.rounds + 1));
  (void)sr::pair_multiplicity(sr::cpu, sr::host_span<const std::int64_t>(order), s.pairs,
                              histogram);
  const sr::host_span<const T> adv(advantages);

  sr1::json_writer j;
  j.begin_object();
  j.key("advantages");
  j.array(advantages);
  j.key("pairs");
  j.begin_array();
  for (std::int64_t k = 0; k < s.pairs; ++k) {
    j.begin_array();
    j.value(pairs[static_cast<std::size_t>(2 * k)]);
    j.value(pairs[static_cast<std::size_t>(2 * k + 1)]);
    j.end_array();
  }
  j.end_array();
  j.key("pair_weights");
  j.array(weights);
  j.key("order");
  j.array(order);
  j.key("rows");
  j.array(rows);
  j.key("groups");
  j.begin_array();
  for (const std::string& name : b.group_names) j.value(name);
  j.end_array();
  j.key("group_mean");
  j.array(mean);
  j.key("group_std");
  j.array(stdev);
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
  j.value(s.pairs);
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
  j.array(histogram);
  j.key("collapse_ratio_all");
  j.value(sr::collapse_ratio(sr::cpu, adv, 0.1));
  j.key("collapse_ratio_after_pts");
  j.value(sr::collapse_ratio(sr::cpu, adv, sr::host_span<const std::int64_t>(pairs), 0.1));
  j.key("nonzero_gradient_ratio");
  j.value(sr::nonzero_gradient_ratio(sr::cpu, adv, sr::host_span<const std::int64_t>(rows)));
  j.key("seed");
  j.value(c.shuffle.seed);
  j.key("step");
  j.value(c.shuffle.step);
  j.key("dtype");
  j.value(std::is_same_v<T, float> ? "float32" : "float64");
  j.end_object();
  j.end_object();
  j.str() += '\n';
  return std::move(j.str());
}

int run_select_command(const select_args& a) {
  const sr::pipeline_config c = make_config(a);
  const sr1::batch b = sr1::read_csv(a.input);
  check_groups(b, c, a.input);
  const std::string json =
      a.dtype == "float64" ? run_select<double>(b, c, a.input) : run_select<float>(b, c, a.input);
  if (a.output.empty()) {
    sr1::write_stdout(json);
  } else {
    sr1::write_atomically(a.output, json);
  }
  return 0;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sr1: Shuffle-R1 data selection for RL post-training (GRPO advantages, PTS "
               "pairs, ABS shuffle), on the shuffle_r1 library " SHUFFLE_R1_VERSION_STRING};
  app.require_subcommand(1, 1);
  app.set_version_flag("--version", SHUFFLE_R1_VERSION_STRING);

  sr1::demo_args demo;
  CLI::App* demo_cmd = app.add_subcommand(
      "demo", "Run the pipeline with the paper's defaults on a synthetic batch and summarize it");
  demo_cmd->add_option("--prompts", demo.prompts, "Prompts in the batch")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
  demo_cmd->add_option("--rollouts", demo.rollouts, "Responses per prompt (even)")
      ->check(CLI::Range(std::int64_t{2}, std::int64_t{1} << 16));
  demo_cmd->add_option("--seed", demo.seed, "Seed of the synthetic rewards");

  select_args sel;
  CLI::App* select_cmd = app.add_subcommand(
      "select",
      "Read a CSV batch (columns group, reward; others ignored), run the pipeline, write JSON: "
      "advantages, pairs, pair_weights, order, rows, stats");
  select_cmd->add_option("--input", sel.input, "CSV file with a header")->required();
  select_cmd->add_option("--output", sel.output,
                         "JSON file, replaced atomically (default: standard output)");
  select_cmd->add_option("--dtype", sel.dtype,
                         "Precision of rewards and advantages: float32 (as trainers) or float64")
      ->capture_default_str();
  select_cmd->add_option("--estimator", sel.estimator, "grpo, mean_only, rloo, batch_std")
      ->capture_default_str();
  select_cmd->add_option("--ddof", sel.ddof, "Delta degrees of freedom of the std: 0 or 1")
      ->capture_default_str()
      ->check(CLI::IsMember({0, 1}));
  select_cmd->add_option("--eps", sel.eps, "Added to the std (grpo, batch_std)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  select_cmd->add_option("--singleton", sel.singleton, "Groups of one row: error, verl, zero")
      ->capture_default_str();
  auto* ratio = select_cmd
                    ->add_option("--keep-ratio", sel.keep_ratio,
                                 "PTS keep ratio alpha in (0, 1]: M = floor(alpha * n/2)")
                    ->capture_default_str();
  auto* keep = select_cmd->add_option("--keep-pairs", sel.keep_pairs,
                                      "PTS pairs kept per group (instead of --keep-ratio)");
  ratio->excludes(keep);
  select_cmd->add_option("--odd", sel.odd, "Groups of odd size: error, drop_median")
      ->capture_default_str();
  select_cmd->add_option("--weight", sel.weight, "Pair weight: sum, max, mean, pos")
      ->capture_default_str();
  select_cmd->add_option("--transform", sel.transform,
                         "ABS weight transform: power, softmax, log_softmax, inverse")
      ->capture_default_str();
  select_cmd->add_option("--coeff", sel.coeff, "Exponent kappa of the power transform (>= 0)")
      ->capture_default_str();
  select_cmd->add_option("--step", sel.step, "Training step (schedule position, RNG coordinate)")
      ->capture_default_str();
  select_cmd->add_option("--total-steps", sel.total_steps,
                         "Length of the softmax/log_softmax temperature schedule")
      ->capture_default_str();
  select_cmd->add_option("--rounds", sel.rounds, "ABS rounds S")->capture_default_str();
  auto* per_round =
      select_cmd->add_option("--per-round", sel.per_round, "ABS pairs per round T (default K/S)");
  select_cmd->add_option("--on-short", sel.on_short,
                         "Fewer than T non-zero pairs: error, fill, shrink")
      ->capture_default_str();
  select_cmd->add_option("--seed", sel.seed, "ABS seed")->capture_default_str();

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
  sel.keep_pairs_given = keep->count() > 0;
  sel.per_round_given = per_round->count() > 0;

  try {
    if (*demo_cmd) return sr1::run_demo(demo);
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
