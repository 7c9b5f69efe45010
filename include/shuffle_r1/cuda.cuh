/// @file cuda.cuh
/// @brief The CUDA backend of shuffle_r1: include this (compiled by nvcc, with the
/// shuffle_r1::cuda CMake target) for the CUDA policy and the CUDA overload of every algorithm.
///
/// The CPU headers of the algorithms it mirrors (groups, advantages, pairs, shuffle, pipeline)
/// are included too, so one translation unit can run both backends and compare them; include
/// <shuffle_r1/shuffle_r1.hpp> as well for the rest of the CPU API. CPU-only code never needs
/// this header.
///
/// - `cuda_policy{stream, resource}` (or `cuda_on(stream)`) is the first argument of every CUDA
///   overload; they take `device_span`s, `uniform_groups` or the device layouts
///   (`device_ragged_groups`, `device_indexed_groups`, `device_id_groups<I>`). Host spans are
///   refused at compile time (tests/cuda/compile_fail checks it), as device spans are by the CPU
///   overloads.
/// - The single-stage functions (groups_from_ids, count_pairs, plan_pipeline,
///   normalize_advantages, select_pairs, shuffle_pairs, pairs_to_rows) synchronize the stream
///   once and return or throw what the CPU overload returns or throws.
/// - run_pipeline with a caller-supplied workspace (pipeline_workspace_size gives its size) is
///   stream-ordered, never synchronizes and never allocates, so it can be captured into a CUDA
///   graph; pipeline_result reads its summary (or throws its error) afterwards.
/// - Results are bit-identical to the CPU backend's: advantages, pairs, weights, order and rows
///   (docs/gpu.md explains how, and what has not yet run on a GPU).
///
/// Eigen (used by the CPU backend) is included in host-only mode (EIGEN_NO_CUDA) unless it was
/// included before this header or SHUFFLE_R1_KEEP_EIGEN_CUDA is defined: the CUDA backend never
/// uses Eigen in device code, and Eigen's CUDA mode emits warnings under nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "<shuffle_r1/cuda.cuh> must be compiled by nvcc (link the shuffle_r1::cuda target)"
#endif

#if !defined(EIGEN_CORE_H) && !defined(EIGEN_NO_CUDA) && !defined(SHUFFLE_R1_KEEP_EIGEN_CUDA)
#define EIGEN_NO_CUDA
#endif

#include <shuffle_r1/advantage.hpp>
#include <shuffle_r1/config.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/pairs.hpp>
#include <shuffle_r1/pipeline.hpp>
#include <shuffle_r1/random.hpp>
#include <shuffle_r1/shuffle.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/types.hpp>
#include <shuffle_r1/version.hpp>

#define SHUFFLE_R1_CUDA_INCLUDED 1

#include <shuffle_r1/cuda/advantage.cuh>
#include <shuffle_r1/cuda/algorithms.cuh>
#include <shuffle_r1/cuda/layout.cuh>
#include <shuffle_r1/cuda/pairs.cuh>
#include <shuffle_r1/cuda/pipeline.cuh>
#include <shuffle_r1/cuda/report.cuh>
#include <shuffle_r1/cuda/runtime.cuh>
#include <shuffle_r1/cuda/shuffle.cuh>
#include <shuffle_r1/cuda/tuning.cuh>
