// Fuzz harness: arbitrary bytes as the CSV file of `sr1 select` (tools/sr1/csv.hpp).
//
// The first byte picks options (bit 0: a lengths column named `len`); the rest is the file.
// Invariants: parse_csv either throws sr1::input_error, whose message names the file, or returns
// a batch whose columns have one entry per row, finite rewards, lengths >= 0, group ids numbered
// by first appearance with names that are valid UTF-8, and non-decreasing file lines; the batch
// then goes through run_pipeline (id layout, as sr1 does; odd groups drop the median, singleton
// groups get 0, short rounds shrink), which must succeed and pass validate_pipeline.
#include "fuzz_support.hpp"

#include "../../tools/sr1/csv.hpp"

#include <shuffle_r1/shuffle_r1.hpp>
#include <shuffle_r1/validate.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sr = shuffle_r1;
using sr1_fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool with_lengths = data[0] & 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  sr1::batch b;
  try {
    b = sr1::parse_csv(text, "fuzz.csv", with_lengths ? "len" : "");
  } catch (const sr1::input_error& e) {
    const std::string_view what(e.what());
    require(what.substr(0, 8) == "fuzz.csv",
            "message does not name the file: " + std::string(what));
    require(what.size() > 10, "message too short: " + std::string(what));
    return 0;
  }
  const std::size_t B = b.rewards.size();
  require(B > 0, "a batch without rows was returned");
  require(b.reward_texts.size() == B && b.group_ids.size() == B && b.lines.size() == B,
          "columns of different lengths");
  require(with_lengths ? b.lengths.size() == B : b.lengths.empty(), "lengths column size");
  require(b.group_first_line.size() == b.group_names.size(), "group lines");
  std::int64_t next_group = 0;
  for (std::size_t i = 0; i < B; ++i) {
    require(std::isfinite(b.rewards[i]), "a non-finite reward was accepted");
    require(b.lines[i] >= 2, "a data row on the header line");
    require(i == 0 || b.lines[i] > b.lines[i - 1], "file lines not increasing");
    require(b.group_ids[i] >= 0 && b.group_ids[i] <= next_group,
            "group ids not by first appearance");
    if (b.group_ids[i] == next_group) ++next_group;
    if (with_lengths) require(b.lengths[i] >= 0, "a negative length was accepted");
  }
  require(next_group == static_cast<std::int64_t>(b.group_names.size()), "group count");
  for (const std::string& name : b.group_names)
    require(sr1::detail::valid_utf8(name), "a group name is not UTF-8");

  // The selection sr1 would run, with policies that accept any batch.
  sr::pipeline_config cfg;
  cfg.advantage.singleton = sr::singleton_policy::zero;
  cfg.pairs.odd = sr::odd_policy::drop_median;
  cfg.shuffle.on_short = sr::short_policy::shrink;
  const sr::id_groups<std::int64_t> groups{
      sr::host_span<const std::int64_t>(b.group_ids.data(), B)};
  const sr::pipeline_sizes plan = sr::plan_pipeline(groups, static_cast<std::int64_t>(B), cfg);
  std::vector<double> adv(B);
  std::vector<double> weights(static_cast<std::size_t>(plan.pairs));
  std::vector<std::int64_t> pairs(static_cast<std::size_t>(2 * plan.pairs));
  std::vector<std::int64_t> order(static_cast<std::size_t>(plan.order));
  std::vector<std::int64_t> rows(static_cast<std::size_t>(plan.training_rows));
  sr::pipeline_outputs<double> out;
  out.advantages = sr::host_span<double>(adv.data(), adv.size());
  out.pair_weights = sr::host_span<double>(weights.data(), weights.size());
  out.pairs = sr::host_span<std::int64_t>(pairs.data(), pairs.size());
  out.order = sr::host_span<std::int64_t>(order.data(), order.size());
  out.rows = sr::host_span<std::int64_t>(rows.data(), rows.size());
  sr::pipeline_workspace<double> ws;
  sr::pipeline_summary sum;
  try {
    sum = sr::run_pipeline(sr::cpu, sr::host_span<const double>(b.rewards.data(), B), groups, cfg,
                           ws, out);
  } catch (const sr::error& e) {
    // Only finite rewards so large that the group arithmetic would overflow may be refused.
    require(e.code() == sr::errc::out_of_range,
            std::string("run_pipeline refused a parsed batch: ") + e.what());
    return 0;
  }
  const sr::validation v = sr::validate_pipeline(groups, cfg, sum, out);
  require(v.ok, "validate_pipeline: " + v.message);
  return 0;
}
