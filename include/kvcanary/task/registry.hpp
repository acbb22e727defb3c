#pragma once
// Compile-time tasks chosen at run time by their config `type`. A sweep instantiates its run
// loop once per (compressor, task) type pair from these lists; an example program may pass a
// shorter list. Adding a task: its header, its test, and one entry in `AllTasks`.

#include <string>
#include <string_view>
#include <tuple>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/type_list.hpp"
#include "kvcanary/task/bfcl_task.hpp"
#include "kvcanary/task/heldout_perplexity.hpp"
#include "kvcanary/task/humaneval_task.hpp"
#include "kvcanary/task/seed_tool_task.hpp"
#include "kvcanary/task/task.hpp"

namespace kvcanary::task {

using AllTasks = std::tuple<HumanEvalTask, BfclTask, SeedToolTask, HeldOutPerplexity>;

// What a list entry must have, one requirement per static_assert so that the error names the
// missing member (and, in its "required from" line, the task type).
template <class T>
consteval bool registrable_task() {
  static_assert(
      requires {
        { T::type } -> std::convertible_to<std::string_view>;
      },
      "a task needs `static constexpr std::string_view type` (its [[tasks]] type)");
  static_assert(
      requires(const io::ConfigTable& t, const TaskContext& c) {
        { T::from_config(t, c) } -> std::same_as<T>;
      },
      "a task needs `static T from_config(const io::ConfigTable&, const TaskContext&)`");
  static_assert(FunctionalTask<T> || PerplexityTask<T>,
                "a task must satisfy FunctionalTask or PerplexityTask (task/task.hpp)");
  return true;
}
static_assert([]<std::size_t... I>(std::index_sequence<I...>) {
  return (registrable_task<std::tuple_element_t<I, AllTasks>>() && ...);
}(std::make_index_sequence<std::tuple_size_v<AllTasks>>{}));

template <class Tuple>
std::string known_task_types() {
  return type_list::join_names<Tuple>([]<class T>() { return T::type; });
}

}  // namespace kvcanary::task
