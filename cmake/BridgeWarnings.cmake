# Private warning flags: linked PRIVATE by every first-party target, never exported to users.
add_library(bridge_warnings INTERFACE)
target_compile_options(bridge_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wno-missing-field-initializers
  # GCC 12 reports false -Wrestrict positives inside std::string at -O3 (GCC bug 105329).
  $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>>)
if(BRIDGE_WERROR)
  target_compile_options(bridge_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()

if(BRIDGE_SANITIZE)
  string(REPLACE "," ";" _sanitizers "${BRIDGE_SANITIZE}")
  foreach(_s IN LISTS _sanitizers)
    if(NOT _s MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR "BRIDGE_SANITIZE: unknown sanitizer '${_s}' (use address, undefined, thread or leak)")
    endif()
  endforeach()
  if("thread" IN_LIST _sanitizers AND "address" IN_LIST _sanitizers)
    message(FATAL_ERROR "BRIDGE_SANITIZE: thread and address sanitizers cannot be combined")
  endif()
  # C++ only: nvcc does not take these (CUDA device code is checked with compute-sanitizer instead).
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${BRIDGE_SANITIZE}> $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>)
  add_link_options(-fsanitize=${BRIDGE_SANITIZE})
endif()

if(BRIDGE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "BRIDGE_FUZZ needs clang (libFuzzer): configure with CXX=clang++ (scripts/fuzz does)")
  endif()
  # Coverage instrumentation for everything; the fuzz targets alone link libFuzzer's main.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link>)
endif()
