// CPU benchmarks (Google Benchmark). Families take (prompts, rollouts); items are batch rows, bytes
// are the bytes a stage must read and write at least. Inputs are built outside the timed loop with
// fixed seeds, outputs and workspaces are allocated before it: the loop times computation only.
//
//   shuffle_r1_bench --benchmark_filter=Pipeline
#include <shuffle_r1/shuffle_r1.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

namespace {

namespace sr = shuffle_r1;

/// 64-byte aligned storage, as PyTorch's CPU allocator and most trainers provide.
template <class T>
struct aligned64 {
  using value_type = T;
  aligned64() = default;
  template <class U>
  aligned64(const aligned64<U>&) noexcept {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{64}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete (p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const aligned64<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const aligned64<U>&) const noexcept {
    return false;
  }
};
template <class T>
using buffer = std::vector<T, aligned64<T>>;

struct batch {
  std::int64_t prompts, rollouts, rows;
  buffer<float> rewards, advantages, weights;
  buffer<std::int64_t> pairs, order, training_rows;
  sr::pipeline_sizes sizes;

  batch(std::int64_t p, std::int64_t n) : prompts(p), rollouts(n), rows(p * n) {
    rewards.resize(static_cast<std::size_t>(rows));
    sr::synthetic_rewards(p, n, 2024, sr::host_span<float>(rewards));
    sizes = sr::plan_pipeline(groups(), rows, config());
    advantages.resize(static_cast<std::size_t>(rows));
    weights.resize(static_cast<std::size_t>(sizes.pairs));
    pairs.resize(static_cast<std::size_t>(2 * sizes.pairs));
    order.resize(static_cast<std::size_t>(sizes.order));
    training_rows.resize(static_cast<std::size_t>(sizes.training_rows));
    sr::normalize_advantages(sr::cpu, rewards, groups(), advantages);
    (void)sr::select_pairs(sr::cpu, advantages, groups(), pairs, weights);
  }
  sr::uniform_groups groups() const { return {prompts, rollouts}; }
  static sr::pipeline_config config() {
    sr::pipeline_config c;  // the paper's defaults; shrink: a batch may lack T non-zero pairs
    c.shuffle.on_short = sr::short_policy::shrink;
    return c;
  }
};

void report(benchmark::State& state, const batch& b, std::int64_t bytes_per_iteration) {
  state.SetItemsProcessed(state.iterations() * b.rows);
  state.SetBytesProcessed(state.iterations() * bytes_per_iteration);
  state.counters["rows"] = static_cast<double>(b.rows);
}

// Baseline: copying the bytes normalization must read and write (B floats in, B floats out).
void BM_Copy_CPU(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  for (auto _ : state) {
    std::memcpy(b.advantages.data(), b.rewards.data(), b.rewards.size() * sizeof(float));
    benchmark::DoNotOptimize(b.advantages.data());
    benchmark::ClobberMemory();
  }
  report(state, b, 2 * b.rows * static_cast<std::int64_t>(sizeof(float)));
}

void BM_Normalize_CPU(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  sr::normalize_workspace ws;
  sr::normalize_advantages(sr::cpu, b.rewards, b.groups(), b.advantages, {}, {}, ws);  // sizes ws
  for (auto _ : state) {
    sr::normalize_advantages(sr::cpu, b.rewards, b.groups(), b.advantages, {}, {}, ws);
    benchmark::DoNotOptimize(b.advantages.data());
    benchmark::ClobberMemory();
  }
  report(state, b, 2 * b.rows * static_cast<std::int64_t>(sizeof(float)));
}

void BM_Pairs_CPU(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        sr::select_pairs(sr::cpu, b.advantages, b.groups(), b.pairs, b.weights));
    benchmark::ClobberMemory();
  }
  report(state, b,
         b.rows * static_cast<std::int64_t>(sizeof(float)) +
             b.sizes.pairs * static_cast<std::int64_t>(2 * sizeof(std::int64_t) + sizeof(float)));
}

void BM_Shuffle_CPU(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  const sr::shuffle_options o = batch::config().shuffle;
  sr::shuffle_workspace ws;
  (void)sr::shuffle_pairs(sr::cpu, b.weights, b.order, o, ws);  // sizes the workspace
  for (auto _ : state) {
    benchmark::DoNotOptimize(sr::shuffle_pairs(sr::cpu, b.weights, b.order, o, ws));
    benchmark::ClobberMemory();
  }
  report(state, b,
         b.sizes.pairs * static_cast<std::int64_t>(sizeof(float)) +
             b.sizes.order * static_cast<std::int64_t>(sizeof(std::int64_t)));
}

void BM_Pipeline_CPU(benchmark::State& state) {
  batch b(state.range(0), state.range(1));
  const sr::pipeline_config c = batch::config();
  sr::pipeline_workspace<float> ws;
  const sr::pipeline_outputs<float> out{b.advantages,    b.pairs, b.weights, b.order,
                                        b.training_rows, {},      {}};
  (void)sr::run_pipeline(sr::cpu, b.rewards, b.groups(), c, ws, out);  // sizes the workspace
  for (auto _ : state) {
    benchmark::DoNotOptimize(sr::run_pipeline(sr::cpu, b.rewards, b.groups(), c, ws, out));
    benchmark::ClobberMemory();
  }
  report(state, b,
         2 * b.rows * static_cast<std::int64_t>(sizeof(float)) +
             b.sizes.pairs * static_cast<std::int64_t>(2 * sizeof(std::int64_t) + sizeof(float)) +
             b.sizes.training_rows * static_cast<std::int64_t>(sizeof(std::int64_t)));
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"prompts", "rollouts"});
  for (const auto& [p, n] : std::vector<std::pair<int, int>>{
           {512, 16}, {512, 8}, {4096, 16}, {65536, 16}, {1048576, 16}})
    b->Args({p, n});
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Copy_CPU)->Apply(sizes);
BENCHMARK(BM_Normalize_CPU)->Apply(sizes);
BENCHMARK(BM_Pairs_CPU)->Apply(sizes);
BENCHMARK(BM_Shuffle_CPU)->Apply(sizes);
BENCHMARK(BM_Pipeline_CPU)->Apply(sizes);

}  // namespace

BENCHMARK_MAIN();
