# Fails when the PTX of the CUDA backend's kernels contains a fused multiply-add or a
# floating-point operation without an explicit rounding mode (which ptxas may contract).
#   cmake -DPTX=file.ptx -P check_ptx.cmake
if(NOT EXISTS "${PTX}")
  message(FATAL_ERROR "check_ptx: ${PTX} not found")
endif()
file(STRINGS "${PTX}" _entries REGEX "^\\.(visible \\.)?entry ")
list(LENGTH _entries _count)
if(_count LESS 20)
  message(FATAL_ERROR "check_ptx: only ${_count} kernels in ${PTX}; expected the whole backend")
endif()
file(STRINGS "${PTX}" _bad REGEX
     "(fma|mad)(\\.r[nzmp])?(\\.ftz)?(\\.sat)?\\.f(16|32|64)|[ \t](add|sub|mul|div|sqrt)(\\.ftz)?\\.f(32|64)[ \t]")
list(LENGTH _bad _n)
if(_n GREATER 0)
  list(GET _bad 0 _first)
  message(FATAL_ERROR "check_ptx: ${_n} fused or unrounded floating-point operations, first: ${_first}")
endif()
file(STRINGS "${PTX}" _rn REGEX "(add|mul|div)\\.rn\\.f64")
list(LENGTH _rn _m)
message(STATUS "check_ptx: ${_count} kernels, ${_m} explicitly rounded double operations, no FMA")
