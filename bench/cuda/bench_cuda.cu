// CUDA benchmarks (Google Benchmark), the GPU counterparts of bench/bench_cpu.cpp: same families,
// same (prompts, rollouts) arguments, same synthetic batches (seed 2024), items are batch rows
// and bytes the bytes a stage must read and write at least. Every family is timed with CUDA
// events on its stream and reported as manual time: the single-stage calls include their one
// synchronization and status read-back (what a caller waits for); BM_Pipeline_CUDA times the
// stream-ordered run_pipeline with a workspace, BM_Pipeline_CUDA_Graph its replay as a CUDA
// graph. BM_Copy_CUDA copies the bytes normalization reads and writes (device to device): the
// memory-bandwidth limit the normalization target is measured against.
//
//   shuffle_r1_cuda_bench --benchmark_filter=Pipeline
#include <shuffle_r1/cuda.cuh>
#include <shuffle_r1/synthetic.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <utility>
#include <vector>

namespace {

namespace sr = shuffle_r1;

void cuda_ok(cudaError_t e) {
  if (e != cudaSuccess) throw std::runtime_error(cudaGetErrorString(e));
}

/// A stream and two events; times one enqueued piece of work in seconds of stream time.
struct timer {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  timer() {
    cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cuda_ok(cudaEventCreate(&start));
    cuda_ok(cudaEventCreate(&stop));
  }
  ~timer() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamDestroy(stream);
  }
  template <class F>
  double seconds(F&& work) {
    cuda_ok(cudaEventRecord(start, stream));
    work();
    cuda_ok(cudaEventRecord(stop, stream));
    cuda_ok(cudaEventSynchronize(stop));
    float ms = 0;
    cuda_ok(cudaEventElapsedTime(&ms, start, stop));
    return static_cast<double>(ms) * 1e-3;
  }
};

/// The batch of bench_cpu.cpp, on the device, with the advantages and pairs computed once.
struct batch {
  std::int64_t prompts, rollouts, rows;
  timer t;
  sr::cuda_policy policy;
  sr::pipeline_sizes sizes;
  sr::device_buffer<float> rewards, advantages, weights;
  sr::device_buffer<std::int64_t> pairs, order, training_rows;

  batch(std::int64_t p, std::int64_t n) : prompts(p), rollouts(n), rows(p * n) {
    policy = sr::cuda_on(t.stream);
    std::vector<float> host(static_cast<std::size_t>(rows));
    sr::synthetic_rewards(p, n, 2024, sr::host_span<float>(host));
    sizes = sr::plan_pipeline(groups(), rows, config());
    rewards = sr::device_buffer<float>(host.size(), policy);
    sr::copy_to_device<float>(policy, host, rewards.span());
    advantages = sr::device_buffer<float>(host.size(), policy);
    weights = sr::device_buffer<float>(static_cast<std::size_t>(sizes.pairs), policy);
    pairs = sr::device_buffer<std::int64_t>(static_cast<std::size_t>(2 * sizes.pairs), policy);
    order = sr::device_buffer<std::int64_t>(static_cast<std::size_t>(sizes.order), policy);
    training_rows =
        sr::device_buffer<std::int64_t>(static_cast<std::size_t>(sizes.training_rows), policy);
    (void)sr::normalize_advantages(policy, rewards.cspan(), groups(), advantages.span());
    (void)sr::select_pairs(policy, advantages.cspan(), groups(), pairs.span(), weights.span());
  }
  sr::uniform_groups groups() const { return {prompts, rollouts}; }
  static sr::pipeline_config config() {
    sr::pipeline_config c;  // the paper's defaults; shrink: a batch may lack T non-zero pairs
    c.shuffle.on_short = sr::short_policy::shrink;
    return c;
  }
  sr::device_pipeline_outputs<float> outputs() {
    return {advantages.span(),
            pairs.span(),
            weights.span(),
            order.span(),
            training_rows.span(),
            {},
            {}};
  }
};

void report(benchmark::State& state, const batch& b, std::int64_t bytes_per_iteration) {
  state.SetItemsProcessed(state.iterations() * b.rows);
  state.SetBytesProcessed(state.iterations() * bytes_per_iteration);
  state.counters["rows"] = static_cast<double>(b.rows);
}

constexpr std::int64_t f32 = sizeof(float), i64 = sizeof(std::int64_t);

void BM_Copy_CUDA(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  for (auto _ : state) {
    state.SetIterationTime(b.t.seconds([&] {
      cuda_ok(cudaMemcpyAsync(b.advantages.data(), b.rewards.data(),
                              static_cast<std::size_t>(b.rows) * sizeof(float),
                              cudaMemcpyDeviceToDevice, b.t.stream));
    }));
  }
  report(state, b, 2 * b.rows * f32);
}

