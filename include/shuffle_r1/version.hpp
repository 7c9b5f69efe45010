/// @file version.hpp
/// @brief Library version. CMake reads the version from this file.
#pragma once

#define SHUFFLE_R1_VERSION_MAJOR 0
#define SHUFFLE_R1_VERSION_MINOR 1
#define SHUFFLE_R1_VERSION_PATCH 0
#define SHUFFLE_R1_VERSION_STRING "0.1.0"

/// Single integer for comparisons: major * 10000 + minor * 100 + patch.
#define SHUFFLE_R1_VERSION \
  (SHUFFLE_R1_VERSION_MAJOR * 10000 + SHUFFLE_R1_VERSION_MINOR * 100 + SHUFFLE_R1_VERSION_PATCH)
