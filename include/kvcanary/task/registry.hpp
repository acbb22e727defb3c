#pragma once
// Compile-time tasks chosen at run time by their config `type`. A sweep instantiates its run
// loop once per (compressor, task) type pair from these lists; an example program may pass a
// shorter list. Adding a task: its header, its test, and one entry in `AllTasks`.

#include <string>
#include <string_view>
#include <tuple>

#include "kvcanary/core/error.hpp"
#include "kvcanary/task/bfcl_task.hpp"
#include "kvcanary/task/heldout_perplexity.hpp"
#include "kvcanary/task/humaneval_task.hpp"
#include "kvcanary/task/seed_tool_task.hpp"
#include "kvcanary/task/task.hpp"

namespace kvcanary::task {

using AllTasks = std::tuple<HumanEvalTask, BfclTask, SeedToolTask, HeldOutPerplexity>;

template <class Tuple>
std::string known_task_types() {
  std::string known;
  std::apply([&](auto... tag) { ((known += (known.empty() ? "" : ", ") + std::string(decltype(tag)::type)), ...); }, Tuple{});
  return known;
}

}  // namespace kvcanary::task
