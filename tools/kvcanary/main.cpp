// kvcanary: the command-line face of the library. Every subcommand prints its result on
// stdout; bad input ends with one line on stderr naming the file and field, and exit 2.

#include <kvcanary/kvcanary.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cmd_convert.hpp"
#include "cmd_exec.hpp"
#include "cmd_merge.hpp"
#include "cmd_model.hpp"
#include "cmd_report.hpp"
#include "cmd_sweep.hpp"
#include "cmd_tokenize.hpp"
#include "cmd_toolcheck.hpp"

namespace {

using namespace kvcanary::cli;

struct Subcommand {
  const Command& (*spec)();
  int (*run)(const Args&, int argc, char** argv);
};

// Every subcommand, in the order `kvcanary --help` lists them.
const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> all = {
      {generate_command, [](const Args& a, int, char**) { return run_generate(a); }},
      {ppl_command, [](const Args& a, int, char**) { return run_ppl(a); }},
      {compressors_command, [](const Args& a, int, char**) { return run_compressors(a); }},
      {tokenize_command, [](const Args& a, int, char**) { return run_tokenize(a); }},
      {logits_command, [](const Args& a, int, char**) { return run_logits(a); }},
      {check_reference_command, [](const Args& a, int, char**) { return run_check_reference(a); }},
      {convert_gguf_command, [](const Args& a, int, char**) { return run_convert_gguf(a); }},
      {exec_command, [](const Args& a, int, char**) { return run_exec(a); }},
      {toolcheck_command, [](const Args& a, int, char**) { return run_toolcheck(a); }},
      {report_command, [](const Args& a, int, char**) { return run_report(a); }},
      {merge_command, [](const Args& a, int, char**) { return run_merge(a); }},
      {sweep_command, [](const Args& a, int argc, char** argv) { return run_sweep(a, argc, argv); }},
  };
  return all;
}

std::string usage() {
  std::string s =
      "usage: kvcanary COMMAND [options]    (kvcanary COMMAND --help: its options and defaults)\n\ncommands:\n";
  for (const auto& sc : subcommands()) {
    const Command& c = sc.spec();
    std::string head = "  " + c.name + (c.positional.empty() ? "" : " " + c.positional);
    if (head.size() < 36)
      head.resize(36, ' ');
    else
      head += "\n" + std::string(36, ' ');
    s += head + c.summary + "\n";
  }
  return s;
}

int dispatch(int argc, char** argv) {
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(usage().c_str(), stdout);
    return 0;
  }
  for (const auto& sc : subcommands()) {
    const Command& c = sc.spec();
    if (c.name != cmd) continue;
    return run_with_args(c, argc - 1, argv + 1, [&](const Args& args) { return sc.run(args, argc, argv); });
  }
  std::fprintf(stderr, "kvcanary: unknown command '%s' (kvcanary --help lists the commands)\n", cmd.c_str());
  return kvcanary::kBadInputExitCode;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(usage().c_str(), stderr);
    return kvcanary::kBadInputExitCode;
  }
  try {
    return dispatch(argc, argv);
  } catch (const kvcanary::Error& e) {
    std::fprintf(stderr, "kvcanary: error: %s\n", e.what());
    return kvcanary::kBadInputExitCode;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kvcanary: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvcanary: internal error: %s\n", e.what());
    return 1;
  }
}
