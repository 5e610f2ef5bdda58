// A backend plugin that must be refused before it is created (tests/unit/plugin_abi_test.cpp). Built
// three ways: TEST_PLUGIN_ABI_VERSION another boundary version; TEST_PLUGIN_BUILD_ID another build;
// TEST_PLUGIN_GPU_KERNELS a GPU kernel the worker's catalog lacks. Its create function aborts: a
// loader that calls it has let a plugin through that it must not.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "bridge/worker/cuda_plugin.hpp"

#define TEST_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

TEST_PLUGIN_EXPORT std::uint32_t bridge_backend_abi_version() { return TEST_PLUGIN_ABI_VERSION; }

TEST_PLUGIN_EXPORT const char* bridge_backend_build_id() {
#ifdef TEST_PLUGIN_BUILD_ID
  return TEST_PLUGIN_BUILD_ID;
#else
  static const std::string id = bridge::worker::backend_build_id();
  return id.c_str();
#endif
}

TEST_PLUGIN_EXPORT const char* bridge_backend_gpu_kernels() { return TEST_PLUGIN_GPU_KERNELS; }

TEST_PLUGIN_EXPORT bridge::worker::Backend* bridge_create_cuda_backend(const bridge::worker::CudaBackendOptions&,
                                                                       std::string&) {
  std::abort();
}
