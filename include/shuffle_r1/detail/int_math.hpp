/// @file detail/int_math.hpp
/// @brief Exact integer helpers shared by the backends: high product, bit widths.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/detail headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <cstdint>

#if defined(_MSC_VER) && !defined(__clang__) && !defined(__CUDACC__)
#include <intrin.h>
#endif

namespace shuffle_r1::detail {

#if defined(__SIZEOF_INT128__) && !SHUFFLE_R1_DEVICE_PASS
__extension__ typedef unsigned __int128 uint128_t;  // __extension__: no -Wpedantic noise
#endif

/// High 64 bits of the 128-bit product a * b.
SHUFFLE_R1_HD inline std::uint64_t mulhi64(std::uint64_t a, std::uint64_t b) noexcept {
#if SHUFFLE_R1_DEVICE_PASS
  return __umul64hi(a, b);
#elif defined(__SIZEOF_INT128__)
  return static_cast<std::uint64_t>((static_cast<uint128_t>(a) * b) >> 64);
#elif defined(_MSC_VER)
  return __umulh(a, b);
#else
  const std::uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32;
  const std::uint64_t b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
  const std::uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
  const std::uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
  return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

/// Number of set bits.
SHUFFLE_R1_HD inline int popcount64(std::uint64_t x) noexcept {
#if SHUFFLE_R1_DEVICE_PASS
  return __popcll(x);
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_popcountll(x);
#else
  int c = 0;
  for (; x; x &= x - 1)
    ++c;
  return c;
#endif
}

/// Smallest g with 2^g >= x (0 for x <= 1).
SHUFFLE_R1_HD constexpr int ceil_log2(std::uint64_t x) noexcept {
  int g = 0;
  while (g < 64 && (std::uint64_t{1} << g) < x)
    ++g;
  return g;
}

/// Smallest power of two >= x, for 1 <= x <= 2^62.
SHUFFLE_R1_HD constexpr std::int64_t bit_ceil64(std::int64_t x) noexcept {
  std::int64_t p = 1;
  while (p < x)
    p <<= 1;
  return p;
}

}  // namespace shuffle_r1::detail
