#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>

#include "bridge/worker/cuda_plugin.hpp"

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

 private:
  std::unique_ptr<Backend> inner_;
};

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
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      tried += (tried.empty() ? "" : "; ") + path + ": " + (why ? why : "cannot load");
      continue;
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
