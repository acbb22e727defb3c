# ctest case for cmake/check_layers.cmake: the real include tree passes, and a small tree with
# each kind of violation fails with every offending file named (so the check cannot pass by
# checking nothing).
#   cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch> -P tests/layering/check_layers_test.cmake
set(check "${SOURCE_DIR}/cmake/check_layers.cmake")

execute_process(COMMAND ${CMAKE_COMMAND} -DINCLUDE_DIR=${SOURCE_DIR}/include -P ${check}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "layering ok: core -> io -> ops -> kv -> model -> engine -> task -> run")
  message(FATAL_ERROR "the real include tree failed the layering check (rc ${rc}):\n${out}${err}")
endif()

# A tree with an include pointing up, a folder outside the layers and a header nothing in the
# umbrella reaches; headers reached through another header (reached.hpp, kernels-inl.h) are fine.
set(bad "${WORK_DIR}/include/kvcanary")
file(REMOVE_RECURSE "${WORK_DIR}")
file(WRITE "${bad}/kvcanary.hpp" "#pragma once\n#include \"kvcanary/low/a.hpp\"\n#include \"kvcanary/high/b.hpp\"\n")
file(WRITE "${bad}/low/a.hpp" "#pragma once\n#include \"kvcanary/high/b.hpp\"\n")
file(WRITE "${bad}/low/unlisted.hpp" "#pragma once\n")
file(WRITE "${bad}/low/kernels-inl.h" "#include \"kvcanary/low/a.hpp\"\n")
file(WRITE "${bad}/low/reached.hpp" "#pragma once\n")
file(WRITE "${bad}/high/b.hpp" "#pragma once\n#include \"kvcanary/low/a.hpp\"\n#include \"kvcanary/low/reached.hpp\"\n#include \"kvcanary/low/kernels-inl.h\"\n")
file(WRITE "${bad}/stray/c.hpp" "#pragma once\n")
execute_process(COMMAND ${CMAKE_COMMAND} -DINCLUDE_DIR=${WORK_DIR}/include -P ${check}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "a tree with violations passed the layering check:\n${all}")
endif()
foreach(expected
    "low/a.hpp: '#include \"kvcanary/high/b.hpp\"' points up"
    "stray: folder is not a layer"
    "low/unlisted.hpp: not reachable from the umbrella")
  string(FIND "${all}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the layering check did not report \"${expected}\":\n${all}")
  endif()
endforeach()
foreach(not_expected "high/b.hpp" "kernels-inl.h" "reached.hpp")
  string(FIND "${all}" "${not_expected}:" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "the layering check reported an allowed include or internal header (${not_expected}):\n${all}")
  endif()
endforeach()
message(STATUS "layering check: real tree ok, violations reported")
