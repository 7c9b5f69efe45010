// sr1: a small streaming JSON writer. Numbers use the shortest text that reads back to the
// same value (std::to_chars), so float32 advantages print as float32 values (1.2076087, not
// 1.2076086997985840).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace sr1 {

class json_writer {
 public:
  std::string& str() { return out_; }

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  /// Writes `"name":` inside an object; members of the top-level object go on their own line.
  void key(std::string_view name) {
    separator();
    if (depth_ == 1) out_ += "\n  ";
    string_literal(name);
    out_ += depth_ == 1 ? ": " : ":";
    after_key_ = true;
  }

  void value(std::string_view s) {
    separator();
    string_literal(s);
  }
  void value(const char* s) { value(std::string_view(s)); }
  void null() {
    separator();
    out_ += "null";
  }
  void value(bool b) {
    separator();
    out_ += b ? "true" : "false";
  }
  template <class N, class = std::enable_if_t<std::is_arithmetic_v<N> && !std::is_same_v<N, bool>>>
  void value(N n) {
    separator();
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, n);
    out_.append(buf, r.ptr);
  }

  /// Writes an array of numbers on one line.
  template <class Range>
  void array(const Range& values) {
    begin_array();
    for (const auto& v : values)
      value(v);
    end_array();
  }

 private:
  void open(char c) {
    separator();
    out_ += c;
    first_ = true;
    ++depth_;
  }
  void close(char c) {
    if (--depth_ == 0) out_ += '\n';
    out_ += c;
    first_ = false;
  }
  void separator() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_ && !out_.empty()) out_ += ',';
    first_ = false;
  }
  void string_literal(std::string_view s) {
    out_ += '"';
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            out_ += "\\u00";
            out_ += hex[c >> 4];
            out_ += hex[c & 15];
          } else {
            out_ += ch;
          }
      }
    }
    out_ += '"';
  }

  std::string out_;
  bool first_ = true;
  bool after_key_ = false;
  int depth_ = 0;
};

}  // namespace sr1
