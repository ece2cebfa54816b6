# Precompiled headers for the heavy third-party headers (nlohmann_json, spdlog, prometheus-cpp,
# GoogleTest): parsing is ~2.3 s of a translation unit's ~6 s (measured on router's
# event_router.cpp; the rest is code generation, see docs/build.md). agentline_common compiles one PCH and
# every other library and executable of the given folders reuses it; each test executable has
# one of its own that adds GoogleTest. All of them are compiled with the same flags, which
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
  foreach(dir IN LISTS ARGN)
    agentline_targets_in(${PROJECT_SOURCE_DIR}/${dir} targets)
    foreach(target IN LISTS targets)
      get_target_property(type ${target} TYPE)
      if(NOT type MATCHES "^(STATIC_LIBRARY|EXECUTABLE)$" OR target STREQUAL "agentline_common")
        continue()
      endif()
      if(target MATCHES "_tests$")
        # Its own PCH: an executable of a TSan build exports its symbols and so defines
        # <target>_EXPORTS, which makes another executable's PCH invalid for it.
        target_precompile_headers(${target} PRIVATE ${AGENTLINE_PCH_HEADERS} <gtest/gtest.h>)
      else()
        target_precompile_headers(${target} REUSE_FROM agentline_common)
      endif()
    endforeach()
  endforeach()
endfunction()
