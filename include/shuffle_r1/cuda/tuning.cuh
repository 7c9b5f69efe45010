/// @file cuda/tuning.cuh
/// @brief Every tuning constant of the CUDA backend, in one place. Internal: include
/// <shuffle_r1/cuda.cuh>.
///
/// None of these constants changes a result: they choose block sizes, grid caps and which kernel
/// handles which group size. Every kernel computes the same operations in the same order
/// whatever they are (docs/gpu.md, "Determinism"). The values are first choices for an H100
/// (132 SMs, 2048 threads per SM) that have not been measured yet (docs/gpu.md, "Not yet run on a
/// GPU").
#pragma once

#ifndef SHUFFLE_R1_CUDA_INCLUDED
#error "shuffle_r1/cuda headers are internal: include <shuffle_r1/cuda.cuh>"
#endif

#include <cstddef>
#include <cstdint>

namespace shuffle_r1::detail::gpu::tuning {

/// Threads per block of the element-wise and per-group kernels.
inline constexpr int block_threads = 256;
/// Grid cap of grid-stride kernels, in blocks per SM: enough resident warps to hide memory
/// latency, few enough that each block's counters reach global memory in one atomic.
inline constexpr int blocks_per_sm = 8;
/// Largest group normalized by one thread (registers hold the group; the canonical sum is the
/// CPU's fixed-size tree). Larger groups take one warp each. Must equal detail::sum_chunk.
inline constexpr int thread_group_rows = 32;
/// Largest group ranked by one thread in PTS (rank counting in registers). Larger groups are
/// sorted by two stable CUB radix sorts. Must equal detail::cpu::rank_sort_limit.
inline constexpr int thread_pair_rows = 64;
/// Threads of the single block that builds the ABS sampling tables (masses, prefix sums, guide).
inline constexpr int table_threads = 1024;
/// Threads per ABS round block; each thread makes two draws per batch.
inline constexpr int round_threads = 256;
/// Largest number of concurrent round blocks per SM.
inline constexpr int round_blocks_per_sm = 4;
/// Device memory the concurrent round blocks may use for their per-round state (12 bytes per pair
/// and block): fewer blocks run at once, each doing more rounds, when K is large.
inline constexpr std::size_t round_state_budget = std::size_t{256} << 20;
/// Alignment of every buffer carved from a workspace.
inline constexpr std::size_t workspace_alignment = 256;

}  // namespace shuffle_r1::detail::gpu::tuning
