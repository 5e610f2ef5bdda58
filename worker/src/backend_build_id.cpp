#include <string>

#include "bridge/worker/cuda_plugin.hpp"

namespace bridge::worker {

std::string backend_build_id() {
  // Compiled into the worker and into the plugin alike: each side states what it was built with.
  std::string id = "gpubridge " BRIDGE_VERSION;
#if defined(__clang__)
  id += " clang " __clang_version__;
#elif defined(__GNUC__)
  id += " gcc " __VERSION__;
#endif
#if defined(_GLIBCXX_RELEASE)
  id += " libstdc++ " + std::to_string(_GLIBCXX_RELEASE) + " cxx11abi " + std::to_string(_GLIBCXX_USE_CXX11_ABI);
#endif
  id += " sizes " + std::to_string(sizeof(Execution)) + "/" + std::to_string(sizeof(Tensor)) + "/" +
        std::to_string(sizeof(CudaBackendOptions)) + "/" + std::to_string(sizeof(DeviceInfo)) + "/" +
        std::to_string(sizeof(KernelSpec));
  return id;
}

}  // namespace bridge::worker
