#include <algorithm>
#include <stdexcept>

#include "bridge/worker/kernel.hpp"

namespace bridge::worker {

const double* KernelArgs::find_param(std::string_view name) const {
  if (params == nullptr) return nullptr;
  for (const auto& [key, value] : *params)
    if (key == name) return &value;
  return nullptr;
}

KernelRegistry& KernelRegistry::global() {
  static KernelRegistry registry;
  return registry;
}

void KernelRegistry::add(KernelSpec spec) {
  if (spec.name.empty() || spec.plan == nullptr || spec.run_cpu == nullptr)
    throw std::logic_error("kernel '" + spec.name + "' is registered without a name, plan or CPU implementation");
  if (find(spec.name) != nullptr) throw std::logic_error("kernel '" + spec.name + "' is registered twice");
  kernels_.push_back(std::move(spec));
}

const KernelSpec* KernelRegistry::find(std::string_view name) const {
  for (const auto& k : kernels_)
    if (k.name == name) return &k;
  return nullptr;
}

std::vector<std::string> KernelRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& k : kernels_) out.push_back(k.name);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace bridge::worker
