// core/writer_lock.hpp: one writer per file. A second writer is refused at once, naming the
// file and the holder's pid; the lock goes with its holder, however it ends (kill -9 included),
// so a stale lock file never blocks the next writer.

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "../support/temp_dir.hpp"
#include "kvcanary/core/writer_lock.hpp"

namespace fs = std::filesystem;
using kvcanary::WriterLock;

TEST_CASE("writer_lock: a second writer is refused with the file and the holder's pid, released, it is free again") {
  kvcanary::test::TempDir dir;
  const fs::path out = dir.path / "r.jsonl";
  std::optional<WriterLock> first(std::in_place, out);
  CHECK(fs::exists(dir.path / "r.jsonl.lock"));
  // A second writer in the same process is refused too (flock excludes open file descriptions).
  const std::string refusal =
      out.string() + ": is being written by another kvcanary process (pid " + std::to_string(::getpid()) + ",";
  CHECK_THROWS_WITH_AS(WriterLock{out}, doctest::Contains(refusal.c_str()), kvcanary::Error);
  first.reset();
  CHECK_FALSE(fs::exists(dir.path / "r.jsonl.lock"));  // removed by its holder
  CHECK_NOTHROW(WriterLock{out});
  CHECK_FALSE(fs::exists(out));  // locking never creates the file itself
}

TEST_CASE("writer_lock: a killed holder's lock file does not block (the kernel released the lock)") {
  kvcanary::test::TempDir dir;
  const fs::path out = dir.path / "r.jsonl";
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    WriterLock lock(out);
    (void)!::write(ready[1], "l", 1);
    ::pause();
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  ::close(ready[1]);
  const std::string refusal = "(pid " + std::to_string(pid) + ", lock " + out.string() + ".lock)";
  CHECK_THROWS_WITH_AS(WriterLock{out}, doctest::Contains(refusal.c_str()), kvcanary::Error);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  CHECK(fs::exists(dir.path / "r.jsonl.lock"));  // stale: left by the killed holder, but unlocked
  CHECK_NOTHROW(WriterLock{out});
}

TEST_CASE("writer_lock: an input in a missing or unwritable directory is read without a lock, and nothing is created") {
  kvcanary::test::TempDir dir;
  const fs::path missing = dir.path / "no" / "such" / "shard.jsonl";
  std::optional<WriterLock> lock(std::in_place, missing, WriterLock::Use::Input);
  CHECK_FALSE(lock->held());
  CHECK_FALSE(fs::exists(dir.path / "no"));
  // An existing input is locked like an output: a writer on it is refused meanwhile.
  const fs::path shard = dir.path / "shard.jsonl";
  std::ofstream(shard) << "";
  lock.emplace(shard, WriterLock::Use::Input);
  CHECK(lock->held());
  CHECK_THROWS_AS(WriterLock{shard}, kvcanary::Error);
}
