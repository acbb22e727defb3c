# Shared between the build tree and the installed package config, so a consumer
# resolves exactly the dependencies the headers were written against.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(Eigen3 3.3 NO_MODULE)
find_dependency(xtensor)
find_dependency(simdjson)
find_dependency(tomlplusplus)
find_dependency(nlohmann_json)
# zlib reads HumanEval.jsonl.gz (io/gzip_file.hpp).
find_dependency(ZLIB)
find_dependency(PkgConfig)
if(NOT TARGET PkgConfig::PCRE2)
  pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET GLOBAL libpcre2-8)
endif()
# cairo draws the report's chart (run/chart.hpp): one drawing, an SVG and a PNG surface.
if(NOT TARGET PkgConfig::CAIRO)
  pkg_check_modules(CAIRO REQUIRED IMPORTED_TARGET GLOBAL cairo)
endif()

function(kvcanary_link_dependencies target)
  target_link_libraries(${target} INTERFACE
    Threads::Threads Eigen3::Eigen xtensor simdjson::simdjson
    tomlplusplus::tomlplusplus nlohmann_json::nlohmann_json PkgConfig::PCRE2
    PkgConfig::CAIRO ZLIB::ZLIB)
endfunction()
