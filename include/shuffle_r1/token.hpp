/// @file token.hpp
/// @brief Token level: broadcast one advantage per row to every response token of the row, for
/// the padded [N, T] layout with a response mask and for the packed layout with cumulative
/// sequence lengths, written into caller memory.
///
/// This is the step trainers do with `advantages.unsqueeze(-1) * response_mask`; here it reads
/// the mask once and writes the output once, so it runs at memory bandwidth (bench_token.cpp
/// compares it with a memory copy of the same output). Optionally it gathers the rows of the
/// training order on the way (`rows`), so that the advantages need not be gathered first.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/cpu/token.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/span.hpp>

#include <cstdint>
#include <limits>
#include <type_traits>

namespace shuffle_r1 {

namespace detail {
template <class T, class M>
void check_broadcast_types() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "broadcast: values must be float or double");
  static_assert(std::is_arithmetic_v<M>, "broadcast: the mask must be bool, integer or float");
}

template <class T, class M>
void broadcast_padded_checked(const char* fn, host_span<const T> values, const std::int64_t* rows,
                              std::size_t num_rows, host_span<const M> mask, std::int64_t seq_len,
                              host_span<T> out) {
  check_broadcast_types<T, M>();
  if (seq_len < 0) fail(errc::invalid_argument, fn, "seq_len is ", seq_len, ", expected >= 0");
  const std::int64_t N = cpu::validate_broadcast_rows(fn, values, rows, num_rows);
  if (seq_len > 0 && N > std::numeric_limits<std::int64_t>::max() / seq_len)
    fail(errc::out_of_range, fn, N, " rows x seq_len ", seq_len, " overflows");
  const std::int64_t tokens = N * seq_len;
  if (static_cast<std::int64_t>(out.size()) != tokens)
    fail(errc::size_mismatch, fn, "out has ", out.size(), " entries, expected ", N, " x ", seq_len,
         " = ", tokens);
  if (!mask.empty() && static_cast<std::int64_t>(mask.size()) != tokens)
    fail(errc::size_mismatch, fn, "mask has ", mask.size(), " entries, expected ", tokens,
         " (or 0: every token is a response token)");
  cpu::broadcast_padded_kernel(values.data(), rows, N, mask.empty() ? nullptr : mask.data(),
                               seq_len, out.data());
}

template <class T, class I, class M>
void broadcast_packed_checked(const char* fn, host_span<const T> values, const std::int64_t* rows,
                              std::size_t num_rows, host_span<const I> cu_seqlens,
                              host_span<const M> mask, host_span<T> out) {
  check_broadcast_types<T, M>();
  static_assert(std::is_integral_v<I>, "broadcast_packed: cu_seqlens must be integers");
  const std::int64_t N = cpu::validate_broadcast_rows(fn, values, rows, num_rows);
  if (static_cast<std::int64_t>(cu_seqlens.size()) != N + 1)
    fail(errc::size_mismatch, fn, "cu_seqlens has ", cu_seqlens.size(), " entries, expected ",
         N + 1, " (one more than the sequences)");
  if (cu_seqlens[0] != 0)
    fail(errc::invalid_layout, fn, "cu_seqlens[0] is ", static_cast<long long>(cu_seqlens[0]),
         ", expected 0");
  for (std::size_t i = 1; i < cu_seqlens.size(); ++i)
    if (cu_seqlens[i] < cu_seqlens[i - 1])
      fail(errc::invalid_layout, fn, "cu_seqlens[", i,
           "] = ", static_cast<long long>(cu_seqlens[i]), " is less than cu_seqlens[", i - 1,
           "] = ", static_cast<long long>(cu_seqlens[i - 1]));
  const auto tokens = static_cast<long long>(cu_seqlens[cu_seqlens.size() - 1]);
  if (static_cast<long long>(out.size()) != tokens)
    fail(errc::size_mismatch, fn, "out has ", out.size(), " entries, expected cu_seqlens[", N,
         "] = ", tokens);
  if (!mask.empty() && static_cast<long long>(mask.size()) != tokens)
    fail(errc::size_mismatch, fn, "mask has ", mask.size(), " entries, expected ", tokens,
         " (or 0: every token is a response token)");
  cpu::broadcast_packed_kernel(values.data(), rows, N, cu_seqlens.data(),
                               mask.empty() ? nullptr : mask.data(), out.data());
}
}  // namespace detail

