// core/atomic_file.hpp: a file is replaced whole or not at all — after a success, a failed
// write (a full disk: a 64 KiB tmpfs in a private mount namespace, in a forked child), or a
// writer killed mid-file; and what a dead writer left behind is cleaned up by the next one.

#include <doctest/doctest.h>

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../support/in_child.hpp"
#include "../support/temp_dir.hpp"
#include "kvcanary/core/atomic_file.hpp"
#include "kvcanary/run/report.hpp"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Names in `dir` other than `keep`: temporary files left behind show up here.
std::string others(const fs::path& dir, const std::set<std::string>& keep) {
  std::string out;
  for (const auto& e : fs::directory_iterator(dir))
    if (!keep.count(e.path().filename().string())) out += e.path().filename().string() + " ";
  return out;
}

}  // namespace

TEST_CASE("atomic_file: writes, replaces, and leaves no temporary file") {
  kvcanary::test::TempDir dir;
  const fs::path p = dir.path / "sub" / "out.txt";
  kvcanary::write_file_atomically(p, "first\n");
  CHECK(slurp(p) == "first\n");
  kvcanary::write_file_atomically(p, "second, longer\n");
  CHECK(slurp(p) == "second, longer\n");
  CHECK(others(p.parent_path(), {"out.txt"}).empty());
  {  // abandoned before commit (an exception while producing the bytes): the old file stays
    kvcanary::AtomicFile f(p);
    f.write("never committed");
    CHECK(fs::exists(f.temp_path()));
  }
  CHECK(slurp(p) == "second, longer\n");
  CHECK(others(p.parent_path(), {"out.txt"}).empty());
}

TEST_CASE(
    "atomic_file: a writer killed mid-file leaves the old file whole, its temporary is removed by the next writer") {
  kvcanary::test::TempDir dir;
  const fs::path p = dir.path / "merged.jsonl";
  kvcanary::write_file_atomically(p, "old\n");
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    kvcanary::AtomicFile f(p);
    f.write(std::string(100000, 'x'));
    (void)!::write(ready[1], "w", 1);
    ::pause();  // killed here, mid-file
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  CHECK(slurp(p) == "old\n");
  CHECK(others(dir.path, {"merged.jsonl"}).rfind(".merged.jsonl.partial-" + std::to_string(pid) + "-", 0) ==
        0);  // its temporary only
  kvcanary::write_file_atomically(p, "new\n");
  CHECK(slurp(p) == "new\n");
  CHECK(others(dir.path, {"merged.jsonl"}).empty());
}

TEST_CASE(
    "atomic_file: a full filesystem (ENOSPC on a 64 KiB tmpfs) is an Error naming the file, the old file stays whole") {
  if (!kvcanary::test::can_mount()) {
    MESSAGE("skipped: mounting a small tmpfs needs root and a mount namespace");
    return;
  }
  kvcanary::test::TempDir dir;
  const fs::path p = dir.path / "RESULTS.md";
  const std::string msg = kvcanary::test::in_child([&] {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("kvcanary-full", dir.path.c_str(), "tmpfs", 0, "size=64k") != 0)
      return std::string("setup failed");
    kvcanary::write_file_atomically(p, "the previous report\n");
    std::string out;
    try {
      kvcanary::write_file_atomically(p, std::string(1 << 20, 'x'));
      out = "no error";
    } catch (const kvcanary::Error& e) { out = std::string("Error: ") + e.what() + "\nfile=" + e.file(); }
    return out + "\nkept=" + std::to_string(slurp(p) == "the previous report\n") + " others=[" +
           others(dir.path, {"RESULTS.md"}) + "]";
  });
  REQUIRE(msg != "setup failed");
  CHECK(msg.rfind("Error: " + p.string() + ": cannot write: No space left on device", 0) == 0);
  CHECK(msg.find("file=" + p.string()) != std::string::npos);
  CHECK(msg.find("kept=1 others=[]") != std::string::npos);
}

TEST_CASE("atomic_file: the report on a full filesystem fails clearly and leaves no partial file") {
  if (!kvcanary::test::can_mount()) {
    MESSAGE("skipped: mounting a small tmpfs needs root and a mount namespace");
    return;
  }
  kvcanary::test::TempDir dir;
  const std::string msg = kvcanary::test::in_child([&] {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("kvcanary-full", dir.path.c_str(), "tmpfs", 0, "size=16k") != 0)
      return std::string("setup failed");
    std::string out;
    try {
      kvcanary::run::write_report(std::vector<kvcanary::run::Row>{}, dir.path / "report");
      out = "no error";
    } catch (const kvcanary::Error& e) { out = std::string("Error: ") + e.what(); }
    std::string partial;
    for (const auto& e : fs::recursive_directory_iterator(dir.path))
      if (e.path().filename().string().find(".partial-") != std::string::npos) partial += e.path().string() + " ";
    return out + "\npartial=[" + partial + "]";
  });
  REQUIRE(msg != "setup failed");
  CHECK(msg.rfind("Error: ", 0) == 0);
  CHECK(msg.find("No space left on device") != std::string::npos);
  CHECK(msg.find("partial=[]") != std::string::npos);
}
