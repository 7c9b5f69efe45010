// Fuzz harness: arbitrary bytes -> rewards, a group layout and pipeline options -> run_pipeline.
//
// Invariants checked on every input:
// - run_pipeline either throws shuffle_r1::error (nothing else) and leaves every output
//   untouched, or returns outputs that validate_pipeline accepts;
// - plan_pipeline throwing implies run_pipeline throws (it sees a subset of the inputs);
// - on success: nothing past the written prefix of an output is touched; groups of >= 2 rows
//   with equal rewards get advantages of exactly 0; grpo/mean_only/rloo advantages sum to about 0
//   per group; under `power` with kappa > 0 (not `fill`) no pair of weight 0 is drawn; the
//   summary counts agree with the layout; a second run with a fresh workspace is bit-identical
//   to the first, which used a workspace shared by all inputs (the reuse path).
//
// Decoding (fuzz_support.hpp's reader; missing bytes read as 0): 4 header bytes of enums and
// flags, option values (small integers with a 64-bit escape, floating-point values from a table
// of edge cases), the seed, the layout (uniform, ragged with empty groups, int32 ids in any
// order, or an indexed layout built by groups_from_ids from int64 ids), then one tag byte per
// reward (a grid of typical rewards with many ties, edge values - NaN, infinities, denormals,
// huge and tiny magnitudes, -0 - or the next 8 bytes as a raw double).
#include "fuzz_support.hpp"

#include <shuffle_r1/shuffle_r1.hpp>
#include <shuffle_r1/validate.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace sr = shuffle_r1;
using sr1_fuzz::reader;
using sr1_fuzz::require;

