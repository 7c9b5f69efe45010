/// @file detail/tree_sum.hpp
/// @brief The canonical summation order of shuffle_r1, shared by the CPU and GPU backends.
///
/// Floating-point addition is not associative, so "the sum" of a group's rewards depends on the
/// order. Both backends use this one order, which is the natural order of a warp reduction:
///
/// - n <= 32 values: pad with zeros to P = bit_ceil(n) and reduce by stride halving,
///   v[i] += v[i + h] for h = P/2, P/4, ..., 1; the sum is v[0];
/// - n > 32 values: split into chunks of 32 consecutive values, reduce each chunk as above with
///   P = 32 (the last chunk zero-padded), then sum the chunk results canonically (recursively).
///
/// Pairwise summation also bounds the rounding error by O(log n) ulp instead of O(n).
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/detail headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/detail/det_math.hpp>

#include <cstdint>

namespace shuffle_r1::detail {

/// Chunk width of the canonical sum: one warp.
inline constexpr int sum_chunk = 32;

/// Stride-halving sum of v[0..P), P a power of two <= 32. Reads v only.
template <int P>
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline double tree_sum(const double* v) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  static_assert(P >= 1 && P <= sum_chunk && (P & (P - 1)) == 0, "P must be a power of two");
  if constexpr (P == 1) {
    return v[0];
  } else {
    double t[P / 2];
    for (int i = 0; i < P / 2; ++i)
      t[i] = fp::add(v[i], v[i + P / 2]);
    for (int h = P / 4; h >= 1; h /= 2)
      for (int i = 0; i < h; ++i)
        t[i] = fp::add(t[i], t[i + h]);
    return t[0];
  }
}

/// Stride-halving sum of v[0..P) for a runtime power of two P <= 32.
SHUFFLE_R1_HD inline double tree_sum_dyn(const double* v, int P) noexcept {
  switch (P) {
    case 1:
      return tree_sum<1>(v);
    case 2:
      return tree_sum<2>(v);
    case 4:
      return tree_sum<4>(v);
    case 8:
      return tree_sum<8>(v);
    case 16:
      return tree_sum<16>(v);
    default:
      return tree_sum<32>(v);
  }
}

/// Padded width of a group of n <= 32 values: bit_ceil(n), at least 1.
SHUFFLE_R1_HD constexpr int padded_width(std::int64_t n) noexcept {
  int p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

/// The canonical sum of v[0..n). Host only (the GPU reduces in registers in the same order).
/// @param partials scratch for ceil(n/32) + ceil(n/1024) + ... doubles (n/31 + 2 suffices);
///        unused when n <= 32.
SHUFFLE_R1_STRICT_FP inline double canonical_sum(const double* v, std::int64_t n,
                                                 double* partials) noexcept {
  SHUFFLE_R1_STRICT_FP_BODY
  double pad[sum_chunk];
  if (n <= sum_chunk) {
    const int P = padded_width(n);
    for (int i = 0; i < P; ++i)
      pad[i] = i < n ? v[i] : 0.0;
    return tree_sum_dyn(pad, P);
  }
  const std::int64_t m = (n + sum_chunk - 1) / sum_chunk;
  for (std::int64_t c = 0; c < m; ++c) {
    const double* chunk = v + c * sum_chunk;
    if ((c + 1) * sum_chunk <= n) {
      partials[c] = tree_sum<sum_chunk>(chunk);
    } else {
      const std::int64_t left = n - c * sum_chunk;
      for (int i = 0; i < sum_chunk; ++i)
        pad[i] = i < left ? chunk[i] : 0.0;
      partials[c] = tree_sum<sum_chunk>(pad);
    }
  }
  return canonical_sum(partials, m, partials + m);
}

/// Scratch doubles canonical_sum needs for n values.
constexpr std::int64_t canonical_sum_scratch(std::int64_t n) noexcept {
  std::int64_t total = 0;
  while (n > sum_chunk) {
    n = (n + sum_chunk - 1) / sum_chunk;
    total += n;
  }
  return total;
}

}  // namespace shuffle_r1::detail
