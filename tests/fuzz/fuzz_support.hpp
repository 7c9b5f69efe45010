// Shared pieces of the fuzz harnesses: a reader that turns fuzzer bytes into values (running
// out of bytes yields zeros, so every input decodes) and a failure report that aborts, which
// libFuzzer and the corpus replay both treat as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sr1_fuzz {

/// Consumes the fuzzer's bytes front to back.
class reader {
 public:
  reader(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  std::size_t left() const { return n_; }
  std::uint8_t u8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<std::uint64_t>(u8()) << (8 * i);
    return v;
  }
  double f64() {
    const std::uint64_t bits = u64();
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  /// A small signed integer; the byte 0x7f escapes to a full 64-bit value (overflow checks).
  std::int64_t small_int() {
    const auto b = static_cast<std::int8_t>(u8());
    if (b == 0x7f) return static_cast<std::int64_t>(u64());
    return b;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

/// Reports a violated invariant and aborts.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline void require(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

}  // namespace sr1_fuzz