namespace {

constexpr std::int64_t max_rows = 4096;
constexpr std::int64_t max_outputs = std::int64_t{1} << 20;  // skip inputs that plan more

double edge_value(std::uint8_t k) {
  constexpr double table[] = {0.0,
                              -0.0,
                              1.0,
                              -1.0,
                              0.5,
                              2.0,
                              1e-6,
                              1e6,
                              std::numeric_limits<double>::quiet_NaN(),
                              std::numeric_limits<double>::infinity(),
                              -std::numeric_limits<double>::infinity(),
                              std::numeric_limits<double>::denorm_min(),
                              -std::numeric_limits<double>::denorm_min(),
                              std::numeric_limits<double>::min(),
                              std::numeric_limits<double>::max(),
                              -std::numeric_limits<double>::max(),
                              1e-300,
                              1e300,
                              1e-30,
                              1e30,
                              static_cast<double>(std::numeric_limits<float>::max()),
                              static_cast<double>(std::numeric_limits<float>::denorm_min()),
                              1.5,
                              0.1};
  return table[k % (sizeof table / sizeof table[0])];
}

template <class T>
T reward_value(reader& in) {
  const std::uint8_t tag = in.u8();
  if (tag < 176) return static_cast<T>((tag % 11) / 10.0);  // 0, 0.1, ..., 1: many ties
  if (tag < 248) return static_cast<T>(edge_value(tag));
  return static_cast<T>(in.f64());
}

/// The decoded layout with its own storage and the members of every group (for the checks).
struct layout_case {
  int kind = 0;  // 0 uniform, 1 ragged, 2 int32 ids, 3 indexed from int64 ids
  sr::uniform_groups uniform;
  std::vector<std::int64_t> offsets, rows;
  std::vector<std::int32_t> ids32;
  std::vector<std::int64_t> ids64;
  std::vector<std::vector<std::int64_t>> members;  // rows of each group (when `known`)
  bool known = false;                              // the layout is valid for B rows
  std::int64_t B = 0;                              // rows the rewards will have
};

layout_case decode_layout(reader& in, int kind, bool corrupt) {
  layout_case c;
  c.kind = kind;
  if (kind == 0) {
    c.uniform.num_groups = in.u8() % 65;
    c.uniform.group_size = in.u8() % 33;
    c.B = c.uniform.num_groups * c.uniform.group_size;
    if (corrupt) {  // negative or huge sizes: the rows cannot match
      (in.u8() & 1 ? c.uniform.num_groups : c.uniform.group_size) = in.small_int();
      return c;
    }
    c.known = true;
    for (std::int64_t g = 0; g < c.uniform.num_groups; ++g) {
      c.members.emplace_back();
      for (std::int64_t k = 0; k < c.uniform.group_size; ++k)
        c.members.back().push_back(g * c.uniform.group_size + k);
    }
  } else if (kind == 1) {
    const int G = in.u8() % 64;
    c.offsets.push_back(0);
    for (int g = 0; g < G; ++g)
      c.offsets.push_back(c.offsets.back() + in.u8() % 20);
    c.B = c.offsets.back();
    for (int g = 0; g < G; ++g) {
      c.members.emplace_back();
      for (std::int64_t r = c.offsets[g]; r < c.offsets[g + 1]; ++r)
        c.members.back().push_back(r);
    }
    c.known = true;
    if (corrupt) {  // wrapping add: the harness itself must not overflow
      auto& o = c.offsets[in.u8() % (G + 1)];
      o = static_cast<std::int64_t>(static_cast<std::uint64_t>(o) +
                                    static_cast<std::uint64_t>(in.small_int()));
      c.known = false;
    }
  } else {
    c.B = in.u16() % (max_rows + 1);
    c.B = std::min<std::int64_t>(c.B, static_cast<std::int64_t>(in.left()));
    std::vector<std::int64_t> ids;
    for (std::int64_t i = 0; i < c.B; ++i)
      ids.push_back(static_cast<std::int8_t>(in.u8()) % 24);
    // Expected groups: first appearance order, rows in batch order.
    std::vector<std::int64_t> seen;
    for (std::int64_t i = 0; i < c.B; ++i) {
      const auto g =
          static_cast<std::size_t>(std::find(seen.begin(), seen.end(), ids[i]) - seen.begin());
      if (g == seen.size()) {
        seen.push_back(ids[i]);
        c.members.emplace_back();
      }
      c.members[g].push_back(i);
    }
    c.known = true;
    if (kind == 2) {
      c.ids32.assign(ids.begin(), ids.end());
    } else {
      c.ids64 = ids;
      c.offsets.assign(static_cast<std::size_t>(c.B + 1), -1);
      c.rows.assign(static_cast<std::size_t>(c.B), -1);
    }
  }
  return c;
}

template <class T>
struct buffers {
  std::vector<T> advantages, weights;
  std::vector<std::int64_t> pairs, order, rows;
  std::vector<double> mean, stdev;
  sr::pipeline_outputs<T> view() {
    sr::pipeline_outputs<T> o;
    o.advantages = sr::host_span<T>(advantages.data(), advantages.size());
    o.pairs = sr::host_span<std::int64_t>(pairs.data(), pairs.size());
    o.pair_weights = sr::host_span<T>(weights.data(), weights.size());
    o.order = sr::host_span<std::int64_t>(order.data(), order.size());
    o.rows = sr::host_span<std::int64_t>(rows.data(), rows.size());
    o.group_mean = sr::host_span<double>(mean.data(), mean.size());
    o.group_std = sr::host_span<double>(stdev.data(), stdev.size());
    return o;
  }
};

constexpr std::int64_t sentinel_index = -7777;
template <class T>
constexpr T sentinel_value() {
  return static_cast<T>(-12345.25);
}

/// Sizes of the outputs of one call (0: the output is not given).
struct output_sizes {
  std::size_t advantages, pairs, order, weights, rows, mean, stdev;
};

/// Outputs of the given sizes, filled with sentinels (the checks compare against them).
template <class T>
buffers<T> sentinel_buffers(const output_sizes& n) {
  buffers<T> b;
  b.advantages.assign(n.advantages, sentinel_value<T>());
  b.pairs.assign(n.pairs, sentinel_index);
  b.order.assign(n.order, sentinel_index);
  b.weights.assign(n.weights, sentinel_value<T>());
  b.rows.assign(n.rows, sentinel_index);
  b.mean.assign(n.mean, -1.5);
  b.stdev.assign(n.stdev, -1.5);
  return b;
}

template <class V>
bool untouched_from(const std::vector<V>& v, std::size_t from, V s) {
  for (std::size_t i = from; i < v.size(); ++i)
    if (std::memcmp(&v[i], &s, sizeof(V)) != 0) return false;
  return true;
}

template <class V>
bool same_bits(const std::vector<V>& a, const std::vector<V>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(V)) == 0);
}

