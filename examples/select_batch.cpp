// A framework author's view of shuffle_r1: rewards in, training row indices out.
//
// A GRPO-style trainer has B = prompts * rollouts rewards in its own memory (a tensor, a numpy
// array, a std::vector). It hands shuffle_r1 views of that memory and gets back, in memory it
// owns: the advantages, the kept (hi, lo) pairs and the rows of the training batch in the order
// mini-batches should be cut. Nothing here allocates after the first step.
#include <shuffle_r1/shuffle_r1.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

int main() {
  namespace sr = shuffle_r1;
  constexpr std::int64_t prompts = 4, rollouts = 8;

  // Rewards of 4 prompts x 8 responses, prompt-major (the uniform layout of TRL / OpenRLHF).
  const std::vector<float> rewards = {
      1,    1,    0,    0,    0,    1,    0,    0,     // prompt 0: 3 of 8 correct
      0.9f, 0.2f, 0.5f, 0.5f, 0.1f, 0.7f, 0.3f, 0.8f,  // prompt 1: graded rewards
      1,    1,    1,    1,    1,    1,    1,    1,     // prompt 2: all correct -> zero advantages
      1,    0,    0,    0,    0,    0,    0,    0};    // prompt 3: one correct
  const sr::uniform_groups groups{prompts, rollouts};

  // The Shuffle-R1 defaults: GRPO advantages, keep half the pairs, 8 rounds. Small batch: draw
  // 4 pairs per round in 2 rounds instead.
  sr::pipeline_config config;
  config.shuffle.rounds = 2;
  config.shuffle.per_round = 4;
  config.shuffle.seed = 1234;
  config.shuffle.step = 0;  // pass the trainer's global step: each step gets its own shuffle
  config.shuffle.on_short = sr::short_policy::shrink;  // prompt 2 contributes zero-weight pairs

  // Size the caller-owned outputs once.
  const sr::pipeline_sizes n = sr::plan_pipeline(groups, prompts * rollouts, config);
  std::vector<float> advantages(n.rows), weights(n.pairs);
  std::vector<std::int64_t> pairs(2 * n.pairs), order(n.order), rows(n.training_rows);
  sr::pipeline_workspace<float> workspace;  // keep it across training steps

  const sr::pipeline_summary s = sr::run_pipeline(
      sr::cpu, rewards, groups, config, workspace,
      sr::pipeline_outputs<float>{advantages, pairs, weights, order, rows, {}, {}});

  std::printf("advantages of prompt 0:");
  for (int i = 0; i < rollouts; ++i)
    std::printf(" %+.4f", advantages[i]);
  std::printf("\nkept pairs (hi, lo) and weights:\n");
  for (std::int64_t k = 0; k < s.pairs; ++k)
    std::printf("  pair %lld: rows (%lld, %lld) weight %.4f\n", static_cast<long long>(k),
                static_cast<long long>(pairs[2 * k]), static_cast<long long>(pairs[2 * k + 1]),
                weights[k]);
  std::printf(
      "training rows (%lld rounds of %lld pairs):", static_cast<long long>(s.shuffle.rounds),
      static_cast<long long>(s.shuffle.per_round));
  for (std::int64_t i = 0; i < 2 * s.shuffle.size; ++i)
    std::printf(" %lld", static_cast<long long>(rows[i]));
  std::printf("\n");
  // Hand `rows` to the trainer: gather those rows of the rollout batch (index_select) and cut
  // mini-batches in this order.
  return 0;
}
