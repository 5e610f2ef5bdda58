# jemalloc for the fleet's own programs (bridge-broker, bridge-worker, bridge-loadtest), from
# Debian's libjemalloc-dev. A tiny job allocates and frees a few dozen small blocks in each of them,
# many on one thread and freed on another (ZeroMQ's I/O thread allocates a message that the main
# thread frees), and jemalloc carried 6% more tiny jobs than glibc's malloc in alternating runs
# (docs/performance.md, #18). Not with sanitizers, which bring an allocator of their own, and not in
# the client library: a program that links it keeps the allocator it chose.
option(BRIDGE_JEMALLOC "Link the broker, the worker and bridge-loadtest with jemalloc when it is found" ON)
set(BRIDGE_JEMALLOC_LIBRARY "")
if(BRIDGE_JEMALLOC AND BRIDGE_SANITIZE STREQUAL "" AND NOT BRIDGE_FUZZ)
  find_library(JEMALLOC_LIBRARY NAMES jemalloc)
  if(JEMALLOC_LIBRARY)
    set(BRIDGE_JEMALLOC_LIBRARY "${JEMALLOC_LIBRARY}")
  else()
    message(WARNING "jemalloc not found (libjemalloc-dev; scripts/install-deps): the programs use glibc's malloc")
  endif()
endif()

# Links `target` (a program) with jemalloc, and with the settings jemalloc reads at start-up.
function(bridge_use_fleet_allocator target)
  if(BRIDGE_JEMALLOC_LIBRARY)
    target_sources(${target} PRIVATE "${PROJECT_SOURCE_DIR}/libbridge/src/core/jemalloc_settings.cpp")
    target_link_libraries(${target} PRIVATE "${BRIDGE_JEMALLOC_LIBRARY}")
  endif()
endfunction()
