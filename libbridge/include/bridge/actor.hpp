#pragma once
/// @file bridge::Actor: a virtual actor with state in Redis and tensors resident on its worker.
///
///   bridge::Actor model(client, "team-a", "model-7");
///   model.put("weights", w).get();                                   // uploaded once
///   auto y = model.call({.kernel = "matmul", .args = {bridge::Resident{"weights"}, x}}).get();
///   model.call({.kernel = "vector_add", .args = {bridge::Resident{"sum"}, x}, .keep = {"sum"}});  // sum += x

#include <chrono>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "bridge/client.hpp"
#include "bridge/export.hpp"

namespace bridge {

/// Names a tensor the actor holds, in place of an input sent with the call.
struct BRIDGE_API Resident {
  std::string name;
};

/// One input of an actor call: a tensor sent with it, or a resident tensor of the actor.
struct BRIDGE_API ActorArg {
  ActorArg(Tensor t) : tensor(std::move(t)) {}           // NOLINT: implicit on purpose, {x, Resident{"w"}}
  ActorArg(Resident r) : resident(std::move(r.name)) {}  // NOLINT
  Tensor tensor;
  std::string resident;  ///< non-empty: use the actor's tensor of this name
};

struct BRIDGE_API ActorCall {
  std::string kernel;
  std::vector<ActorArg> args;
  std::map<std::string, double> params;
  /// Output i is kept in the actor under keep[i] (and not returned); "" or past the end of keep:
  /// returned. A name twice, or more names than the kernel has outputs, is INVALID_ARGUMENT.
  /// Keeping is what changes an actor's state: each call that keeps something bumps its version.
  std::vector<std::string> keep;
  Placement placement = Placement::kAny;
  std::chrono::milliseconds timeout{0};
};

/// A handle on one actor; cheap to copy. Calls on one actor run one at a time, in the order they
/// were sent, on the worker holding its activation; the broker writes the state through to Redis
/// after each call that keeps outputs, before the call's result is delivered. If that worker dies,
/// the call in progress runs again on another worker from the state in Redis: nothing is lost or
/// reordered. Different actors run in parallel. The Client must outlive its actors.
class BRIDGE_API Actor {
 public:
  /// `tenant` empty: the client's tenant.
  Actor(Client& client, std::string tenant, std::string id)
      : client_(&client), tenant_(tenant.empty() ? client.options().tenant : std::move(tenant)), id_(std::move(id)) {}

  std::future<JobResult> call(ActorCall call);
  /// Keeps `tensor` in the actor under `name` (on its worker, and in Redis); counts against the
  /// tenant's max_resident_bytes.
  std::future<JobResult> put(const std::string& name, Tensor tensor);
  /// A copy of resident tensor `name` as the result's only output.
  std::future<JobResult> get(const std::string& name);
  /// Version, placement and resident tensors (Client::actor_info).
  Status info(ActorInfo& out) { return client_->actor_info(tenant_, id_, out); }
  /// Drops its tensors and any loss mark (Client::actor_reset): after DATA_LOSS, starts it again.
  Status reset(ActorInfo& out) { return client_->actor_reset(tenant_, id_, out); }

  const std::string& tenant() const { return tenant_; }
  const std::string& id() const { return id_; }

 private:
  Client* client_;
  std::string tenant_;
  std::string id_;
};

}  // namespace bridge
