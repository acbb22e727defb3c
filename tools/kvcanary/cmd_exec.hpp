#pragma once
// `kvcanary exec FILE.py [--timeout S]`
// Runs FILE.py in the code-execution sandbox and prints one JSON line with the verdict. The
// verdict is data, not a failure of the command: the exit status is 0 whatever it is; only bad
// arguments (exit 2 via kvcanary::Error) and a harness that cannot start Python are errors.

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "args.hpp"
#include "kvcanary/core/error.hpp"
#include "kvcanary/task/code_exec.hpp"

namespace kvcanary::cli {

inline const Command& exec_command() {
  static const Command c{"exec",
                         "FILE.py",
                         1,
                         1,
                         "run a Python program in the sandbox, verdict as JSON",
                         "Runs FILE.py in the code-execution sandbox and prints\n"
                         "{\"status\", \"exit_code\", \"seconds\", \"stderr_tail\", \"signal\", \"isolation\"}; exit 0 "
                         "whatever the verdict.",
                         {{"--timeout", "S", std::to_string(static_cast<int>(task::ExecLimits{}.timeout_s)),
                           "wall-clock limit in seconds, in (0, 86400]"}}};
  return c;
}

inline int run_exec(const Args& args) {
  const std::string file = args.positional().at(0);
  task::ExecLimits limits;
  if (args.has("--timeout")) {
    const std::string s = args.get("--timeout");
    char* end = nullptr;
    const double t = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !(t > 0) || t > 86400)
      fail("command line", "--timeout", "'" + s + "' is not a number of seconds in (0, 86400]");
    limits.timeout_s = t;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file, "FILE.py", "cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  const task::ExecResult r = task::run_python(ss.str(), limits);
  const nlohmann::ordered_json j = {{"status", r.status},   {"exit_code", r.exit_code},
                                    {"seconds", r.seconds}, {"stderr_tail", r.stderr_tail},
                                    {"signal", r.signal},   {"isolation", r.isolation}};
  // A program may print invalid UTF-8; the line must still be valid JSON.
  const std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
  return 0;
}

// argv[0] is the command's name ("exec"), the options follow.
inline int run_exec(int argc, char** argv) {
  return run_with_args(exec_command(), argc, argv, [](const Args& a) { return run_exec(a); });
}

}  // namespace kvcanary::cli
