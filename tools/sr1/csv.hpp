// sr1: CSV input. A header row names the columns; `group` (any string) and `reward` (a finite
// number) are required; with --lengths, the named column holds response lengths in tokens
// (integers >= 0); other columns are ignored. RFC 4180 quoting ("a, b", "say ""hi""") with
// fields spanning lines, CRLF or LF line ends, an optional UTF-8 byte-order mark, blank lines
// skipped. Every error names the file line where the offending record starts.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace sr1 {

/// A problem with the user's input: the CLI prints what() on one line and exits with status 2.
struct input_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The parsed batch: per row its group name, reward and file line; groups numbered by first
/// appearance.
struct batch {
  std::vector<double> rewards;
  std::vector<std::string> reward_texts;  // the reward as written in the file (for messages)
  std::vector<std::int64_t> group_ids;    // 0..G-1 by first appearance
  std::vector<std::string> group_names;
  std::vector<std::int64_t> lengths;           // response lengths (only with a lengths column)
  std::vector<std::int64_t> lines;             // file line of each row
  std::vector<std::int64_t> group_first_line;  // file line of each group's first row
};

namespace detail {

/// Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF):
/// group ids are copied into the JSON output, whose text must be UTF-8.
inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int extra = 0;
    std::uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1Fu, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0Fu, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07u, min = 0x10000;
    } else {
      return false;
    }
    if (i + static_cast<std::size_t>(extra) >= s.size()) return false;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const auto d = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

inline std::string_view trim(std::string_view s) {
  const auto ws = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && ws(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && ws(s.back()))
    s.remove_suffix(1);
  return s;
}

/// Shortens a field for messages.
inline std::string shown(std::string_view s) {
  std::string out(s.substr(0, 40));
  if (s.size() > 40) out += "...";
  return "'" + out + "'";
}

/// Splits the text into records of fields. Calls on_record(fields, line) for each record.
template <class OnRecord>
void parse_records(std::string_view text, const std::string& file, OnRecord&& on_record) {
  std::vector<std::string> fields;
  std::string field;
  std::size_t i = 0;
  std::int64_t line = 1;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // UTF-8 BOM
  while (i < text.size()) {
    const std::int64_t record_line = line;
    fields.clear();
    field.clear();
    bool in_quotes = false, quoted = false, record_done = false;
    while (i < text.size() && !record_done) {
      const char c = text[i];
      if (in_quotes) {
        if (c == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
          } else {
            in_quotes = false;
            ++i;
          }
        } else {
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        continue;
      }
      switch (c) {
        case '"':
          if (!trim(field).empty())
            throw input_error(file + ":" + std::to_string(line) +
                              ": a quote inside an unquoted field (quote the whole field)");
          field.clear();
          in_quotes = quoted = true;
          ++i;
          break;
        case ',':
          fields.push_back(quoted ? field : std::string(trim(field)));
          field.clear();
          quoted = false;
          ++i;
          break;
        case '\r':
          ++i;
          break;
        case '\n':
          ++line;
          ++i;
          record_done = true;
          break;
        default:
          if (quoted && c != ' ' && c != '\t')
            throw input_error(file + ":" + std::to_string(line) +
                              ": text after the closing quote of a field");
          if (!quoted) field += c;
          ++i;
      }
    }
    if (in_quotes)
      throw input_error(file + ":" + std::to_string(record_line) +
                        ": a quoted field is not closed before the end of the file");
    fields.push_back(quoted ? field : std::string(trim(field)));
    const bool blank = fields.size() == 1 && fields[0].empty() && !quoted;
    if (!blank) on_record(fields, record_line);
  }
}

}  // namespace detail

/// Parses a reward: a finite decimal number, surrounding blanks allowed.
/// @throws input_error naming the file line.
inline double parse_reward(std::string_view text, const std::string& file, std::int64_t line) {
  std::string_view s = detail::trim(text);
  const std::string where = file + ":" + std::to_string(line) + ": ";
  if (s.empty()) throw input_error(where + "the reward is empty");
  if (s.front() == '+') s.remove_prefix(1);
  double v = 0.0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range)
    throw input_error(where + "reward " + detail::shown(text) + " is out of the double range");
  if (ec != std::errc() || end != s.data() + s.size())
    throw input_error(where + "reward " + detail::shown(text) + " is not a number");
  if (!std::isfinite(v))
    throw input_error(where + "reward " + detail::shown(text) +
                      " is not finite (NaN and infinities are not rewards)");
  return v;
}

