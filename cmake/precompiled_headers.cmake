# Precompiled headers for the heavy third-party headers (nlohmann_json, spdlog, prometheus-cpp,
# GoogleTest): they cost ~4 s of a translation unit's ~6 s. agentline_common compiles one PCH and
# every other library and executable of the given folders reuses it; the two test executables
# share a second one that adds GoogleTest. All of them are compiled with the same flags, which
# is what reusing a PCH requires.
set(AGENTLINE_PCH_HEADERS
  <algorithm> <atomic> <chrono> <cstdint> <functional> <map> <memory> <mutex> <optional> <string>
  <string_view> <thread> <unordered_map> <vector>
  <nlohmann/json.hpp> <spdlog/spdlog.h>
  <prometheus/counter.h> <prometheus/gauge.h> <prometheus/histogram.h> <prometheus/registry.h>)

function(agentline_targets_in dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    agentline_targets_in(${sub} sub_targets)
    list(APPEND targets ${sub_targets})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

function(agentline_precompile_headers)
  target_precompile_headers(agentline_common PRIVATE ${AGENTLINE_PCH_HEADERS})
  if(BUILD_TESTING)
    target_precompile_headers(agentline_unit_tests PRIVATE ${AGENTLINE_PCH_HEADERS} <gtest/gtest.h>)
  endif()
  foreach(dir IN LISTS ARGN)
    agentline_targets_in(${PROJECT_SOURCE_DIR}/${dir} targets)
    foreach(target IN LISTS targets)
      get_target_property(type ${target} TYPE)
      if(NOT type MATCHES "^(STATIC_LIBRARY|EXECUTABLE)$" OR target MATCHES "^(agentline_common|agentline_unit_tests)$")
        continue()
      endif()
      if(target MATCHES "_tests$")
        target_precompile_headers(${target} REUSE_FROM agentline_unit_tests)
      else()
        target_precompile_headers(${target} REUSE_FROM agentline_common)
      endif()
    endforeach()
  endforeach()
endfunction()
