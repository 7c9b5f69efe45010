/// @file execution.hpp
/// @brief Execution policies: the first argument of every algorithm picks the backend.
///
/// `shuffle_r1::cpu` runs on the calling thread with the Eigen backend and takes `host_span`s.
/// The CUDA policy (`shuffle_r1::cuda_policy`, in <shuffle_r1/cuda.cuh>) takes `device_span`s.
#pragma once

#include <shuffle_r1/config.hpp>

namespace shuffle_r1 {

/// The CPU backend: single-threaded, synchronous, works on host memory.
struct cpu_policy {};

/// The CPU policy object: `normalize_advantages(shuffle_r1::cpu, ...)`.
inline constexpr cpu_policy cpu{};

}  // namespace shuffle_r1
