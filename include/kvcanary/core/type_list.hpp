#pragma once
// Compile-time lists of types, spelled std::tuple<Ts...> (the compressor and task registries,
// a sweep's own shorter lists). The tuple is never built: these walk its element types, so a
// listed type need not be default-constructible. Each helper calls a generic lambda as
// `f.template operator()<T>()`, written at the call site as `[&]<class T>() { … }`.
//
// Choosing a registered type by a run-time name is find_first: the registries, Composed and
// the sweep's task table all go through it.

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>

namespace kvcanary::type_list {

// std::variant over List's types: a run-time choice of one of them (a sweep's task, AnyPolicyOf's
// policy).
template <class List>
struct variant_of;
template <class... T>
struct variant_of<std::tuple<T...>> {
  using type = std::variant<T...>;
};
template <class List>
using variant_of_t = typename variant_of<List>::type;

// f<T>() for every T of List, in order.
template <class List, class F>
void for_each(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) { (f.template operator()<std::tuple_element_t<I, List>>(), ...); }
  (std::make_index_sequence<std::tuple_size_v<List>>{});
}

// Whether pred<T>() holds for some T of List (stops at the first).
template <class List, class Pred>
bool any_of(Pred&& pred) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return (pred.template operator()<std::tuple_element_t<I, List>>() || ...);
  }
  (std::make_index_sequence<std::tuple_size_v<List>>{});
}

// Calls f<T>() for the first T of List with matches<T>(); false when no T matches.
template <class List, class Match, class F>
bool find_first(Match&& matches, F&& f) {
  return any_of<List>([&]<class T>() {
    if (!matches.template operator()<T>()) return false;
    f.template operator()<T>();
    return true;
  });
}

// "a, b, c": name_of<T>() of every T of List, for "unknown X (known: …)" errors.
template <class List, class NameOf>
std::string join_names(NameOf&& name_of) {
  std::string out;
  for_each<List>([&]<class T>() {
    if (!out.empty()) out += ", ";
    out += std::string_view(name_of.template operator()<T>());
  });
  return out;
}

}  // namespace kvcanary::type_list
