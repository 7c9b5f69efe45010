/// @file detail/tokens.hpp
/// @brief Validation of response lengths (token counts) of any integer type. Internal.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/detail headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/error.hpp>
#include <shuffle_r1/span.hpp>

#include <cstdint>
#include <limits>
#include <type_traits>

namespace shuffle_r1::detail {

/// Whether a length is not a valid token count: negative, or beyond int64 for unsigned types.
template <class L>
constexpr bool invalid_length(L v) noexcept {
  static_assert(std::is_integral_v<L>, "response lengths must be integers (token counts)");
  if constexpr (std::is_signed_v<L>) {
    return v < 0;
  } else {
    return static_cast<std::uint64_t>(v) >
           static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  }
}

/// Checks every length and returns their sum. @throws error(errc::invalid_argument) naming the
/// first invalid length, error(errc::out_of_range) when the sum exceeds 2^63 - 1.
template <class L>
std::int64_t checked_tokens(const char* fn, host_span<const L> lengths) {
  std::int64_t total = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    if (invalid_length(lengths[i]))
      fail(errc::invalid_argument, fn, "lengths[", i, "] = ", +lengths[i],
           " is not a token count (an integer in [0, 2^63))");
    const auto v = static_cast<std::int64_t>(lengths[i]);
    if (v > std::numeric_limits<std::int64_t>::max() - total)
      fail(errc::out_of_range, fn, "the lengths sum beyond 2^63 tokens (at lengths[", i, "])");
    total += v;
  }
  return total;
}

}  // namespace shuffle_r1::detail
