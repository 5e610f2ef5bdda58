#include "bridge/worker/actor_host.hpp"

namespace bridge::worker {

void Activation::keep(const std::string& name, Tensor tensor) {
  tensors[name] = std::move(tensor);
  device_copies[name] = std::make_shared<DeviceCopy>();
}

std::shared_ptr<DeviceCopy> Activation::device_copy(const std::string& name) {
  auto& copy = device_copies[name];
  if (!copy) copy = std::make_shared<DeviceCopy>();
  return copy;
}

void ActorHost::activate(const std::string& actor, Activation activation) { actors_[actor] = std::move(activation); }

void ActorHost::deactivate(const std::string& actor) { actors_.erase(actor); }

Activation* ActorHost::find(const std::string& actor) {
  auto it = actors_.find(actor);
  return it == actors_.end() ? nullptr : &it->second;
}

std::uint64_t ActorHost::resident_bytes() const {
  std::uint64_t total = 0;
  for (const auto& [key, activation] : actors_)
    for (const auto& [name, tensor] : activation.tensors) total += tensor.byte_size();
  return total;
}

}  // namespace bridge::worker