/// Parses a response length: a non-negative integer, surrounding blanks allowed.
/// @throws input_error naming the file line and the column.
inline std::int64_t parse_length(std::string_view text, const std::string& column,
                                 const std::string& file, std::int64_t line) {
  std::string_view s = detail::trim(text);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  std::int64_t v = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0)
    throw input_error(file + ":" + std::to_string(line) + ": length " + detail::shown(text) +
                      " in column '" + column + "' is not an integer >= 0 (a token count)");
  return v;
}

/// Parses CSV text read from `file` (the name is used in messages only); `lengths_column`, when
/// not empty, names the column of response lengths. @throws input_error with a message naming
/// file and line.
inline batch parse_csv(std::string_view text, const std::string& file,
                       const std::string& lengths_column = {}) {
  batch b;
  std::size_t group_col = 0, reward_col = 0, length_col = 0, width = 0;
  bool have_header = false;
  std::unordered_map<std::string, std::int64_t> ids;
  detail::parse_records(text, file, [&](const std::vector<std::string>& f, std::int64_t line) {
    if (!have_header) {
      bool g = false, r = false;
      for (std::size_t c = 0; c < f.size(); ++c) {
        if (f[c] == "group" || f[c] == "reward") {
          bool& seen = f[c] == "group" ? g : r;
          if (seen)
            throw input_error(file + ":" + std::to_string(line) + ": column '" + f[c] +
                              "' appears twice in the header");
          seen = true;
          (f[c] == "group" ? group_col : reward_col) = c;
        }
      }
      if (!g || !r)
        throw input_error(file + ":" + std::to_string(line) + ": the header has no '" +
                          std::string(!g ? "group" : "reward") +
                          "' column (it needs columns named group and reward)");
      if (!lengths_column.empty()) {
        const auto at = std::find(f.begin(), f.end(), lengths_column);
        if (at == f.end())
          throw input_error(file + ":" + std::to_string(line) + ": the header has no '" +
                            lengths_column + "' column (named by --lengths)");
        if (std::find(at + 1, f.end(), lengths_column) != f.end())
          throw input_error(file + ":" + std::to_string(line) + ": column '" + lengths_column +
                            "' appears twice in the header");
        length_col = static_cast<std::size_t>(at - f.begin());
      }
      width = f.size();
      have_header = true;
      return;
    }
    if (f.size() != width)
      throw input_error(file + ":" + std::to_string(line) + ": " + std::to_string(f.size()) +
                        " fields, expected " + std::to_string(width) + " as in the header");
    b.rewards.push_back(parse_reward(f[reward_col], file, line));
    b.reward_texts.emplace_back(detail::trim(f[reward_col]));
    if (!detail::valid_utf8(f[group_col]))
      throw input_error(file + ":" + std::to_string(line) +
                        ": the group id is not valid UTF-8 (save the file as UTF-8)");
    if (!lengths_column.empty())
      b.lengths.push_back(parse_length(f[length_col], lengths_column, file, line));
    const auto [it, inserted] =
        ids.emplace(f[group_col], static_cast<std::int64_t>(b.group_names.size()));
    if (inserted) {
      b.group_names.push_back(f[group_col]);
      b.group_first_line.push_back(line);
    }
    b.group_ids.push_back(it->second);
    b.lines.push_back(line);
  });
  if (!have_header)
    throw input_error(file +
                      ": the file is empty (expected a header with columns group and "
                      "reward, then one row per response)");
  if (b.rewards.empty()) throw input_error(file + ": no data rows after the header");
  return b;
}

/// Reads and parses a CSV file; `lengths_column`, when not empty, names the column of response
/// lengths. @throws input_error with a message naming file and line.
inline batch read_csv(const std::string& file, const std::string& lengths_column = {}) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    throw input_error(file + ": is a directory, expected a CSV file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw input_error(file + ": cannot open the file for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_csv(buffer.str(), file, lengths_column);
}

}  // namespace sr1
