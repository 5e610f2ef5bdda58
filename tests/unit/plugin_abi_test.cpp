// The loader refuses a backend plugin of another ABI version, of another build, or with a GPU
// kernel that has no CPU twin, naming both sides, before it calls the plugin's create function
// (which, in these test plugins, aborts).
#include <gtest/gtest.h>

#include "bridge/worker/cpu_backend.hpp"
#include "bridge/worker/cuda_plugin.hpp"

namespace bridge::worker {
namespace {

std::string refusal_of(const char* plugin) {
  CudaBackendOptions options;
  options.cpu = std::make_shared<CpuBackend>(CpuBackend::Options{1});
  std::string why;
  EXPECT_EQ(load_cuda_backend(plugin, options, why), nullptr);
  return why;
}

TEST(PluginAbi, APluginOfAnotherAbiVersionIsRefusedNamingBothVersions) {
  const std::string why = refusal_of(BRIDGE_TEST_STALE_ABI_PLUGIN);
  EXPECT_NE(why.find("backend ABI version " + std::to_string(kBackendAbiVersion + 1)), std::string::npos) << why;
  EXPECT_NE(why.find("this bridge-worker version " + std::to_string(kBackendAbiVersion)), std::string::npos) << why;
  EXPECT_NE(why.find("use the libbridge_cuda.so built with this bridge-worker"), std::string::npos) << why;
}

TEST(PluginAbi, APluginOfAnotherBuildIsRefusedNamingBothBuilds) {
  const std::string why = refusal_of(BRIDGE_TEST_OTHER_BUILD_PLUGIN);
  EXPECT_NE(why.find("was built as 'gpubridge 0.0.0 an older compiler'"), std::string::npos) << why;
  EXPECT_NE(why.find("this bridge-worker as '" + backend_build_id() + "'"), std::string::npos) << why;
}

TEST(PluginAbi, AGpuKernelWithoutACpuTwinIsRefused) {
  const std::string why = refusal_of(BRIDGE_TEST_FOREIGN_KERNEL_PLUGIN);
  EXPECT_NE(why.find("GPU kernel 'fft_3d' with no CPU twin"), std::string::npos) << why;
  EXPECT_EQ(why.find("vector_add"), std::string::npos) << "vector_add has its CPU twin: " << why;
}

TEST(PluginAbi, TheBuildIdentityNamesTheVersionCompilerAndCrossingSizes) {
  const std::string id = backend_build_id();
  EXPECT_EQ(id.rfind("gpubridge ", 0), 0u) << id;
  EXPECT_NE(id.find(" sizes "), std::string::npos) << id;
}

}  // namespace
}  // namespace bridge::worker
