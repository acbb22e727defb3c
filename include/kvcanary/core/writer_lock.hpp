#pragma once
// One writer per file: an exclusive flock(2) on "NAME.lock" beside NAME, held for as long as the
// writer runs (kvcanary sweep, kvcanary merge). Two sweeps appending to one results file
// interleave their rows and tear each other's lines; a merge that renames over a file a sweep is
// appending to loses the sweep's later rows. So a second writer is refused at once, with an
// Error naming the file and the holder's pid, before it has read or changed anything.
//
// Why a lock file and not a lock on NAME itself: `merge` (and every AtomicFile) replaces NAME by
// rename(2), which gives it a new inode — a lock on the old inode would protect nothing.
// Why flock: the kernel drops it when the holder's last descriptor closes, which includes any
// death (kill -9, OOM, a node reboot for a network filesystem that supports it), so a stale
// lock never blocks a resume; and unlike POSIX record locks (fcntl) it also excludes a second
// writer inside the same process.
//
// The holder writes its pid into the lock file for the refusal message, and unlinks the file
// when it is done. Unlinking is safe because the acquirer checks, after locking, that the path
// still names the inode it locked (else a writer that opened the old file before the unlink
// would hold a lock on a file nobody else can see); a killed holder leaves the file, unlocked.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "kvcanary/core/error.hpp"

namespace kvcanary {

class WriterLock {
 public:
  // Output: the file this process will write (its directory is created).
  // Input: a file this process reads and must not be mid-write (merge's shards); where no lock
  // file can be created (a missing or read-only directory) no writer can hold one either, so
  // the lock is skipped rather than an error, and nothing is created.
  enum class Use { Output, Input };

  // Locks `target` or raises Error: "<target>: is being written by another kvcanary process
  // (pid N, lock TARGET.lock); ...".
  explicit WriterLock(std::filesystem::path target, Use use = Use::Output) : target_(std::move(target)) {
    lock_path_ = target_;
    lock_path_ += ".lock";
    std::error_code ec;
    if (use == Use::Output && target_.has_parent_path()) std::filesystem::create_directories(target_.parent_path(), ec);
    for (int attempt = 0;; ++attempt) {
      fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0 && use == Use::Input) return;  // held: nothing
      if (fd_ < 0)
        fail(target_.string(), "", "cannot create its lock file " + lock_path_.string() + ": " + std::strerror(errno));
      int r;
      while ((r = ::flock(fd_, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {}
      if (r != 0) {
        const int e = errno;
        std::string holder = read_holder();
        // The holder writes its pid right after locking: give it a moment if we came in between.
        for (int i = 0; i < 10 && holder.empty(); ++i) {
          ::usleep(10000);
          holder = read_holder();
        }
        ::close(fd_);
        fd_ = -1;
        if (e != EWOULDBLOCK)
          fail(target_.string(), "", "cannot lock " + lock_path_.string() + ": " + std::strerror(e));
        fail(target_.string(), "",
             "is being written by another kvcanary process (pid " + (holder.empty() ? std::string("unknown") : holder) +
                 ", lock " + lock_path_.string() + "); wait for it to finish or stop it, or write to another file");
      }
      // The holder before us may have unlinked the file between our open and our flock.
      struct stat ours {
      }, now{};
      if (::fstat(fd_, &ours) == 0 && ::stat(lock_path_.c_str(), &now) == 0 && ours.st_ino == now.st_ino &&
          ours.st_dev == now.st_dev)
        break;
      ::close(fd_);
      fd_ = -1;
      if (attempt > 100) fail(target_.string(), "", "cannot lock " + lock_path_.string() + ": it keeps being replaced");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      // The pid is only for the refusal message; the lock holds without it.
    }
  }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  ~WriterLock() {
    if (fd_ < 0) return;
    ::unlink(lock_path_.c_str());  // while still locked: see the inode check above
    ::close(fd_);
  }

  const std::filesystem::path& target() const { return target_; }
  bool held() const { return fd_ >= 0; }
  const std::filesystem::path& lock_path() const { return lock_path_; }

 private:
  std::string read_holder() const {
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    std::string s = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s.find_first_not_of("0123456789") == std::string::npos ? s : std::string();
  }

  std::filesystem::path target_, lock_path_;
  int fd_ = -1;
};

}  // namespace kvcanary
