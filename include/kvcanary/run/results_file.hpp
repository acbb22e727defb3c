#pragma once
// The JSONL results file: read it back (resume, merge, report) and append to it crash-safely.
//
// Invariants a reader relies on:
//   - a row is one line ending in '\n'; a row is written with one write() and made durable
//     (fdatasync) before the next is started, so a crash leaves at most one torn line, at the end;
//   - a torn last line (no '\n', or not a complete row) is never read as a result, and the
//     writer cuts it off before appending, so it is rewritten by the resumed run;
//   - a second Ctrl-C that lands inside a row's write waits for that row to be whole
//     (core/stop_signal.hpp RowWriteGuard);
//   - a failed write (disk full, read-only directory, I/O error) truncates the file back to its
//     last complete row and raises an Error naming the file: nothing half-written survives.
// A bad line anywhere but the end is not a crash artifact: it is an error naming file:line.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/stop_signal.hpp"
#include "kvcanary/run/row.hpp"

namespace kvcanary::run {

struct ResultsContents {
  std::vector<Row> rows;
  std::size_t valid_bytes = 0;  // length of the prefix made of complete rows
  bool torn_tail = false;       // a partial last line followed them
};

inline ResultsContents read_results(const std::filesystem::path& path) {
  ResultsContents out;
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    if (!std::filesystem::exists(path)) return out;
    fail(path.string(), "", "cannot open for reading");
  }
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::size_t pos = 0, line_no = 0;
  while (pos < data.size()) {
    ++line_no;
    const std::size_t nl = data.find('\n', pos);
    const std::string where = path.string() + ":" + std::to_string(line_no);
    if (nl == std::string::npos) {  // no newline: the write that made it never finished
      out.torn_tail = true;
      break;
    }
    const std::string line = data.substr(pos, nl - pos);
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      pos = nl + 1;
      out.valid_bytes = pos;
      continue;
    }
    try {
      out.rows.push_back(row_from_json_line(line, where));
    } catch (const Error&) {
      if (nl + 1 == data.size()) {  // the last line: a torn write that happened to end in '\n'
        out.torn_tail = true;
        break;
      }
      throw;
    }
    pos = nl + 1;
    out.valid_bytes = pos;
  }
  return out;
}

// Appends rows to a results file opened for resuming: the torn tail, if any, is cut first.
class RowWriter {
 public:
  explicit RowWriter(std::filesystem::path path) : path_(std::move(path)) {
    const ResultsContents existing = read_results(path_);
    if (path_.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(path_.parent_path(), ec);
      if (ec) fail(path_.string(), "", "cannot create its directory: " + ec.message());
    }
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(path_.string(), "", std::string("cannot open for writing: ") + std::strerror(errno));
    if (::ftruncate(fd_, static_cast<off_t>(existing.valid_bytes)) != 0) {
      const int e = errno;
      ::close(fd_);
      fail(path_.string(), "", std::string("cannot cut the torn last line: ") + std::strerror(e));
    }
    size_ = existing.valid_bytes;
    rows_before_ = existing.rows.size();
  }
  RowWriter(const RowWriter&) = delete;
  RowWriter& operator=(const RowWriter&) = delete;
  ~RowWriter() {
    if (fd_ >= 0) ::close(fd_);
  }

  void append(const Row& row) { append_line(to_json_line(row)); }

  // `line` must not contain '\n'.
  void append_line(const std::string& line) {
    const std::string data = line + "\n";
    const stop_signal::RowWriteGuard whole_row;
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(size_ + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) undo_and_fail(std::string("cannot write a row: ") + std::strerror(n < 0 ? errno : EIO));
      done += static_cast<std::size_t>(n);
    }
    if (::fdatasync(fd_) != 0) undo_and_fail(std::string("cannot flush a row to disk: ") + std::strerror(errno));
    size_ += data.size();
  }

  std::size_t rows_before() const { return rows_before_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  [[noreturn]] void undo_and_fail(const std::string& message) {
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      // The torn bytes stay; they have no '\n'-terminated complete row, so no reader takes them.
    }
    fail(path_.string(), "", message);
  }

  std::filesystem::path path_;
  int fd_ = -1;
  std::size_t size_ = 0, rows_before_ = 0;
};

}  // namespace kvcanary::run
