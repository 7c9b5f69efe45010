// sr1 demo: a realistic synthetic batch (shuffle_r1::synthetic_rewards: reward =
// 0.9 * correct + 0.1 * well_formatted, per-prompt difficulty) through the pipeline with the
// paper's defaults. `--write-csv FILE` also writes the batch (group, reward, length) for
// `sr1 select` and `sr1 compare`. `--backend cuda` runs the pipeline on the GPU instead (the
// same summary; the time is then the stream time of the pipeline with the data on the device).
#pragma once

#include "backend.hpp"
#include "output.hpp"

#include <shuffle_r1/shuffle_r1.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace sr1 {

struct demo_args {
  std::int64_t prompts = 512;
  std::int64_t rollouts = 16;
  std::uint64_t seed = 0;
  std::string write_csv;  // when set, the batch is also written there as CSV
  backend be = backend::cpu;
};

/// The synthetic rewards, prompt-major (uniform layout).
inline std::vector<float> demo_rewards(const demo_args& a) {
  std::vector<float> rewards(static_cast<std::size_t>(a.prompts * a.rollouts));
  shuffle_r1::synthetic_rewards(a.prompts, a.rollouts, a.seed,
                                shuffle_r1::host_span<float>(rewards));
  return rewards;
}

/// Synthetic response lengths in tokens for the demo batch, so that token diagnostics have
/// something to measure: 128 + floor(768 u) tokens, 256 more for an incorrect response (reward
/// below 0.5; wrong answers tend to ramble), u uniform from Philox of (seed; row, 2, 0x1E46).
inline std::vector<std::int64_t> demo_lengths(const demo_args& a,
                                              const std::vector<float>& rewards) {
  namespace sr = shuffle_r1;
  std::vector<std::int64_t> len(rewards.size());
  const sr::philox_key key = sr::philox_key_from_seed(a.seed);
  for (std::size_t row = 0; row < rewards.size(); ++row) {
    const auto r = static_cast<std::uint64_t>(row);
    const sr::philox_block w = sr::philox4x32_10(
        {{static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(r >> 32), 2u, 0x1E46u}}, key);
    const double u = sr::uniform01(sr::join64(w.v[0], w.v[1]));
    len[row] = 128 + static_cast<std::int64_t>(u * 768.0) + (rewards[row] < 0.5f ? 256 : 0);
  }
  return len;
}

/// The demo batch as CSV: group p<g>, reward (shortest text that reads back as the float),
/// length.
inline std::string demo_csv(const demo_args& a, const std::vector<float>& rewards) {
  const std::vector<std::int64_t> len = demo_lengths(a, rewards);
  std::string out = "group,reward,length\n";
  char buf[64];
  for (std::size_t row = 0; row < rewards.size(); ++row) {
    out += 'p';
    out += std::to_string(static_cast<std::int64_t>(row) / a.rollouts);
    out += ',';
    out.append(buf, std::to_chars(buf, buf + sizeof buf, rewards[row]).ptr);
    out += ',';
    out += std::to_string(len[row]);
    out += '\n';
  }
  return out;
}

inline double percent(double ratio) {
  return 100.0 * ratio;
}