void BM_Normalize_CUDA(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  for (auto _ : state) {
    state.SetIterationTime(b.t.seconds([&] {
      benchmark::DoNotOptimize(
          sr::normalize_advantages(b.policy, b.rewards.cspan(), b.groups(), b.advantages.span()));
    }));
  }
  report(state, b, 2 * b.rows * f32);
}

void BM_Pairs_CUDA(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  for (auto _ : state) {
    state.SetIterationTime(b.t.seconds([&] {
      benchmark::DoNotOptimize(sr::select_pairs(b.policy, b.advantages.cspan(), b.groups(),
                                                b.pairs.span(), b.weights.span()));
    }));
  }
  report(state, b, b.rows * f32 + b.sizes.pairs * (2 * i64 + f32));
}

void BM_Shuffle_CUDA(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  const sr::shuffle_options o = batch::config().shuffle;
  for (auto _ : state) {
    state.SetIterationTime(b.t.seconds([&] {
      benchmark::DoNotOptimize(sr::shuffle_pairs(b.policy, b.weights.cspan(), b.order.span(), o));
    }));
  }
  report(state, b, b.sizes.pairs * f32 + b.sizes.order * i64);
}

std::int64_t pipeline_bytes(const batch& b) {
  return 2 * b.rows * f32 + b.sizes.pairs * (2 * i64 + f32) + b.sizes.training_rows * i64;
}

void BM_Pipeline_CUDA(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  const sr::pipeline_config c = batch::config();
  sr::device_buffer<std::byte> ws(
      sr::pipeline_workspace_size<float>(b.policy, b.groups(), b.rows, c), b.policy);
  const auto out = b.outputs();
  sr::run_pipeline(b.policy, b.rewards.cspan(), b.groups(), c, ws.span(), out);  // warm-up
  (void)sr::pipeline_result(b.policy, ws.cspan());
  for (auto _ : state) {
    state.SetIterationTime(b.t.seconds(
        [&] { sr::run_pipeline(b.policy, b.rewards.cspan(), b.groups(), c, ws.span(), out); }));
  }
  benchmark::DoNotOptimize(sr::pipeline_result(b.policy, ws.cspan()));
  report(state, b, pipeline_bytes(b));
}

void BM_Pipeline_CUDA_Graph(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  const sr::pipeline_config c = batch::config();
  sr::device_buffer<std::byte> ws(
      sr::pipeline_workspace_size<float>(b.policy, b.groups(), b.rows, c), b.policy);
  const auto out = b.outputs();
  sr::run_pipeline(b.policy, b.rewards.cspan(), b.groups(), c, ws.span(), out);  // warm-up
  (void)sr::pipeline_result(b.policy, ws.cspan());
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cuda_ok(cudaStreamBeginCapture(b.t.stream, cudaStreamCaptureModeGlobal));
  sr::run_pipeline(b.policy, b.rewards.cspan(), b.groups(), c, ws.span(), out);
  cuda_ok(cudaStreamEndCapture(b.t.stream, &graph));
  cuda_ok(cudaGraphInstantiate(&exec, graph, 0));
  for (auto _ : state)
    state.SetIterationTime(b.t.seconds([&] { cuda_ok(cudaGraphLaunch(exec, b.t.stream)); }));
  benchmark::DoNotOptimize(sr::pipeline_result(b.policy, ws.cspan()));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  report(state, b, pipeline_bytes(b));
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"prompts", "rollouts"});
  for (const auto& [p, n] : std::vector<std::pair<int, int>>{
           {512, 16}, {512, 8}, {4096, 16}, {65536, 16}, {1048576, 16}})
    b->Args({p, n});
  b->Unit(benchmark::kMicrosecond);
  b->UseManualTime();
}

BENCHMARK(BM_Copy_CUDA)->Apply(sizes);
BENCHMARK(BM_Normalize_CUDA)->Apply(sizes);
BENCHMARK(BM_Pairs_CUDA)->Apply(sizes);
BENCHMARK(BM_Shuffle_CUDA)->Apply(sizes);
BENCHMARK(BM_Pipeline_CUDA)->Apply(sizes);
BENCHMARK(BM_Pipeline_CUDA_Graph)->Apply(sizes);

}  // namespace

int main(int argc, char** argv) {
  if (!sr::cuda_device_available()) {
    std::printf("shuffle_r1_cuda_bench: no CUDA device available, nothing to measure\n");
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
