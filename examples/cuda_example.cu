// A trainer's view of the CUDA backend: rewards already on the GPU in, training row indices out,
// without leaving the GPU, without synchronizing and without allocating per step, captured once
// into a CUDA graph and replayed every step. The CPU backend computes the same selection, bit for
// bit; the example checks that too. Without a GPU it says so and exits 0.
#include <shuffle_r1/cuda.cuh>
#include <shuffle_r1/synthetic.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

namespace sr = shuffle_r1;

namespace {

/// One trainer step's worth of selection on `stream`; returns whether CPU and GPU agree.
bool run(cudaStream_t stream) {
  constexpr std::int64_t prompts = 512, rollouts = 16, rows = prompts * rollouts;
  const sr::uniform_groups groups{prompts, rollouts};

  // The Shuffle-R1 defaults (GRPO, keep half the pairs, 8 rounds of K/8), seeded per step.
  sr::pipeline_config config;
  config.shuffle.seed = 1234;
  config.shuffle.on_short = sr::short_policy::shrink;

  const sr::cuda_policy policy = sr::cuda_on(stream);

  // Once: outputs and workspace, sized by the plan and the workspace query.
  const sr::pipeline_sizes n = sr::plan_pipeline(groups, rows, config);
  sr::device_buffer<float> rewards(rows, policy), advantages(rows, policy);
  sr::device_buffer<std::int64_t> training_rows(static_cast<std::size_t>(n.training_rows), policy);
  sr::device_buffer<std::byte> workspace(
      sr::pipeline_workspace_size<float>(policy, groups, rows, config), policy);
  const sr::device_pipeline_outputs<float> out{advantages.span(),    {}, {}, {},
                                               training_rows.span(), {}, {}};

  // Each step: the trainer's rewards land in `rewards` (here: synthetic ones, copied in).
  std::vector<float> host(rows);
  sr::synthetic_rewards(prompts, rollouts, 7, sr::host_span<float>(host));
  sr::copy_to_device<float>(policy, host, rewards.span());

  // Capture the pipeline once (after one eager run, which loads the kernels)...
  sr::run_pipeline(policy, rewards.cspan(), groups, config, workspace.span(), out);
  (void)sr::pipeline_result(policy, workspace.cspan());
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal);
  sr::run_pipeline(policy, rewards.cspan(), groups, config, workspace.span(), out);
  cudaStreamEndCapture(stream, &graph);
  cudaGraphInstantiate(&exec, graph, 0);

  // ...and replay it: a production trainer would launch the graph every step, read the training
  // rows on the GPU (index_select) and check pipeline_result only now and then.
  cudaGraphLaunch(exec, stream);
  const sr::pipeline_summary s = sr::pipeline_result(policy, workspace.cspan());
  const std::vector<std::int64_t> gpu_rows = sr::copy_to_host(policy, training_rows.cspan());

  // The CPU backend gives the same rows.
  std::vector<float> cpu_adv(rows);
  std::vector<std::int64_t> cpu_rows(n.training_rows);
  sr::pipeline_workspace<float> cpu_ws;
  (void)sr::run_pipeline(sr::cpu, host, groups, config, cpu_ws,
                         sr::pipeline_outputs<float>{cpu_adv, {}, {}, {}, cpu_rows, {}, {}});
  bool same = true;
  for (std::int64_t i = 0; i < 2 * s.shuffle.size; ++i)
    same = same && gpu_rows[i] == cpu_rows[i];

  std::printf("%lld kept pairs, %lld rounds of %lld, %lld distinct pairs used\n",
              static_cast<long long>(s.pairs), static_cast<long long>(s.shuffle.rounds),
              static_cast<long long>(s.shuffle.per_round),
              static_cast<long long>(s.distinct_pairs_used));
  std::printf("first training rows:");
  for (int i = 0; i < 8 && i < 2 * s.shuffle.size; ++i)
    std::printf(" %lld", static_cast<long long>(gpu_rows[static_cast<std::size_t>(i)]));
  std::printf("\nCPU and GPU rows identical: %s\n", same ? "yes" : "NO");
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return same;
}

}  // namespace

int main() {
  if (!sr::cuda_device_available()) {
    std::printf("cuda_example: no CUDA device available\n");
    return 0;
  }
  cudaStream_t stream = nullptr;
  if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) return 1;
  const bool same = run(stream);  // its buffers are freed on the stream before it goes
  cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  return same ? 0 : 1;
}