template <class T, class Layout>
void run_case(const Layout& groups, const layout_case& lc, const std::vector<T>& rewards,
              const sr::pipeline_config& cfg, std::uint8_t out_flags) {
  const auto B = static_cast<std::int64_t>(rewards.size());
  sr::pipeline_sizes plan;
  bool planned = true;
  try {
    plan = sr::plan_pipeline(groups, B, cfg);
  } catch (const sr::error&) {
    planned = false;
  }
  if (planned && (plan.pairs > max_outputs || plan.training_rows > max_outputs)) return;
  // Outputs: exact size for advantages, a little slack elsewhere (must stay untouched).
  const std::int64_t slack = 3;
  const std::int64_t G = planned ? plan.groups : 0;
  const std::int64_t K = planned ? plan.pairs : B;
  const std::int64_t order_n = planned ? plan.order : B;
  const auto sized = [](std::int64_t n) { return static_cast<std::size_t>(n); };
  const output_sizes sizes{sized(B),
                           sized(2 * K + slack),
                           sized(order_n + slack),
                           out_flags & 1 ? sized(K + slack) : 0,
                           out_flags & 2 ? sized(2 * order_n + slack) : 0,
                           out_flags & 4 ? sized(G) : 0,
                           out_flags & 8 ? sized(G) : 0};
  buffers<T> out = sentinel_buffers<T>(sizes);
  const T sv = sentinel_value<T>();

  static sr::pipeline_workspace<T> shared;  // reused across inputs
  sr::pipeline_summary sum;
  try {
    sum = sr::run_pipeline(sr::cpu, sr::host_span<const T>(rewards.data(), rewards.size()), groups,
                           cfg, shared, out.view());
  } catch (const sr::error& e) {
    require(std::strncmp(e.what(), "run_pipeline", 12) == 0,
            std::string("error message does not name run_pipeline: ") + e.what());
    require(untouched_from(out.advantages, 0, sv) && untouched_from(out.pairs, 0, sentinel_index) &&
                untouched_from(out.order, 0, sentinel_index) &&
                untouched_from(out.weights, 0, sv) && untouched_from(out.rows, 0, sentinel_index) &&
                untouched_from(out.mean, 0, -1.5) && untouched_from(out.stdev, 0, -1.5),
            std::string("an output was written before the error: ") + e.what());
    return;
  }
  require(planned, "plan_pipeline threw but run_pipeline succeeded");

  // Counts.
  require(sum.pairs == plan.pairs, "summary.pairs != plan.pairs");
  require(sum.shuffle.size <= plan.order, "order size above the plan");
  require(sum.advantage.rows == B, "summary.advantage.rows != B");
  if (lc.known)
    require(sum.advantage.groups == static_cast<std::int64_t>(lc.members.size()),
            "summary.advantage.groups differs from the decoded layout");

  // Nothing past the written prefix.
  require(untouched_from(out.pairs, static_cast<std::size_t>(2 * sum.pairs), sentinel_index),
          "pairs written past 2K");
  require(untouched_from(out.order, static_cast<std::size_t>(sum.shuffle.size), sentinel_index),
          "order written past its size");
  if (!out.weights.empty())
    require(untouched_from(out.weights, static_cast<std::size_t>(sum.pairs), sv),
            "pair_weights written past K");
  if (!out.rows.empty())
    require(
        untouched_from(out.rows, static_cast<std::size_t>(2 * sum.shuffle.size), sentinel_index),
        "rows written past 2 * size");

  // Every invariant of the selection.
  const sr::validation v = sr::validate_pipeline(groups, cfg, sum, out.view());
  require(v.ok, "validate_pipeline: " + v.message);

  // Advantages per group: exact zero for constant groups, mean about zero.
  const sr::estimator est = cfg.advantage.kind;
  for (const auto& m : lc.members) {
    if (!lc.known || m.size() < 2) continue;
    bool constant = true;
    double sum_a = 0.0, max_a = 0.0;
    double lo = static_cast<double>(rewards[m[0]]), hi = lo;
    for (const std::int64_t r : m) {
      constant = constant && std::memcmp(&rewards[m[0]], &rewards[r], sizeof(T)) == 0;
      sum_a += static_cast<double>(out.advantages[r]);
      max_a = std::max(max_a, std::fabs(static_cast<double>(out.advantages[r])));
      lo = std::min(lo, static_cast<double>(rewards[r]));
      hi = std::max(hi, static_cast<double>(rewards[r]));
    }
    if (constant)
      for (const std::int64_t r : m)
        require(out.advantages[r] == T(0),
                "a constant group has a non-zero advantage at row " + std::to_string(r));
    if (est != sr::estimator::batch_std && hi > lo) {
      // Each advantage is c * (x_i - mu) with mu the group mean rounded to double, off the true
      // mean by up to about 2^-52 max|x|; so the sum is off by n * c * 2^-52 max|x| on top of
      // the rounding of each term, where c <= max_a / ((hi - lo) / 2). That term dominates when
      // the rewards of a group differ in their last few hundred ulps (e.g. 3.6838007914811803e279
      // and 3.6838007914813097e279 under rloo: advantages +-1.29e266 that sum to 1e264).
      const double n = static_cast<double>(m.size());
      const double magnitude = std::max(std::fabs(lo), std::fabs(hi));
      const double spread = std::isfinite(hi - lo) ? hi - lo : 2 * (hi / 2 - lo / 2);
      const double mean_error = magnitude / spread * 0x1p-49;  // hi > lo: spread > 0
      const double tol = n * max_a * ((sizeof(T) == 4 ? 1e-5 : 1e-12) + mean_error) +
                         n * 4 * static_cast<double>(std::numeric_limits<T>::denorm_min());
      require(std::fabs(sum_a) <= tol,
              "group advantages do not sum to 0 (sum " + std::to_string(sum_a) + ")");
    }
  }

  // Zero-weight pairs are never drawn under power with kappa > 0 unless `fill` pads the round.
  if (cfg.shuffle.kind == sr::transform::power && cfg.shuffle.coeff > 0 &&
      cfg.shuffle.on_short != sr::short_policy::fill && !out.weights.empty())
    for (std::int64_t i = 0; i < sum.shuffle.size; ++i)
      require(out.weights[static_cast<std::size_t>(out.order[i])] > T(0),
              "a pair of weight 0 was drawn at order[" + std::to_string(i) + "]");

  // Same result from a fresh workspace.
  buffers<T> again = sentinel_buffers<T>(sizes);
  sr::pipeline_workspace<T> fresh;
  const sr::pipeline_summary sum2 =
      sr::run_pipeline(sr::cpu, sr::host_span<const T>(rewards.data(), rewards.size()), groups, cfg,
                       fresh, again.view());
  require(sum2.pairs == sum.pairs && sum2.shuffle.size == sum.shuffle.size &&
              sum2.distinct_pairs_used == sum.distinct_pairs_used,
          "a second run gives other counts");
  require(same_bits(out.advantages, again.advantages) && same_bits(out.pairs, again.pairs) &&
              same_bits(out.order, again.order) && same_bits(out.weights, again.weights) &&
              same_bits(out.rows, again.rows) && same_bits(out.mean, again.mean) &&
              same_bits(out.stdev, again.stdev),
          "a second run with a fresh workspace is not bit-identical");
}

