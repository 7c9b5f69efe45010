/// @file random.hpp
/// @brief Counter-based Philox4x32-10: every random word is a pure function of its coordinates.
///
/// There is no generator state anywhere in shuffle_r1. A draw is identified by a 128-bit counter
/// and a 64-bit key; the library puts the seed in the key and (step, round, phase, stream, draw)
/// in the counter (see docs/design.md, "Randomness"), so any call can be replayed and the CPU and
/// GPU backends see the same words. The implementation is checked against the known-answer
/// vectors of the Philox paper (Salmon et al., SC'11) in tests/test_random.cpp.
#pragma once

#include <shuffle_r1/config.hpp>

#include <cstdint>

namespace shuffle_r1 {

/// Four 32-bit words: a Philox counter or a Philox output block.
struct philox_block {
  std::uint32_t v[4];
};

/// Two 32-bit words: a Philox key.
struct philox_key {
  std::uint32_t v[2];
};

namespace detail {
inline constexpr std::uint32_t philox_m0 = 0xD2511F53u;
inline constexpr std::uint32_t philox_m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u;  // golden ratio
inline constexpr std::uint32_t philox_w1 = 0xBB67AE85u;  // sqrt(3) - 1
}  // namespace detail

/// Philox4x32 with 10 rounds: the bijection `counter -> block` selected by `key`.
///
/// @par Determinism Integer arithmetic only: bit-identical on every platform and backend.
/// @par Complexity O(1): 20 32x32->64-bit multiplications. Never throws.
SHUFFLE_R1_HD constexpr philox_block philox4x32_10(philox_block counter, philox_key key) noexcept {
  std::uint32_t c0 = counter.v[0], c1 = counter.v[1], c2 = counter.v[2], c3 = counter.v[3];
  std::uint32_t k0 = key.v[0], k1 = key.v[1];
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(detail::philox_m0) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(detail::philox_m1) * c2;
    const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const std::uint32_t n1 = static_cast<std::uint32_t>(p1);
    const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const std::uint32_t n3 = static_cast<std::uint32_t>(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += detail::philox_w0;
    k1 += detail::philox_w1;
  }
  return philox_block{{c0, c1, c2, c3}};
}

/// The key for a 64-bit seed: low word first.
SHUFFLE_R1_HD constexpr philox_key philox_key_from_seed(std::uint64_t seed) noexcept {
  return philox_key{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
}

/// Joins two 32-bit words into 64 bits, `lo` in the low half.
SHUFFLE_R1_HD constexpr std::uint64_t join64(std::uint32_t lo, std::uint32_t hi) noexcept {
  return static_cast<std::uint64_t>(lo) | (static_cast<std::uint64_t>(hi) << 32);
}

/// A double uniform on [0, 1) from the top 53 bits of `bits`: exact, no rounding.
SHUFFLE_R1_HD constexpr double uniform01(std::uint64_t bits) noexcept {
  return static_cast<double>(bits >> 11) * 0x1p-53;
}

}  // namespace shuffle_r1
