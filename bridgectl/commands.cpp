#include "commands.hpp"

#include <poll.h>

#include <future>
#include <iostream>

#include "bridge/core/config_map.hpp"
#include "bridge/core/curve.hpp"
#include "bridge/core/program.hpp"
#include "reports.hpp"
#include "tensor_text.hpp"

namespace bridgectl {
namespace {

using namespace bridge;
using core::ConfigError;

int failed(const Status& s) {
  std::cerr << "bridgectl: " << s.to_string() << "\n";
  return 1;
}

JobRequest job_of(const SubmitArgs& args) {
  JobRequest job;
  job.kernel = args.kernel;
  DType dtype = DType::kF32;
  if (!parse_dtype(args.dtype, dtype)) throw ConfigError("--dtype " + args.dtype + ": use f32, f64, i32, i64 or u8");
  for (const auto& spec : args.inputs) job.inputs.push_back(parse_input(spec, dtype));
  for (const auto& spec : args.params) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos) throw ConfigError("--param " + spec + ": use NAME=VALUE");
    try {
      std::size_t used = 0;
      const std::string value = spec.substr(eq + 1);
      job.params[spec.substr(0, eq)] = std::stod(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      throw ConfigError("--param " + spec + ": the value is not a number");
    }
  }
  if (!parse_placement(args.placement, job.placement))
    throw ConfigError("--placement " + args.placement + ": use any, prefer-gpu, require-gpu or cpu-only");
  if (args.priority < -128 || args.priority > 127)
    throw ConfigError("--priority " + std::to_string(args.priority) + ": use an integer from -128 to 127");
  job.priority = args.priority;
  return job;
}

}  // namespace

int submit(Client& client, const SubmitArgs& args, bool json) {
  JobRequest job = job_of(args);
  // Ctrl-C (or SIGTERM) cancels the job: the broker stops it on its worker and frees the slot.
  core::Notifier interrupted;
  core::stop_on_signals(interrupted);
  std::promise<JobResult> done;
  std::future<JobResult> answer = done.get_future();
  const std::uint64_t id = client.submit(std::move(job), [&done](JobResult r) { done.set_value(std::move(r)); });
  bool cancelled = false;
  while (answer.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    pollfd signal{interrupted.fd(), POLLIN, 0};
    if (!cancelled && ::poll(&signal, 1, 20) == 1) {
      interrupted.drain();
      client.cancel(id);
      cancelled = true;
    } else if (cancelled) {
      answer.wait_for(std::chrono::milliseconds(20));
    }
  }
  core::clear_stop_signals();
  JobResult result = answer.get();
  print_result(result, json);
  return result.ok() ? 0 : 1;
}

int status(Client& client, bool json) {
  FleetStatus fleet;
  if (Status s = client.status(fleet); !s.is_ok()) return failed(s);
  print_status(fleet, json);
  return 0;
}

int quota_show(Client& client, const std::string& tenant, bool json) {
  QuotaReport report;
  if (Status s = client.quotas(tenant, report); !s.is_ok()) return failed(s);
  print_quotas(report, json);
  return 0;
}

int actor_command(Client& client, const std::vector<std::string>& words, bool json, bool reset) {
  if (words.empty() || words.size() > 2)
    throw ConfigError(std::string("usage: bridgectl actor ") + (reset ? "reset" : "show") + " [TENANT] ID");
  const std::string tenant = words.size() == 2 ? words[0] : "", id = words.back();
  ActorInfo actor;
  const Status s = reset ? client.actor_reset(tenant, id, actor) : client.actor_info(tenant, id, actor);
  if (!s.is_ok()) return failed(s);
  print_actor(actor, json);
  return 0;
}

int keygen(const std::string& name) {
  const core::CurveKeys keys = core::write_key_files(name);
  std::cout << "wrote " << name << ".key (secret, mode 0600) and " << name << ".pub\npublic key: " << keys.public_key
            << "\n";
  return 0;
}

}  // namespace bridgectl
