// Runs on every machine: the CUDA plugin loads, and without a usable GPU it says why in CUDA's words
// (so a worker's "serving on the CPU" log names the real cause).
#include <gtest/gtest.h>

#include "bridge/worker/cpu_backend.hpp"
#include "gpu_test_support.hpp"

namespace bridge::testing {
namespace {

TEST(CudaPlugin, LoadsAndEitherRunsOrNamesTheCudaError) {
  worker::CudaBackendOptions options;
  options.cpu = std::make_shared<worker::CpuBackend>(worker::CpuBackend::Options{1});
  std::string why;
  auto backend = worker::load_cuda_backend(cuda_plugin_path(), options, why);
  if (backend) {
    EXPECT_EQ(backend->device().kind, DeviceKind::kCuda);
    return;
  }
  EXPECT_EQ(why.find("no CUDA backend plugin"), std::string::npos) << why;
  EXPECT_EQ(why.find("undefined symbol"), std::string::npos) << why;
  EXPECT_TRUE(why.rfind("cuda", 0) == 0 || why.find("does not exist") != std::string::npos) << why;
}

TEST(CudaPlugin, MissingPluginIsReportedNotFatal) {
  worker::CudaBackendOptions options;
  options.cpu = std::make_shared<worker::CpuBackend>(worker::CpuBackend::Options{1});
  std::string why;
  EXPECT_EQ(worker::load_cuda_backend("/nonexistent/libbridge_cuda.so", options, why), nullptr);
  EXPECT_NE(why.find("not found"), std::string::npos) << why;
}

}  // namespace
}  // namespace bridge::testing