inline int run_demo(const demo_args& a) {
  namespace sr = shuffle_r1;
  using clock = std::chrono::steady_clock;
  const std::vector<float> rewards = demo_rewards(a);
  const sr::uniform_groups groups{a.prompts, a.rollouts};
  const sr::pipeline_config config;  // the paper's defaults
  const sr::pipeline_sizes sizes = sr::plan_pipeline(groups, a.prompts * a.rollouts, config);
  if (a.be == backend::cuda) require_cuda_device();
  if (!a.write_csv.empty()) write_atomically(a.write_csv, demo_csv(a, rewards), "--write-csv");

  std::vector<float> advantages(static_cast<std::size_t>(sizes.rows));
  std::vector<float> weights(static_cast<std::size_t>(sizes.pairs));
  std::vector<std::int64_t> pairs(static_cast<std::size_t>(2 * sizes.pairs));
  std::vector<std::int64_t> order(static_cast<std::size_t>(sizes.order));
  std::vector<std::int64_t> rows(static_cast<std::size_t>(sizes.training_rows));
  sr::pipeline_outputs<float> out{advantages, pairs, weights, order, rows, {}, {}};
  sr::pipeline_workspace<float> ws;

  // Steady state: the workspace is sized, nothing allocates; report the median of 201 calls.
  // On the GPU: the rewards and the workspace stay on the device, each call's stream time.
  constexpr int repeats = 201;
  cuda_timing timing;
  timing.repeats = repeats;
  const auto t0 = clock::now();
  const sr::pipeline_summary s = run_pipeline_on(a.be, rewards, groups, config, ws, out, &timing);
  double first_us = std::chrono::duration<double, std::micro>(clock::now() - t0).count();
  std::vector<double> us;
  if (a.be == backend::cuda) {
    us = timing.us;
    first_us = timing.first_us;
  } else {
    for (int i = 0; i < repeats; ++i) {
      const auto a0 = clock::now();
      (void)sr::run_pipeline(sr::cpu, rewards, groups, config, ws, out);
      us.push_back(std::chrono::duration<double, std::micro>(clock::now() - a0).count());
    }
  }
  std::nth_element(us.begin(), us.begin() + repeats / 2, us.end());

  // A pair appears at most once per round and at most order.size() times (as sr1 select).
  std::vector<std::int64_t> histogram(
      static_cast<std::size_t>(std::min(config.shuffle.rounds, s.shuffle.size) + 1));
  const sr::host_span<const std::int64_t> order_view(order.data(),
                                                     static_cast<std::size_t>(s.shuffle.size));
  (void)sr::pair_multiplicity(sr::cpu, order_view, s.pairs, histogram);
  const sr::host_span<const float> adv(advantages);
  const sr::host_span<const std::int64_t> pair_rows(pairs);
  const sr::host_span<const std::int64_t> train_rows(rows.data(),
                                                     static_cast<std::size_t>(2 * s.shuffle.size));

  std::printf("shuffle_r1 %s demo: %lld prompts x %lld rollouts = %lld rows (seed %llu)\n",
              SHUFFLE_R1_VERSION_STRING, static_cast<long long>(a.prompts),
              static_cast<long long>(a.rollouts), static_cast<long long>(sizes.rows),
              static_cast<unsigned long long>(a.seed));
  std::printf(
      "  reward = 0.9 * correct + 0.1 * well_formatted; GRPO advantages (ddof 1, eps 1e-6)\n\n");
  std::printf("  groups                        %lld\n", static_cast<long long>(s.advantage.groups));
  std::printf("  zero-variance groups          %lld (%.1f%%)\n",
              static_cast<long long>(s.advantage.zero_variance_groups),
              percent(static_cast<double>(s.advantage.zero_variance_groups) /
                      static_cast<double>(std::max<std::int64_t>(1, s.advantage.groups))));
  std::printf("  pairs kept (PTS, alpha 0.5)   %lld of %lld (%lld with non-zero weight)\n",
              static_cast<long long>(s.pairs), static_cast<long long>(sizes.rows / 2),
              static_cast<long long>(s.shuffle.nonzero_pairs));
  std::printf("  shuffled batch (ABS)          %lld rounds x %lld pairs = %lld pairs, %lld rows\n",
              static_cast<long long>(s.shuffle.rounds), static_cast<long long>(s.shuffle.per_round),
              static_cast<long long>(s.shuffle.size), static_cast<long long>(2 * s.shuffle.size));
  std::printf("  distinct pairs used           %lld of %lld (%.1f%%)\n",
              static_cast<long long>(s.distinct_pairs_used), static_cast<long long>(s.pairs),
              percent(static_cast<double>(s.distinct_pairs_used) /
                      static_cast<double>(std::max<std::int64_t>(1, s.pairs))));
  std::printf("  pair multiplicity histogram  ");
  for (std::size_t m = 0; m < histogram.size(); ++m)
    std::printf(" %zux:%lld", m, static_cast<long long>(histogram[m]));
  std::printf("\n");
  std::printf(
      "  rows with |A| < 0.1           %.1f%% of all rows, %.1f%% after PTS, %.1f%% of the "
      "training batch\n",
      percent(sr::collapse_ratio(sr::cpu, adv, 0.1)),
      percent(sr::collapse_ratio(sr::cpu, adv, pair_rows, 0.1)),
      percent(sr::collapse_ratio(sr::cpu, adv, train_rows, 0.1)));
  std::printf("  non-zero-gradient rows        %.1f%% of the training batch\n",
              percent(sr::nonzero_gradient_ratio(sr::cpu, adv, train_rows)));
  if (a.be == backend::cuda)
    std::printf(
        "  time (CUDA, %s)  %.1f us of stream time per step (median of %d calls, data on the "
        "device); first call %.1f us, with allocations and copies\n",
        timing.device_name.c_str(), us[repeats / 2], repeats, first_us);
  else
    std::printf(
        "  time (1 CPU thread)           %.1f us per step (median of %d calls); first "
        "call %.1f us, which sizes the workspace\n",
        us[repeats / 2], repeats, first_us);
  return 0;
}

}  // namespace sr1
