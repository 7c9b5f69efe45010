/// @file shuffle_r1.hpp
/// @brief Umbrella header: the whole CPU API of shuffle_r1.
///
/// The CUDA overloads are in <shuffle_r1/cuda.cuh> (nvcc, SHUFFLE_R1_ENABLE_CUDA).
#pragma once

#include <shuffle_r1/advantage.hpp>
#include <shuffle_r1/config.hpp>
#include <shuffle_r1/diagnostics.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/groups.hpp>
#include <shuffle_r1/pairs.hpp>
#include <shuffle_r1/partition.hpp>
#include <shuffle_r1/pipeline.hpp>
#include <shuffle_r1/random.hpp>
#include <shuffle_r1/research_types.hpp>
#include <shuffle_r1/selectors.hpp>
#include <shuffle_r1/shuffle.hpp>
#include <shuffle_r1/span.hpp>
#include <shuffle_r1/synthetic.hpp>
#include <shuffle_r1/token.hpp>
#include <shuffle_r1/types.hpp>
#include <shuffle_r1/validate.hpp>
#include <shuffle_r1/version.hpp>
