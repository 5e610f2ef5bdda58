#pragma once
/// @file bridgectl's commands, each returning the exit status: 0 done, 1 the broker or the job
/// answered an error. Usage errors throw ConfigError (exit 2).

#include <chrono>
#include <string>
#include <vector>

#include "bridge/client.hpp"

namespace bridgectl {

struct SubmitArgs {
  std::string kernel;
  std::vector<std::string> inputs;  ///< [NAME=]V1,V2,...[:SHAPE], in order
  std::vector<std::string> params;  ///< NAME=VALUE
  std::string dtype = "f32";
  std::string placement = "any";
  int priority = 0;
};

/// Runs one job and prints its answer; Ctrl-C cancels it on its worker and prints CANCELLED.
int submit(bridge::Client& client, const SubmitArgs& args, bool json);
int status(bridge::Client& client, bool json);
int quota_show(bridge::Client& client, const std::string& tenant, bool json);
/// `words`: [TENANT] ID.
/// `actor show` prints the actor; `actor reset` resets it (Client::actor_reset) and prints it as it is after.
int actor_command(bridge::Client& client, const std::vector<std::string>& words, bool json, bool reset);
/// A live view refreshed every `interval`; `once`: one screen, then exit.
int top(bridge::Client& client, std::chrono::milliseconds interval, bool once);
/// Writes NAME.key (mode 0600) and NAME.pub.
int keygen(const std::string& name);

}  // namespace bridgectl
