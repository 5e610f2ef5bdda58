#include "bridge/actor.hpp"

namespace bridge {

std::future<JobResult> Actor::call(ActorCall call) {
  JobRequest request;
  request.kernel = std::move(call.kernel);
  request.params = std::move(call.params);
  request.tenant = tenant_;
  request.actor_id = id_;
  request.placement = call.placement;
  request.timeout = call.timeout;
  request.keep_outputs = std::move(call.keep);
  bool any_resident = false;
  for (ActorArg& arg : call.args) {
    any_resident |= !arg.resident.empty();
    request.resident_inputs.push_back(arg.resident);
    request.inputs.push_back(std::move(arg.tensor));
  }
  if (!any_resident) request.resident_inputs.clear();
  return client_->submit(std::move(request));
}

std::future<JobResult> Actor::put(const std::string& name, Tensor tensor) {
  return call({.kernel = "passthrough", .args = {std::move(tensor)}, .keep = {name}});
}

std::future<JobResult> Actor::get(const std::string& name) {
  return call({.kernel = "passthrough", .args = {Resident{name}}});
}

}  // namespace bridge
