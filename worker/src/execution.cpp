// prepare_execution and Execution::release_working_memory (backend.hpp): what a backend does first
// and last with a job, on its own thread.
#include "bridge/worker/backend.hpp"

#include <algorithm>
#include "bridge/worker/batcher.hpp"

namespace bridge::worker {

Status prepare_execution(Execution& e, const std::function<Tensor(const OutputSpec&)>& allocate_result) {
  try {
    // A batch's one copy of its members' inputs moves bytes: counted with each member's transfer_us.
    const auto stacking = std::chrono::steady_clock::now();
    stack_inputs(e);
    if (!e.members.empty())
      e.transfer_us += static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - stacking).count());
    const std::size_t steps = e.step_count();
    for (std::size_t i = 0; i < steps; ++i) {
      std::vector<Tensor>& outputs = i == 0 ? e.outputs : e.then[i - 1].outputs;
      if (!outputs.empty()) continue;
      for (OutputSpec& spec : e.step_planned(i)) {
        spec.zero_fill = !e.step_kernel(i).writes_every_output;
        // The client gets the last step's outputs: those come from the backend (pinned on a GPU
        // worker). Intermediates only matter if the job runs on the CPU.
        if (i + 1 == steps)
          outputs.push_back(allocate_result(spec));
        else
          outputs.push_back(spec.zero_fill ? Tensor::zeros(spec.dtype, spec.shape, spec.name)
                                           : Tensor::uninitialized(spec.dtype, spec.shape, spec.name));
      }
    }
  } catch (const std::exception& error) {  // bad_alloc, or a pool's refusal
    return {StatusCode::kResourceExhausted,
            std::string("the worker cannot allocate the job's buffers: ") + error.what()};
  }
  return {};
}

bool shape_bytes(const Shape& shape, DType dtype, std::uint64_t& bytes, std::uint64_t& extent) {
  bytes = extent = dtype_size(dtype);
  for (std::int64_t dim : shape)
    if (dim < 0 || __builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dim), &bytes) ||
        __builtin_mul_overflow(extent, static_cast<std::uint64_t>(std::max<std::int64_t>(dim, 1)), &extent))
      return bytes = extent = 0, false;
  return true;
}

void Execution::release_working_memory() {
  inputs = {};
  resident_copies = {};
  if (!then.empty()) outputs = {};
  for (std::size_t i = 0; i + 1 < then.size(); ++i) then[i].outputs = {};
  for (auto& member : members) member->release_working_memory();
}

}  // namespace bridge::worker
