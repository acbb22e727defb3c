# Layering check: a header may include headers of its own layer and of the layers below it,
# never one above. The order is declared once, by the umbrella header: the layers appear in
# include/kvcanary/kvcanary.hpp in order, lowest first (core -> io -> ... -> run).
#
#   cmake -DINCLUDE_DIR=<dir holding kvcanary/> -P cmake/check_layers.cmake
#
# Fails (FATAL_ERROR, non-zero exit) naming every offending file and line when
#   - a header includes "kvcanary/<layer>/..." of a higher layer (an include pointing up),
#   - a folder under kvcanary/ is not a layer of the umbrella,
#   - a header is not reachable from the umbrella (directly, through the headers it includes, or
#     as an opt-in header the umbrella names in a `// opt-in: "kvcanary/..."` line),
# so the umbrella's order stays true and `#include <kvcanary/kvcanary.hpp>` gives everything.
# A new compressor reached through kv/registry.hpp needs no umbrella line. The root CMakeLists runs it at configure time and
# tests/CMakeLists.txt registers it (with a deliberate violation) as ctest cases.

if(NOT INCLUDE_DIR)
  message(FATAL_ERROR "check_layers.cmake: pass -DINCLUDE_DIR=<directory that holds kvcanary/>")
endif()
set(root "${INCLUDE_DIR}/kvcanary")
set(umbrella "${root}/kvcanary.hpp")
if(NOT EXISTS "${umbrella}")
  message(FATAL_ERROR "check_layers.cmake: ${umbrella}: not found (the umbrella declares the layer order)")
endif()

# The layer order: first appearance of each kvcanary/<layer>/ in the umbrella's includes.
file(STRINGS "${umbrella}" umbrella_includes REGEX "^(#include|// opt-in:) \"kvcanary/[a-z_]+/")
set(layers "")
set(listed "")
foreach(line IN LISTS umbrella_includes)
  string(REGEX MATCH "kvcanary/([a-z_]+)/([^\"]+)" _ "${line}")
  list(FIND layers "${CMAKE_MATCH_1}" at)
  if(at EQUAL -1)
    list(APPEND layers "${CMAKE_MATCH_1}")
  endif()
  list(APPEND listed "${CMAKE_MATCH_1}/${CMAKE_MATCH_2}")
endforeach()

set(problems "")
file(GLOB folders LIST_DIRECTORIES true RELATIVE "${root}" "${root}/*")
foreach(folder IN LISTS folders)
  if(IS_DIRECTORY "${root}/${folder}")
    list(FIND layers "${folder}" at)
    if(at EQUAL -1)
      list(APPEND problems "${root}/${folder}: folder is not a layer of the umbrella (${umbrella} lists: ${layers})")
    endif()
  endif()
endforeach()

file(GLOB_RECURSE headers RELATIVE "${root}" "${root}/*/*.hpp" "${root}/*/*.h")
foreach(header IN LISTS headers)
  string(REGEX MATCH "^([a-z_]+)/" _ "${header}")
  set(own "${CMAKE_MATCH_1}")
  list(FIND layers "${own}" own_rank)
  if(own_rank EQUAL -1)
    continue()  # reported above, once per folder
  endif()
  file(STRINGS "${root}/${header}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]kvcanary/")
  foreach(inc IN LISTS includes)
    string(REGEX MATCH "kvcanary/([a-z_]+)/" _ "${inc}")
    set(target "${CMAKE_MATCH_1}")
    list(FIND layers "${target}" target_rank)
    if(target_rank GREATER own_rank)
      string(STRIP "${inc}" inc)
      list(JOIN layers " -> " order)
      list(APPEND problems "${root}/${header}: '${inc}' points up (a ${own}/ header includes only ${own}/ and the layers before it in ${order})")
    endif()
  endforeach()
endforeach()

# Reachability: breadth-first from the umbrella's includes.
set(reached "${listed}")
set(frontier "${listed}")
while(frontier)
  set(next "")
  foreach(header IN LISTS frontier)
    if(NOT EXISTS "${root}/${header}")
      list(APPEND problems "${umbrella}: includes kvcanary/${header}, which does not exist")
      continue()
    endif()
    file(STRINGS "${root}/${header}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]kvcanary/")
    foreach(inc IN LISTS includes)
      string(REGEX MATCH "kvcanary/([a-z_]+/[^\">]+)" _ "${inc}")
      list(FIND reached "${CMAKE_MATCH_1}" seen)
      if(seen EQUAL -1)
        list(APPEND reached "${CMAKE_MATCH_1}")
        list(APPEND next "${CMAKE_MATCH_1}")
      endif()
    endforeach()
  endforeach()
  set(frontier "${next}")
endwhile()
foreach(header IN LISTS headers)
  list(FIND reached "${header}" seen)
  if(seen EQUAL -1)
    list(APPEND problems "${root}/${header}: not reachable from the umbrella ${umbrella} (add it there or include it from a header that is)")
  endif()
endforeach()

if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "layering check failed:\n  ${text}")
endif()
list(JOIN layers " -> " order)
message(STATUS "layering ok: ${order}")