template <class T>
void run_typed(reader& in, const sr::pipeline_config& cfg, int layout_kind, bool corrupt,
               bool row_mismatch, std::uint8_t out_flags) {
  layout_case lc = decode_layout(in, layout_kind, corrupt);
  std::int64_t B = lc.B;
  if (row_mismatch) {
    B = std::max<std::int64_t>(0, B + (in.u8() % 2 ? 1 : -1));
    lc.known = lc.known && B == lc.B;
  }
  std::vector<T> rewards(static_cast<std::size_t>(B));
  for (auto& r : rewards)
    r = reward_value<T>(in);

  switch (lc.kind) {
    case 0:
      run_case<T>(lc.uniform, lc, rewards, cfg, out_flags);
      break;
    case 1: {
      const sr::ragged_groups g{
          sr::host_span<const std::int64_t>(lc.offsets.data(), lc.offsets.size())};
      run_case<T>(g, lc, rewards, cfg, out_flags);
      break;
    }
    case 2: {
      const sr::id_groups<std::int32_t> g{
          sr::host_span<const std::int32_t>(lc.ids32.data(), lc.ids32.size())};
      run_case<T>(g, lc, rewards, cfg, out_flags);
      break;
    }
    default: {
      const sr::indexed_groups g = sr::groups_from_ids(sr::cpu, lc.ids64, lc.offsets, lc.rows);
      // groups_from_ids must give the first-appearance grouping.
      require(g.offsets.size() == lc.members.size() + 1, "groups_from_ids: group count");
      for (std::size_t gi = 0; gi < lc.members.size(); ++gi)
        for (std::size_t k = 0; k < lc.members[gi].size(); ++k)
          require(g.rows[static_cast<std::size_t>(g.offsets[gi]) + k] == lc.members[gi][k],
                  "groups_from_ids: rows of group " + std::to_string(gi));
      run_case<T>(g, lc, rewards, cfg, out_flags);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reader in(data, size);
  const std::uint8_t h0 = in.u8(), h1 = in.u8(), h2 = in.u8(), h3 = in.u8();
  sr::pipeline_config cfg;
  constexpr sr::estimator estimators[] = {sr::estimator::grpo, sr::estimator::mean_only,
                                          sr::estimator::rloo, sr::estimator::batch_std};
  constexpr sr::singleton_policy singles[] = {
      sr::singleton_policy::error, sr::singleton_policy::verl, sr::singleton_policy::zero,
      sr::singleton_policy::zero};
  constexpr sr::pair_weight weights[] = {sr::pair_weight::sum, sr::pair_weight::max,
                                         sr::pair_weight::mean, sr::pair_weight::pos};
  constexpr sr::transform transforms[] = {sr::transform::power, sr::transform::softmax,
                                          sr::transform::log_softmax, sr::transform::inverse};
  constexpr sr::short_policy shorts[] = {sr::short_policy::error, sr::short_policy::fill,
                                         sr::short_policy::shrink, sr::short_policy::shrink};
  const bool use_double = h0 & 1;
  const int layout_kind = (h0 >> 1) & 3;
  cfg.advantage.kind = estimators[(h0 >> 3) & 3];
  cfg.advantage.singleton = singles[(h0 >> 5) & 3];
  cfg.pairs.odd = (h0 & 0x80) ? sr::odd_policy::drop_median : sr::odd_policy::error;
  cfg.pairs.weight = weights[h1 & 3];
  cfg.shuffle.kind = transforms[(h1 >> 2) & 3];
  cfg.shuffle.on_short = shorts[(h1 >> 4) & 3];
  cfg.advantage.ddof = (h1 >> 6) & 1;
  const bool explicit_pairs = h1 & 0x80;

  // Option values: defaults most of the time, edge values otherwise.
  if (h2 & 1) cfg.advantage.eps = edge_value(in.u8());
  if (h2 & 2) cfg.advantage.ddof = static_cast<int>(in.small_int());
  if (explicit_pairs)
    cfg.pairs.keep_pairs = in.small_int();
  else if (h2 & 4)
    cfg.pairs.keep_ratio = (h2 & 8) ? edge_value(in.u8()) : in.u8() / 200.0;
  if (h2 & 16) cfg.shuffle.rounds = in.small_int();
  if (h2 & 32) cfg.shuffle.per_round = in.small_int();
  if (h2 & 64) cfg.shuffle.coeff = (h3 & 64) ? edge_value(in.u8()) : in.u8() / 32.0;
  if (h2 & 128) {
    cfg.shuffle.step = in.small_int();
    cfg.shuffle.total_steps = in.small_int();
    cfg.shuffle.t_max = edge_value(in.u8());
    cfg.shuffle.t_min = edge_value(in.u8());
  }
  cfg.shuffle.seed = in.u64();
  const bool corrupt = (h3 & 3) == 3;
  const bool row_mismatch = (h3 & 12) == 12;
  const std::uint8_t out_flags = static_cast<std::uint8_t>(h3 >> 4);
  if (use_double)
    run_typed<double>(in, cfg, layout_kind, corrupt, row_mismatch, out_flags);
  else
    run_typed<float>(in, cfg, layout_kind, corrupt, row_mismatch, out_flags);
  return 0;
}