/// Padded layout: out[i * seq_len + t] = values[i] where mask[i * seq_len + t] != 0, else 0.
///
/// @param values N finite per-row values (advantages)
/// @param mask N * seq_len response-mask entries (bool, integer or float; non-zero marks a
///        response token), or empty: every token gets its row's value
/// @param seq_len T >= 0, the padded length
/// @param out N * seq_len entries, row-major [N, T]; every entry is written
/// @throws error errc::invalid_argument (seq_len < 0), errc::non_finite (a value is NaN or
///         infinite, named), errc::size_mismatch (out or mask of the wrong size),
///         errc::out_of_range (N * T overflows). Nothing is written on a throw.
/// @par Empty input N = 0 or T = 0 writes nothing.
/// @par Determinism Exact copies of the values (and +0.0 elsewhere).
/// @par Complexity O(N + N T) time, no extra memory: one read of the mask, one write of out.
template <class T, class M>
void broadcast_padded(cpu_policy, host_span<const T> values, host_span<const M> mask,
                      std::int64_t seq_len, host_span<T> out) {
  detail::broadcast_padded_checked("broadcast_padded", values, nullptr, 0, mask, seq_len, out);
}

/// Padded layout with a gather: row i of out takes values[rows[i]] (for example the
/// advantages of the training order of pairs_to_rows), masked as above.
///
/// @param values B finite per-row values
/// @param rows N row indices in [0, B)
/// @param mask N * seq_len entries or empty
/// @param out N * seq_len entries
/// @throws error as the overload without rows, plus errc::invalid_argument (a row outside
///         [0, B), named). Nothing is written on a throw.
/// @par Complexity O(B + N T).
template <class T, class M>
void broadcast_padded(cpu_policy, host_span<const T> values, host_span<const std::int64_t> rows,
                      host_span<const M> mask, std::int64_t seq_len, host_span<T> out) {
  detail::broadcast_padded_checked("broadcast_padded", values, rows.data(), rows.size(), mask,
                                   seq_len, out);
}

/// Packed layout (flash-attention varlen): sequence i occupies out[cu_seqlens[i],
/// cu_seqlens[i + 1]); each of its tokens gets values[i] where mask != 0, else 0.
///
/// @param values N finite per-sequence values
/// @param cu_seqlens N + 1 cumulative lengths (int32 or int64): 0 = cu[0] <= ... <= cu[N] =
///        out.size()
/// @param mask cu[N] entries (non-zero marks a response token, e.g. to skip prompt tokens), or
///        empty
/// @param out cu[N] entries; every entry is written
/// @throws error errc::non_finite (a value, named), errc::size_mismatch (cu_seqlens, mask or
///         out of the wrong size), errc::invalid_layout (cu_seqlens not starting at 0 or
///         decreasing, named). Nothing is written on a throw.
/// @par Empty input N = 0 (cu_seqlens = {0}) writes nothing.
/// @par Determinism Exact copies. @par Complexity O(N + cu[N]), no extra memory.
template <class T, class I, class M>
void broadcast_packed(cpu_policy, host_span<const T> values, host_span<const I> cu_seqlens,
                      host_span<const M> mask, host_span<T> out) {
  detail::broadcast_packed_checked("broadcast_packed", values, nullptr, 0, cu_seqlens, mask, out);
}

/// Packed layout with a gather: sequence i takes values[rows[i]].
/// @param rows N row indices in [0, B); cu_seqlens has N + 1 entries.
/// @throws error as the overload without rows, plus errc::invalid_argument (a row outside
///         [0, B), named). Nothing is written on a throw.
/// @par Complexity O(B + cu[N]).
template <class T, class I, class M>
void broadcast_packed(cpu_policy, host_span<const T> values, host_span<const std::int64_t> rows,
                      host_span<const I> cu_seqlens, host_span<const M> mask, host_span<T> out) {
  detail::broadcast_packed_checked("broadcast_packed", values, rows.data(), rows.size(), cu_seqlens,
                                   mask, out);
}

}  // namespace shuffle_r1
