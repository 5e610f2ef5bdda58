#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "bridge/worker/cuda_plugin.hpp"
#include "bridge/worker/kernel.hpp"

namespace bridge::worker {
namespace {

// Owns the backend the plugin made. The plugin is never unloaded: tensors it allocated (pinned
// memory with a deleter in the plugin's code) may outlive the backend, in ZeroMQ's queues.
class PluginBackend final : public Backend {
 public:
  explicit PluginBackend(Backend* inner) : inner_(inner) {}
  const DeviceInfo& device() const override { return inner_->device(); }
  DeviceMetrics metrics() override { return inner_->metrics(); }
  void execute(std::unique_ptr<Execution> execution, const Completion& done) override {
    inner_->execute(std::move(execution), done);
  }
  void wait_idle() override { inner_->wait_idle(); }
  Tensor allocate_output(const OutputSpec& spec) override { return inner_->allocate_output(spec); }
  bool run_inline(Execution& execution) override { return inner_->run_inline(execution); }
  bool runs_inline(const Execution& execution) const override { return inner_->runs_inline(execution); }

 private:
  std::unique_ptr<Backend> inner_;
};

// The checks before the create function is called (cuda_plugin.hpp): ABI version, build identity,
// and a CPU twin for every GPU kernel. An empty string: the plugin may be created.
std::string refusal(void* handle, const std::string& path) {
  auto version = reinterpret_cast<BackendAbiVersionFn>(::dlsym(handle, kBackendAbiVersionSymbol));
  if (version == nullptr)
    return path + " exports no " + kBackendAbiVersionSymbol +
           ": it predates versioned plugins; use the libbridge_cuda.so built with this bridge-worker";
  if (const std::uint32_t theirs = version(); theirs != kBackendAbiVersion)
    return path + " speaks backend ABI version " + std::to_string(theirs) + ", this bridge-worker version " +
           std::to_string(kBackendAbiVersion) + ": use the libbridge_cuda.so built with this bridge-worker";
  auto build_id = reinterpret_cast<BackendBuildIdFn>(::dlsym(handle, kBackendBuildIdSymbol));
  const char* theirs = build_id != nullptr ? build_id() : nullptr;
  if (theirs == nullptr || theirs != backend_build_id())
    return path + " was built as '" + (theirs != nullptr ? theirs : "?") + "', this bridge-worker as '" +
           backend_build_id() + "': use the libbridge_cuda.so built with this bridge-worker";
  auto gpu_kernels = reinterpret_cast<BackendGpuKernelsFn>(::dlsym(handle, kBackendGpuKernelsSymbol));
  if (gpu_kernels == nullptr) return path + " exports no " + kBackendGpuKernelsSymbol;
  std::string names = gpu_kernels() != nullptr ? gpu_kernels() : "";
  for (std::size_t start = 0; start < names.size();) {
    const std::size_t end = std::min(names.find(',', start), names.size());
    const std::string name = names.substr(start, end - start);
    if (!name.empty() && KernelRegistry::global().find(name) == nullptr)
      return path + " has a GPU kernel '" + name + "' with no CPU twin in this bridge-worker's catalog " +
             "(the CPU runs every kernel the GPU cannot): the plugin and the worker are of different builds";
    start = end + 1;
  }
  return {};
}

std::filesystem::path executable_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

}  // namespace

std::unique_ptr<Backend> load_cuda_backend(const std::string& explicit_path, const CudaBackendOptions& options,
                                           std::string& error) {
  std::vector<std::string> candidates;
  if (!explicit_path.empty()) {
    candidates.push_back(explicit_path);
  } else {
    const auto dir = executable_dir();
    candidates.push_back((dir / "cuda" / kCudaPluginFile).string());                      // build tree
    candidates.push_back((dir / BRIDGE_CUDA_PLUGIN_INSTALL_DIR / kCudaPluginFile).string());  // installed
    candidates.push_back(kCudaPluginFile);                                                 // library path
  }
  std::string tried;
  for (const auto& path : candidates) {
    if (path.find('/') != std::string::npos && !std::filesystem::exists(path)) {
      tried += (tried.empty() ? "" : "; ") + path + ": not found";
      continue;
    }
    // RTLD_LOCAL: the plugin's CUDA libraries stay out of the worker's global symbol namespace.
    // RTLD_NODELETE: a loaded plugin is never unloaded, refused or not. Its tensors may outlive
    // the backend, and CUDA's libraries, once loaded, keep state that unloading would leak.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      tried += (tried.empty() ? "" : "; ") + path + ": " + (why ? why : "cannot load");
      continue;
    }
    if (std::string why = refusal(handle, path); !why.empty()) {
      error = why;
      ::dlclose(handle);
      return nullptr;
    }
    auto create = reinterpret_cast<CreateCudaBackendFn>(::dlsym(handle, kCreateCudaBackendSymbol));
    if (create == nullptr) {
      error = path + " does not export " + kCreateCudaBackendSymbol;
      ::dlclose(handle);
      return nullptr;
    }
    Backend* backend = create(options, error);
    if (backend == nullptr) {
      ::dlclose(handle);
      return nullptr;
    }
    return std::make_unique<PluginBackend>(backend);
  }
  error = "no CUDA backend plugin (" + tried + ")";
  return nullptr;
}

}  // namespace bridge::worker
