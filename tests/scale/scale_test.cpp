// Scale: the pipeline on 17.6M rows in 1.1M groups of 16 (float), then validate_pipeline on the
// result. Checks 64-bit indexing end to end (row indices beyond 2^24, pair indices beyond 2^22)
// and the workspace's memory against the budget stated in docs/determinism.md (at most 48 bytes
// per row). Exit status 0 only when everything holds.
#include <shuffle_r1/shuffle_r1.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace sr = shuffle_r1;

int main() {
  const std::int64_t G = 1100000, n = 16, B = G * n;
  std::vector<float> rewards(static_cast<std::size_t>(B));
  sr::synthetic_rewards(G, n, 11, sr::host_span<float>(rewards));
  const sr::uniform_groups groups{G, n};
  sr::pipeline_config c;
  c.shuffle.on_short = sr::short_policy::shrink;
  const auto sizes = sr::plan_pipeline(groups, B, c);
  std::vector<float> adv(static_cast<std::size_t>(sizes.rows)),
      w(static_cast<std::size_t>(sizes.pairs));
  std::vector<std::int64_t> pairs(static_cast<std::size_t>(2 * sizes.pairs)),
      order(static_cast<std::size_t>(sizes.order)),
      rows(static_cast<std::size_t>(sizes.training_rows));
  sr::pipeline_workspace<float> ws;
  const sr::pipeline_outputs<float> out{adv, pairs, w, order, rows, {}, {}};
  const auto t0 = std::chrono::steady_clock::now();
  const auto s = sr::run_pipeline(sr::cpu, rewards, groups, c, ws, out);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const sr::validation v = sr::validate_pipeline(groups, c, s, out);
  const double bytes_per_row = static_cast<double>(ws.bytes()) / static_cast<double>(B);
  std::printf(
      "scale: %lld rows, %lld groups, %lld pairs, %lld ordered; %.0f ms; workspace %.1f "
      "MB (%.1f bytes per row); %s\n",
      static_cast<long long>(B), static_cast<long long>(G), static_cast<long long>(s.pairs),
      static_cast<long long>(s.shuffle.size), ms, static_cast<double>(ws.bytes()) / 1e6,
      bytes_per_row, v.ok ? "valid" : v.message.c_str());
  bool ok = v.ok && s.pairs == G * 4 && s.shuffle.size == 8 * (G * 4 / 8) &&
            s.advantage.groups == G && bytes_per_row <= 48.0;
  // The largest row index really is beyond 32-bit float-exact and 2^24: the last group is used.
  std::int64_t max_row = 0;
  for (const std::int64_t r : pairs)
    max_row = r > max_row ? r : max_row;
  ok = ok && max_row >= B - n;
  std::printf("scale: %s (largest paired row %lld)\n", ok ? "ok" : "FAILED",
              static_cast<long long>(max_row));
  return ok ? 0 : 1;
}
