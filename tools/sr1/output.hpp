// sr1: writing results. --output is replaced atomically: the text goes to a temporary file in
// the same directory, is flushed to disk, then renamed over the target, so a reader never sees
// a half-written file and a failed run leaves an existing file untouched.
#pragma once

#include "csv.hpp"  // input_error

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sr1 {

/// Writes `text` to `path` atomically; `flag` names the option in messages.
inline void write_atomically(const std::string& path, const std::string& text,
                             const std::string& flag = "--output") {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    throw input_error(flag + " " + path + ": cannot create a file next to it (" +
                      std::strerror(errno) + ")");
  const auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw input_error(flag + " " + path + ": " + what + " failed (" + std::strerror(err) + ")");
  };
  std::size_t done = 0;
  while (done < text.size()) {
    const ::ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) fail("chmod");
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw input_error(flag + " " + path + ": close failed (" + std::strerror(err) + ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw input_error(flag + " " + path + ": rename failed (" + std::strerror(err) + ")");
  }
}

inline void write_stdout(const std::string& text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    throw std::runtime_error(std::string("writing to standard output failed: ") +
                             std::strerror(errno));
}

/// Writes a command's result: to standard output when `output` is empty, else atomically to
/// the file `output` (--output).
inline void write_result(const std::string& output, const std::string& text) {
  if (output.empty()) {
    write_stdout(text);
  } else {
    write_atomically(output, text);
  }
}

}  // namespace sr1
