# Install kvcanary into a scratch prefix, then configure, build and run a consumer project.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
macro(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endmacro()
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/lib" -G "${GENERATOR}"
    -DKVCANARY_BUILD_TOOLS=OFF -DKVCANARY_BUILD_TESTS=OFF -DKVCANARY_BUILD_EXAMPLES=OFF
    -DKVCANARY_BUILD_BENCHMARKS=OFF "-DCMAKE_INSTALL_PREFIX=${prefix}")
run(${CMAKE_COMMAND} --install "${WORK_DIR}/lib")
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/app" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/app")
run("${WORK_DIR}/app/consumer")
message(STATUS "consumer: ${out}")
