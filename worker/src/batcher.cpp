#include "bridge/worker/batcher.hpp"

#include <cstring>

namespace bridge::worker {
namespace {

// Two executions share a launch only if everything that shapes the computation is equal, and both
// are one tenant's: a batch's size and time go back to every member, and would tell a tenant that
// another had sent the same kernel, params and shapes at the same moment.
std::string compatibility_key(const Execution& e) {
  std::string key = e.tenant;
  key += '\0';  // not a character of a tenant's name: no tenant's key is a prefix of another's
  key += e.kernel->name;
  for (const auto& [name, value] : e.params) {
    key += '|' + name + '=';
    key.append(reinterpret_cast<const char*>(&value), sizeof value);  // exact bits, not a rounded print
  }
  for (const Tensor& t : e.inputs) {
    key += '|' + std::string(dtype_name(t.dtype()));
    for (std::int64_t d : t.shape()) key += ',' + std::to_string(d);
  }
  return key;
}

Shape stacked(const Shape& shape, std::size_t count) {
  Shape out{static_cast<std::int64_t>(count)};
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

}  // namespace

bool DynamicBatcher::eligible(const Execution& e) const {
  // A job whose tenant is not known shares a launch with nobody (batches are one tenant's).
  return options_.max_batch > 1 && e.kernel != nullptr && e.kernel->batchable && e.then.empty() && e.actor.empty() &&
         !e.tenant.empty();
}

std::optional<DynamicBatcher::Group> DynamicBatcher::add(std::unique_ptr<Execution> execution, Clock::time_point now) {
  const std::string key = compatibility_key(*execution);
  auto [it, created] = pending_.try_emplace(key);
  if (created) it->second.due = now + std::chrono::microseconds(options_.max_delay_us);
  it->second.members.push_back(std::move(execution));
  ++waiting_;
  if (it->second.members.size() < options_.max_batch) return std::nullopt;
  Group full = std::move(it->second.members);
  pending_.erase(it);
  waiting_ -= full.size();
  return full;
}

std::vector<DynamicBatcher::Group> DynamicBatcher::take_due(Clock::time_point now) {
  std::vector<Group> due;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.due > now) {
      ++it;
      continue;
    }
    waiting_ -= it->second.members.size();
    due.push_back(std::move(it->second.members));
    it = pending_.erase(it);
  }
  return due;
}

std::optional<DynamicBatcher::Clock::time_point> DynamicBatcher::next_due() const {
  std::optional<Clock::time_point> first;
  for (const auto& [key, pending] : pending_)
    if (!first || pending.due < *first) first = pending.due;
  return first;
}

std::unique_ptr<Execution> stack_batch(DynamicBatcher::Group members) {
  if (members.size() == 1) return std::move(members.front());  // alone after all: runs as planned
  const Execution& first = *members.front();
  auto combined = std::make_unique<Execution>();
  combined->kernel = first.kernel;
  combined->params = first.params;
  combined->dispatch_id = first.dispatch_id;  // for logs only
  combined->batch_size = static_cast<std::uint32_t>(members.size());
  // The latest of the members' deadlines: the batch runs while any member still wants it. With the
  // earliest, one tenant's short deadline failed the others' jobs that shared its launch; a member
  // whose own deadline passes is answered DEADLINE_EXCEEDED by the broker, which drops its late result.
  combined->deadline = first.deadline;
  for (const auto& m : members) combined->deadline = std::max(combined->deadline, m->deadline);
  // Every member planned the same outputs (same kernel, params and input shapes).
  for (const OutputSpec& spec : first.planned)
    combined->planned.push_back({spec.name, spec.dtype, stacked(spec.shape, members.size())});
  combined->members = std::move(members);
  return combined;
}

void stack_inputs(Execution& combined) {
  if (combined.members.empty() || !combined.inputs.empty()) return;
  const Execution& first = *combined.members.front();
  for (std::size_t i = 0; i < first.inputs.size(); ++i) {
    const Tensor& model = first.inputs[i];
    // Every byte is written below: each member's input, in turn.
    Tensor input = Tensor::uninitialized(model.dtype(), stacked(model.shape(), combined.members.size()), model.name());
    std::byte* out = input.mutable_bytes().data();
    for (const auto& m : combined.members) {
      const auto bytes = m->inputs[i].bytes();
      if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
      out += model.byte_size();
    }
    combined.inputs.push_back(std::move(input));
  }
}

DynamicBatcher::Group unstack_batch(std::unique_ptr<Execution> combined) {
  DynamicBatcher::Group out;
  if (combined->members.empty()) {
    out.push_back(std::move(combined));
    return out;
  }
  const std::size_t count = combined->members.size();
  // The slices share the stacked outputs' bytes; the last slice to go frees them.
  std::vector<std::shared_ptr<const Tensor>> owners;
  for (const Tensor& t : combined->outputs) owners.push_back(std::make_shared<const Tensor>(t));
  for (std::size_t m = 0; m < count; ++m) {
    std::unique_ptr<Execution> member = std::move(combined->members[m]);
    // A member stopped on its own (its Cancel, deadline or run limit) keeps its own reason.
    member->status = member->cancel->requested() ? member->cancel->status() : combined->status;
    member->ran_on = combined->ran_on;
    member->fallback_reason = combined->fallback_reason;
    member->transfer_us += combined->transfer_us;
    member->compute_us = combined->compute_us;
    member->batch_size = static_cast<std::uint32_t>(count);
    member->outputs.clear();
    for (std::size_t o = 0; o < owners.size(); ++o) {
      const auto& owner = owners[o];
      const std::size_t slice = owner->byte_size() / count;
      Shape shape(owner->shape().begin() + 1, owner->shape().end());
      // Named as the member planned it: a name may come from the job's own inputs (passthrough's
      // do), and the stacked output carries the first member's, which is never handed on.
      std::string name = o < member->planned.size() ? member->planned[o].name : std::string();
      member->outputs.push_back(Tensor::adopt(owner->dtype(), std::move(shape), std::move(name), owner,
                                              owner->bytes().data() + m * slice, slice));
    }
    out.push_back(std::move(member));
  }
  return out;
}

}  // namespace bridge::worker
