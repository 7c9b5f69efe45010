/// @file error.hpp
/// @brief The exceptions thrown by shuffle_r1 and the error codes that classify them.
#pragma once

#include <shuffle_r1/config.hpp>

#include <cstdint>
#include <locale>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace shuffle_r1 {

/// What kind of precondition failed. Stable values: scripts may switch on them.
enum class errc : int {
  invalid_argument = 1,  ///< an option or scalar argument is outside its documented range
  size_mismatch = 2,     ///< a view has the wrong number of elements
  non_finite = 3,        ///< a reward, advantage or weight is NaN or infinite
  invalid_layout = 4,    ///< group offsets, rows or ids do not describe a valid grouping
  singleton_group = 5,   ///< a group has one row and the singleton policy is `error`
  odd_group = 6,         ///< a group has an odd number of rows and the odd policy is `error`
  too_few_pairs = 7,     ///< fewer pairs than asked can be drawn (PTS or ABS)
  out_of_range = 8,      ///< a value is too large for the library's index or counter types
  cuda = 9,              ///< a CUDA runtime call failed
};

/// Short lowercase name of an error code, for messages and logs.
/// @par Complexity O(1). Never throws.
inline const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::size_mismatch:
      return "size_mismatch";
    case errc::non_finite:
      return "non_finite";
    case errc::invalid_layout:
      return "invalid_layout";
    case errc::singleton_group:
      return "singleton_group";
    case errc::odd_group:
      return "odd_group";
    case errc::too_few_pairs:
      return "too_few_pairs";
    case errc::out_of_range:
      return "out_of_range";
    case errc::cuda:
      return "cuda";
  }
  return "unknown";
}

/// The exception every shuffle_r1 function throws on a failed precondition.
///
/// The message names the function, the argument and the offending index or value, for example
/// `normalize_advantages: rewards[17] is NaN`. Every function checks all of its preconditions
/// before it writes any output, so after an `error` the caller's output buffers are untouched.
class error : public std::runtime_error {
 public:
  /// @param code classification of the failure
  /// @param message full message, starting with the function name
  error(errc code, const std::string& message) : std::runtime_error(message), code_(code) {}

  /// The classification of this failure.
  errc code() const noexcept { return code_; }

 private:
  errc code_;
};

namespace detail {

/// Builds a message from streamable parts in the classic locale (no thousands separators).
template <class... Parts>
std::string message(const Parts&... parts) {
  std::ostringstream out;
  out.imbue(std::locale::classic());
  out.precision(17);
  (out << ... << parts);
  return out.str();
}

/// Throws shuffle_r1::error with a message made of `function`, ": " and the parts.
template <class... Parts>
[[noreturn]] void fail(errc code, const char* function, const Parts&... parts) {
  throw error(code, message(function, ": ", parts...));
}

}  // namespace detail
}  // namespace shuffle_r1
