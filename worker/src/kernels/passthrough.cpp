// passthrough: returns its inputs unchanged (any count, any dtype). Measures the fleet's own cost.
#include <cstring>

#include "checks.hpp"

namespace bridge::worker {
namespace {

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  for (const Tensor& t : args.inputs) outputs.push_back({t.name(), t.dtype(), t.shape()});
  return {};
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const auto in = args.inputs[i].bytes();
    if (!in.empty()) std::memcpy(outputs[i].mutable_bytes().data(), in.data(), in.size());
  }
}

KernelSpec make_spec() {
  return {.name = "passthrough",
          .summary = "any tensors -> the same tensors",
          .plan = plan,
          .run_cpu = run_cpu,
          .batchable = true,
          .writes_every_output = true,
          .bytes_bound = true};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
