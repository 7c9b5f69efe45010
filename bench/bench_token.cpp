// Token broadcast benchmarks: one advantage per row written to every response token, padded
// [N, T] with a uint8 response mask, or packed with cumulative sequence lengths. The baseline
// is a memory copy of the output's bytes (what `out.copy_(src)` costs for the same tensor).
// Buffers are allocated and touched before the timed loop; the loop allocates nothing.
//
//   shuffle_r1_bench --benchmark_filter=Broadcast
#include <shuffle_r1/shuffle_r1.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

namespace sr = shuffle_r1;

/// A padded batch: N rows of T token slots, each row's response a prefix of random length.
struct padded_batch {
  std::int64_t rows, seq_len;
  std::vector<float> adv, out, src;
  std::vector<std::uint8_t> mask;

  padded_batch(std::int64_t n, std::int64_t t)
      : rows(n),
        seq_len(t),
        adv(static_cast<std::size_t>(n)),
        out(static_cast<std::size_t>(n * t), 1.0f),
        src(static_cast<std::size_t>(n * t), 2.0f),
        mask(static_cast<std::size_t>(n * t), 0) {
    for (std::int64_t i = 0; i < n; ++i) {
      const sr::philox_block b = sr::philox4x32_10({{static_cast<std::uint32_t>(i), 0, 0, 7}},
                                                   sr::philox_key_from_seed(2024));
      adv[static_cast<std::size_t>(i)] = static_cast<float>(b.v[0] % 200) / 100.0f - 1.0f;
      const std::int64_t len =
          1 + static_cast<std::int64_t>(b.v[1] % static_cast<std::uint32_t>(t));
      std::memset(mask.data() + i * t, 1, static_cast<std::size_t>(len));
    }
  }
  std::int64_t tokens() const { return rows * seq_len; }
};

/// A packed batch of N sequences with random lengths in [1, 2T): about N * T tokens.
struct packed_batch {
  std::vector<float> adv, out;
  std::vector<std::int64_t> cu;

  packed_batch(std::int64_t n, std::int64_t t)
      : adv(static_cast<std::size_t>(n)), cu(static_cast<std::size_t>(n + 1), 0) {
    for (std::int64_t i = 0; i < n; ++i) {
      const sr::philox_block b = sr::philox4x32_10({{static_cast<std::uint32_t>(i), 1, 0, 7}},
                                                   sr::philox_key_from_seed(2024));
      adv[static_cast<std::size_t>(i)] = static_cast<float>(b.v[0] % 200) / 100.0f - 1.0f;
      cu[static_cast<std::size_t>(i + 1)] =
          cu[static_cast<std::size_t>(i)] + 1 + static_cast<std::int64_t>(b.v[1] % (2 * t - 1));
    }
    out.assign(static_cast<std::size_t>(cu.back()), 1.0f);
  }
};

void counters(benchmark::State& state, std::int64_t tokens, std::int64_t bytes) {
  state.SetItemsProcessed(state.iterations() * tokens);
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["tokens"] = static_cast<double>(tokens);
}

// Baseline: copy N * T floats (read and write the output's bytes once each).
void BM_Broadcast_Copy_CPU(benchmark::State& state) {
  padded_batch b(state.range(0), state.range(1));
  for (auto _ : state) {
    std::memcpy(b.out.data(), b.src.data(), b.out.size() * sizeof(float));
    benchmark::DoNotOptimize(b.out.data());
    benchmark::ClobberMemory();
  }
  counters(state, b.tokens(), 2 * b.tokens() * static_cast<std::int64_t>(sizeof(float)));
}

// Padded [N, T] with a uint8 response mask: reads the mask, writes every output entry.
void BM_Broadcast_Padded_CPU(benchmark::State& state) {
  padded_batch b(state.range(0), state.range(1));
  const sr::host_span<const float> adv(b.adv);
  const sr::host_span<const std::uint8_t> mask(b.mask);
  const sr::host_span<float> out(b.out);
  for (auto _ : state) {
    sr::broadcast_padded(sr::cpu, adv, mask, b.seq_len, out);
    benchmark::DoNotOptimize(b.out.data());
    benchmark::ClobberMemory();
  }
  counters(state, b.tokens(),
           b.tokens() * static_cast<std::int64_t>(sizeof(float) + sizeof(std::uint8_t)) +
               b.rows * static_cast<std::int64_t>(sizeof(float)));
}

// Packed (cu_seqlens, no mask): writes every token of every sequence.
void BM_Broadcast_Packed_CPU(benchmark::State& state) {
  packed_batch b(state.range(0), state.range(1));
  const sr::host_span<const float> adv(b.adv);
  const sr::host_span<const std::int64_t> cu(b.cu);
  const sr::host_span<float> out(b.out);
  for (auto _ : state) {
    sr::broadcast_packed(sr::cpu, adv, cu, sr::host_span<const bool>(), out);
    benchmark::DoNotOptimize(b.out.data());
    benchmark::ClobberMemory();
  }
  const auto tokens = static_cast<std::int64_t>(b.out.size());
  counters(state, tokens,
           tokens * static_cast<std::int64_t>(sizeof(float)) +
               static_cast<std::int64_t>(b.adv.size() * (sizeof(float) + sizeof(std::int64_t))));
}

void token_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rows", "seq_len"});
  // 512 prompts x 16 responses of up to 512 / 2048 tokens; the ABS training batch (4096 rows)
  // of 8192-token responses.
  for (const auto& [n, t] :
       std::vector<std::pair<int, int>>{{8192, 512}, {8192, 2048}, {4096, 8192}})
    b->Args({n, t});
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Broadcast_Copy_CPU)->Apply(token_sizes);
BENCHMARK(BM_Broadcast_Padded_CPU)->Apply(token_sizes);
BENCHMARK(BM_Broadcast_Packed_CPU)->Apply(token_sizes);

}  // namespace
