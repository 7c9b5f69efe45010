/// @file cpu/token.hpp
/// @brief CPU implementation of the token broadcast. Internal: include <shuffle_r1/token.hpp>.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/cpu/pairs.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/span.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace shuffle_r1::detail::cpu {

/// Checks an optional gather list and the values it reads; returns the number of output rows.
template <class T>
inline std::int64_t validate_broadcast_rows(const char* fn, host_span<const T> values,
                                            const std::int64_t* rows, std::size_t num_rows) {
  if (rows) {
    for (std::size_t i = 0; i < num_rows; ++i)
      if (rows[i] < 0 || static_cast<std::size_t>(rows[i]) >= values.size())
        fail(errc::invalid_argument, fn, "rows[", i, "] = ", rows[i], " is outside [0, ",
             values.size(), ")");
  }
  validate_finite(fn, "values", values);
  return static_cast<std::int64_t>(rows ? num_rows : values.size());
}

/// One row: out[t] = mask[t] != 0 ? v : 0 (or v everywhere without a mask). Written as a
/// select over contiguous memory so that the compiler vectorizes it (compare and mask).
template <class T, class M>
inline void broadcast_span(T v, const M* mask, T* out, std::int64_t n) noexcept {
  if (!mask) {
    std::fill(out, out + n, v);
    return;
  }
  for (std::int64_t t = 0; t < n; ++t)
    out[t] = mask[t] != M(0) ? v : T(0);
}

/// Padded [N, seq_len]: row i of out takes values[rows ? rows[i] : i].
template <class T, class M>
inline void broadcast_padded_kernel(const T* values, const std::int64_t* rows, std::int64_t N,
                                    const M* mask, std::int64_t seq_len, T* out) noexcept {
  for (std::int64_t i = 0; i < N; ++i) {
    const T v = values[rows ? rows[i] : i];
    const std::int64_t at = i * seq_len;
    broadcast_span(v, mask ? mask + at : nullptr, out + at, seq_len);
  }
}

/// Packed: sequence i covers out[cu[i], cu[i+1]).
template <class T, class I, class M>
inline void broadcast_packed_kernel(const T* values, const std::int64_t* rows, std::int64_t N,
                                    const I* cu, const M* mask, T* out) noexcept {
  for (std::int64_t i = 0; i < N; ++i) {
    const T v = values[rows ? rows[i] : i];
    const auto begin = static_cast<std::int64_t>(cu[i]), end = static_cast<std::int64_t>(cu[i + 1]);
    broadcast_span(v, mask ? mask + begin : nullptr, out + begin, end - begin);
  }
}

}  // namespace shuffle_r1::detail::cpu
