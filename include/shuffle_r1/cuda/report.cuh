/// @file cuda/report.cuh
/// @brief Turning a device-side status into the CPU backend's exception: the device fills in
/// the values the message needs (describe), the host formats the same text the CPU backend
/// would. Internal: include <shuffle_r1/cuda.cuh>.
#pragma once

#ifndef SHUFFLE_R1_CUDA_INCLUDED
#error "shuffle_r1/cuda headers are internal: include <shuffle_r1/cuda.cuh>"
#endif

#include <shuffle_r1/advantage.hpp>
#include <shuffle_r1/cuda/layout.cuh>
#include <shuffle_r1/cuda/runtime.cuh>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/detail/sampler.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/types.hpp>

#include <cstdint>

namespace shuffle_r1::detail::gpu {

/// What describe reads to complete a failed check's message.
struct describe_inputs {
  const void* values = nullptr;  ///< rewards, advantages or weights (the call's value input)
  bool values_double = false;
  dev_layout layout;
  const std::int64_t* order = nullptr;  ///< pairs_to_rows
};

/// Fills st->info / st->value for the recorded check. One thread, after the checks.
__device__ inline void describe(const describe_inputs& in, device_status* st) {
  if (st->error == 0) return;
  const unsigned long long key = ~st->error;
  const auto c = static_cast<check_id>(key >> 48);
  const auto idx = static_cast<std::int64_t>(key & 0xFFFFFFFFFFFFull);
  const dev_layout& L = in.layout;
  const auto value_at = [&](std::int64_t i) {
    return in.values_double ? static_cast<const double*>(in.values)[i]
                            : static_cast<double>(static_cast<const float*>(in.values)[i]);
  };
  switch (c) {
    case check_id::offsets: {
      const std::int64_t G = L.groups;
      if (idx == 0 || idx == G + 1) {
        st->info[0] = L.offsets[idx == 0 ? 0 : G];
      } else {
        st->info[0] = L.offsets[idx];
        st->info[1] = L.offsets[idx - 1];
      }
      break;
    }
    case check_id::rows: {
      const std::int64_t k = idx / 4;
      st->info[0] = L.rows[k];
      if (idx % 4 == 1) st->info[1] = group_of(L.offsets, L.groups, k);
      break;
    }
    case check_id::reward_nonfinite:
    case check_id::reward_limit:
    case check_id::advantage_nonfinite:
    case check_id::weight_bad:
      st->value = value_at(idx);
      break;
    case check_id::singleton:
      st->info[0] = L.row(L.begin(idx));
      break;
    case check_id::singleton_range:
      st->info[0] = L.row(L.begin(idx));
      st->value = value_at(st->info[0]);
      break;
    case check_id::pair_group:
      st->info[0] = L.size(idx / 2);
      st->info[1] = L.row(L.begin(idx / 2));
      break;
    case check_id::order_range:
      st->info[0] = in.order[idx];
      break;
    default:
      break;
  }
}

/// describe as a kernel (single-stage calls). One thread.
template <int = 0>
__global__ void describe_kernel(describe_inputs in, device_status* st) {
  describe(in, st);
}

/// Enqueues describe_kernel. @throws cuda_error.
inline void launch_describe(const char* fn, cudaStream_t stream, const describe_inputs& in,
                            device_status* st) {
  describe_kernel<><<<1, 1, 0, stream>>>(in, st);
  check_launch(fn);
}

/// Records one check from the host's stream (a failure known before any data is read, but
/// reported in the CPU's order). One thread.
template <int = 0>
__global__ void record_kernel(device_status* st, check_id c, unsigned long long index) {
  record(st, c, index);
}

inline const char* non_finite_kind(double v) noexcept {
  return v != v ? "NaN" : (v > 0 ? "+inf" : "-inf");
}

/// Throws the CPU backend's exception for a recorded check. `pipeline`: run_pipeline's wording
/// of output sizes. @pre s.error != 0.
[[noreturn]] inline void raise(const char* fn, const device_status& s, bool pipeline) {
  const unsigned long long key = ~s.error;
  const auto c = static_cast<check_id>(key >> 48);
  const auto idx = static_cast<std::int64_t>(key & 0xFFFFFFFFFFFFull);
  const status_context& ctx = s.ctx;
  const std::int64_t K = s.pairs;
  const std::int64_t T_req =
      ctx.per_round < 0 ? (ctx.rounds > 0 ? K / ctx.rounds : 0) : ctx.per_round;
  switch (c) {
    case check_id::offsets:
      if (idx == 0)
        fail(errc::invalid_layout, fn, "groups.offsets[0] is ", s.info[0], ", expected 0");
      if (idx == s.groups + 1)
        fail(errc::invalid_layout, fn, "groups.offsets[", s.groups, "] is ", s.info[0],
             ", expected the number of rows ", ctx.rows);
      fail(errc::invalid_layout, fn, "groups.offsets[", idx, "] = ", s.info[0],
           " is less than groups.offsets[", idx - 1, "] = ", s.info[1]);
    case check_id::rows: {
      const std::int64_t k = idx / 4;
      if (idx % 4 == 0)
        fail(errc::invalid_layout, fn, "groups.rows[", k, "] = ", s.info[0], " is outside [0, ",
             ctx.rows, ")");
      if (idx % 4 == 1)
        fail(errc::invalid_layout, fn, "groups.rows[", k, "] = ", s.info[0],
             " is not greater than the previous row of group ", s.info[1],
             " (rows of a group must be strictly increasing)");
      fail(errc::invalid_layout, fn, "groups.rows[", k, "] = ", s.info[0],
           " appears in more than one group");
    }
    case check_id::stats_size:
      fail(errc::size_mismatch, fn, idx == 0 ? "stats.mean has " : "stats.std has ",
           ctx.stats_cap[idx], " elements, expected ", s.groups, " (one per group) or 0");
    case check_id::reward_nonfinite:
      fail(errc::non_finite, fn, "rewards[", idx, "] is ", non_finite_kind(s.value));
    case check_id::reward_limit:
      fail(errc::out_of_range, fn, "rewards[", idx, "] = ", s.value, " is too large for the ",
           to_string(static_cast<estimator>(ctx.kind)), " estimator (|reward| must be at most ",
           ctx.limit, ")");
    case check_id::singleton:
      fail(errc::singleton_group, fn, "group ", idx, " (row ", s.info[0],
           ") has a single row; its std is undefined (set the singleton policy to verl or "
           "zero to accept such groups)");
    case check_id::singleton_range:
      cpu::fail_singleton_range(fn, s.info[0], s.value, idx, ctx.float_type, s.batch_sigma,
                                ctx.eps);
    case check_id::pair_group:
      if (idx % 2 == 0)
        fail(errc::odd_group, fn, "group ", idx / 2, " (first row ", s.info[1], ") has ", s.info[0],
             " rows, an odd number; PTS pairs rows (set the odd policy to "
             "drop_median to leave the median row out)");
      fail(errc::too_few_pairs, fn, "options.keep_pairs is ", ctx.keep_pairs, " but group ",
           idx / 2, " has ", s.info[0], " rows, i.e. only ", s.info[0] / 2, " pairs");
    case check_id::shuffle_shape:
      if (idx == 0)
        fail(errc::too_few_pairs, fn, "options.per_round is ", T_req, " but there are only ", K,
             " pairs; a round draws distinct pairs");
      fail(errc::out_of_range, fn, "rounds * per_round overflows");
    case check_id::output_size: {
      const std::int64_t order = ctx.rounds * T_req;
      const std::int64_t cap = ctx.cap[idx];
      if (pipeline) {
        const char* what[] = {"out.pairs", "out.pair_weights", "out.order", "out.rows"};
        const std::int64_t need[] = {2 * K, K, order, 2 * order};
        fail(errc::size_mismatch, fn, what[idx], " has ", cap, " entries, needs ", need[idx],
             " (or 0 to skip)");
      }
      if (idx == slot_pairs)
        fail(errc::size_mismatch, fn, "pairs has ", cap, " entries, needs 2 * ", K, " = ", 2 * K);
      fail(errc::size_mismatch, fn, "weights has ", cap, " entries, needs ", K, " (or 0 to skip)");
    }
    case check_id::advantage_nonfinite:
      fail(errc::non_finite, fn, "advantages[", idx, "] is ", non_finite_kind(s.value));
    case check_id::weight_bad:
      if (!is_finite(s.value))
        fail(errc::non_finite, fn, "weights[", idx, "] is ", non_finite_kind(s.value));
      fail(errc::invalid_argument, fn, "weights[", idx, "] is ", s.value, ", expected >= 0");
    case check_id::too_few_pairs:
      fail(errc::too_few_pairs, fn, "only ", s.nonzero, " of ", K,
           " pairs have non-zero sampling mass, fewer than per_round = ", T_req,
           " (set on_short to fill or shrink to accept this)");
    case check_id::order_size:
      fail(errc::size_mismatch, fn, "order has ", ctx.cap[slot_order], " entries, needs ",
           ctx.rounds * s.per_round);
    case check_id::order_range:
      fail(errc::invalid_argument, fn, "order[", idx, "] = ", s.info[0], " is outside [0, ", K,
           ")");
    case check_id::phases:
      fail(errc::out_of_range, "shuffle_pairs", "round ", idx, " needed more than ", max_phases,
           " sampling phases");
  }
  fail(errc::cuda, fn, "unknown device status ", key);
}

}  // namespace shuffle_r1::detail::gpu
