// sr1 --backend: where run_pipeline runs. `cpu` (the default) is the library's CPU backend;
// `cuda` copies the batch to the GPU, runs the CUDA run_pipeline there and copies the outputs
// back (tools/sr1/cuda_backend.cu, compiled only when sr1 is configured with
// -DSHUFFLE_R1_ENABLE_CUDA=ON, which defines SR1_HAVE_CUDA). Only the computation differs:
// everything sr1 prints or writes is made by the same code from the same host outputs.
//
// This header is compiled by the host compiler (main.cpp) and by nvcc (cuda_backend.cu, after
// <shuffle_r1/cuda.cuh>).
#pragma once

#include <shuffle_r1/error.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/pipeline.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace sr1 {

enum class backend { cpu, cuda };

/// Whether this sr1 has the CUDA backend.
#ifdef SR1_HAVE_CUDA
inline constexpr bool have_cuda_backend = true;
#else
inline constexpr bool have_cuda_backend = false;
#endif

/// The message of `--backend cuda` in an sr1 built without the CUDA backend.
inline constexpr const char* no_cuda_backend_message =
    "--backend cuda: this sr1 was built without the CUDA backend (configure with "
    "-DSHUFFLE_R1_ENABLE_CUDA=ON)";

/// The group layout handed to the CUDA pipeline: B group ids (host memory, `ids` set) or
/// uniform groups of `group_size` rows.
struct cuda_layout {
  const std::int64_t* ids = nullptr;
  std::int64_t num_groups = 0, group_size = 0;
};

/// Optional timing of a CUDA pipeline call (sr1 demo).
struct cuda_timing {
  int repeats = 0;          ///< in: further stream-ordered calls to time, inputs on the device
  double first_us = 0;      ///< out: the first call with its allocations and copies (host clock)
  std::vector<double> us;   ///< out: stream time of each repeated call (CUDA events)
  std::string device_name;  ///< out: the device the pipeline ran on
};

#ifdef SR1_HAVE_CUDA

/// @throws shuffle_r1::error "--backend cuda: no CUDA device is available (...)" when the CUDA
///         runtime sees no device.
void require_cuda_device();

/// The CUDA run_pipeline on host data: copies `rewards` (B values) and the layout to the device,
/// runs the pipeline, copies every non-empty output of `out` back (sizes as the CPU
/// plan_pipeline says) and returns the summary.
/// @throws shuffle_r1::error: the library's errors as the CPU backend reports them; CUDA
///         failures (errc::cuda) and a missing device with a "--backend cuda: " prefix.
shuffle_r1::pipeline_summary run_pipeline_cuda(const float* rewards, std::int64_t B,
                                               const cuda_layout& groups,
                                               const shuffle_r1::pipeline_config& config,
                                               const shuffle_r1::pipeline_outputs<float>& out,
                                               cuda_timing* timing = nullptr);
shuffle_r1::pipeline_summary run_pipeline_cuda(const double* rewards, std::int64_t B,
                                               const cuda_layout& groups,
                                               const shuffle_r1::pipeline_config& config,
                                               const shuffle_r1::pipeline_outputs<double>& out,
                                               cuda_timing* timing = nullptr);

#else

// Without the CUDA backend main.cpp refuses `--backend cuda` before any of these is reached.
[[noreturn]] inline void no_cuda_backend() {
  throw shuffle_r1::error(shuffle_r1::errc::invalid_argument, no_cuda_backend_message);
}
inline void require_cuda_device() {
  no_cuda_backend();
}
template <class T>
shuffle_r1::pipeline_summary run_pipeline_cuda(const T*, std::int64_t, const cuda_layout&,
                                               const shuffle_r1::pipeline_config&,
                                               const shuffle_r1::pipeline_outputs<T>&,
                                               cuda_timing* = nullptr) {
  no_cuda_backend();
}

#endif

/// The layout of `groups` for the CUDA pipeline.
inline cuda_layout to_cuda_layout(const shuffle_r1::id_groups<std::int64_t>& groups) {
  return cuda_layout{groups.ids.data(), 0, 0};
}
inline cuda_layout to_cuda_layout(const shuffle_r1::uniform_groups& groups) {
  return cuda_layout{nullptr, groups.num_groups, groups.group_size};
}

/// run_pipeline on `be` with host inputs and outputs; `ws` is used by the CPU backend only.
template <class T, class Layout>
shuffle_r1::pipeline_summary run_pipeline_on(backend be, const std::vector<T>& rewards,
                                             const Layout& groups,
                                             const shuffle_r1::pipeline_config& config,
                                             shuffle_r1::pipeline_workspace<T>& ws,
                                             const shuffle_r1::pipeline_outputs<T>& out,
                                             cuda_timing* timing = nullptr) {
  if (be == backend::cuda)
    return run_pipeline_cuda(rewards.data(), static_cast<std::int64_t>(rewards.size()),
                             to_cuda_layout(groups), config, out, timing);
  return shuffle_r1::run_pipeline(shuffle_r1::cpu, rewards, groups, config, ws, out);
}

}  // namespace sr1
