#pragma once
// Writing a whole file so that a reader, a crash or a full disk never leaves half of it behind.
//
// The bytes go to a hidden temporary sibling (".NAME.partial-PID-N", the same directory, so the
// final rename stays on one filesystem), are flushed to disk (fsync: without it a crash after the
// rename can leave the new name pointing at blocks that were never written), and the temporary
// file is renamed over NAME; the directory is then fsynced so the rename itself survives a crash.
// Until commit() a reader sees the previous NAME (or none); after it, the whole new one.
//
// A failed write (ENOSPC, EFBIG, EIO, a read-only directory) raises kvcanary::Error naming NAME
// and the system's reason, and removes the temporary file: the previous NAME is untouched.
// A process killed mid-write leaves only its hidden temporary file; the next AtomicFile for the
// same NAME removes the ones whose writer is dead (kill(pid, 0) == ESRCH).
//
// Every file the project writes whole goes through here: merged results (kvcanary merge), the
// report's RESULTS.md, divergence.svg and divergence.png, model.safetensors (io/safetensors_writer.hpp).
// The results file a sweep appends to has its own discipline (run/results_file.hpp).

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "kvcanary/core/error.hpp"

namespace kvcanary {

namespace atomic_file_detail {

inline std::filesystem::path parent_or_dot(const std::filesystem::path& p) {
  return p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
}

inline std::string partial_prefix(const std::filesystem::path& target) {
  std::string s = ".";
  s += target.filename().string();
  s += ".partial-";
  return s;
}

// Temporary files of `target` left by a writer that is no longer running.
inline void remove_dead_partials(const std::filesystem::path& target) {
  const std::string prefix = partial_prefix(target);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(parent_or_dot(target), ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) != 0) continue;
    const std::string rest = n.substr(prefix.size());
    long pid = 0;
    const auto r = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (r.ec != std::errc() || pid <= 0 || r.ptr == rest.data() + rest.size() || *r.ptr != '-') continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ec2;
      std::filesystem::remove(e.path(), ec2);
    }
  }
}

}  // namespace atomic_file_detail

class AtomicFile {
 public:
  // Creates the temporary file; `target`'s directory must exist (or is created when `make_dirs`).
  explicit AtomicFile(std::filesystem::path target, bool make_dirs = true) : target_(std::move(target)) {
    const std::filesystem::path dir = atomic_file_detail::parent_or_dot(target_);
    if (make_dirs) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) fail(target_.string(), "", "cannot create its directory: " + ec.message());
    }
    atomic_file_detail::remove_dead_partials(target_);
    static std::atomic<unsigned> counter{0};
    temp_ = dir / (atomic_file_detail::partial_prefix(target_) + std::to_string(::getpid()) + "-" +
                   std::to_string(counter.fetch_add(1)));
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0)
      fail(target_.string(), "", std::string("cannot create a temporary file next to it: ") + std::strerror(errno));
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() { discard(); }

  void write(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t k = ::write(fd_, p, n);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) give_up("cannot write", k < 0 ? errno : EIO);
      p += k;
      n -= static_cast<std::size_t>(k);
    }
  }
  void write(std::string_view s) { write(s.data(), s.size()); }

  // Flushes, closes and renames over the target. After it the object holds nothing.
  void commit() {
    if (::fsync(fd_) != 0) give_up("cannot flush to disk", errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) give_up("cannot close", errno);
    if (::rename(temp_.c_str(), target_.c_str()) != 0) give_up("cannot rename the finished file into place", errno);
    temp_.clear();
    // The rename lives in the directory: flush it too (best effort: some filesystems refuse).
    const int dfd = ::open(atomic_file_detail::parent_or_dot(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  void discard() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!temp_.empty()) ::unlink(temp_.c_str());
    temp_.clear();
  }
  [[noreturn]] void give_up(const std::string& what, int err) {
    discard();
    fail(target_.string(), "", what + ": " + std::strerror(err) + " (nothing written; any previous file is unchanged)");
  }

  std::filesystem::path target_, temp_;
  int fd_ = -1;
};

// The whole of `data` as `path`, atomically.
inline void write_file_atomically(const std::filesystem::path& path, std::string_view data) {
  AtomicFile f(path);
  f.write(data);
  f.commit();
}

}  // namespace kvcanary
