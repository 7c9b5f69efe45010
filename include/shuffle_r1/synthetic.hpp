/// @file synthetic.hpp
/// @brief Realistic synthetic reward batches for demos, benchmarks and experiments.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/random.hpp>
#include <shuffle_r1/span.hpp>

#include <cstdint>

namespace shuffle_r1 {

/// Fills `rewards` (prompts * rollouts values, prompt-major) with rule-based rewards of the kind
/// the Shuffle-R1 paper trains on: reward = 0.9 * correct + 0.1 * well_formatted.
///
/// Each prompt has a difficulty: a fifth of the prompts are solved with probability 0.97, a fifth
/// with probability 0.03 (these produce most zero-variance groups), the rest with a probability
/// uniform on (0, 1); a response is well formatted with probability 0.9.
///
/// @throws error(errc::size_mismatch) when rewards.size() != prompts * rollouts, and
///         error(errc::invalid_argument) for negative counts. Nothing is written then.
/// @par Determinism A pure function of (prompts, rollouts, seed): Philox of (seed, row).
/// @par Complexity O(prompts * rollouts).
template <class T>
SHUFFLE_R1_STRICT_FP void synthetic_rewards(std::int64_t prompts, std::int64_t rollouts,
                                            std::uint64_t seed, host_span<T> rewards) {
  SHUFFLE_R1_STRICT_FP_BODY
  constexpr const char* fn = "synthetic_rewards";
  if (prompts < 0 || rollouts < 0)
    detail::fail(errc::invalid_argument, fn, "prompts = ", prompts, " and rollouts = ", rollouts,
                 " must be >= 0");
  if (static_cast<std::int64_t>(rewards.size()) != prompts * rollouts)
    detail::fail(errc::size_mismatch, fn, "rewards has ", rewards.size(), " elements, expected ",
                 prompts * rollouts);
  const philox_key key = philox_key_from_seed(seed);
  const auto lo = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
  const auto hi = [](std::int64_t v) { return static_cast<std::uint32_t>(v >> 32); };
  for (std::int64_t g = 0; g < prompts; ++g) {
    const philox_block d = philox4x32_10({{lo(g), hi(g), 0u, 0xD1FFu}}, key);
    const double kind = uniform01(join64(d.v[0], d.v[1]));
    const double spread = uniform01(join64(d.v[2], d.v[3]));
    const double p = kind < 0.2 ? 0.97 : kind < 0.4 ? 0.03 : spread;
    for (std::int64_t i = 0; i < rollouts; ++i) {
      const std::int64_t row = g * rollouts + i;
      const philox_block r = philox4x32_10({{lo(row), hi(row), 1u, 0xD1FFu}}, key);
      const bool correct = uniform01(join64(r.v[0], r.v[1])) < p;
      const bool formatted = uniform01(join64(r.v[2], r.v[3])) < 0.9;
      rewards[static_cast<std::size_t>(row)] =
          static_cast<T>(0.9 * static_cast<double>(correct) + 0.1 * static_cast<double>(formatted));
    }
  }
}

}  // namespace shuffle_r1
