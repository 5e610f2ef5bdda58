// bridgectl: submit jobs to a GpuBridge fleet and look at it.
#include <cstdlib>

#include "bridge/core/cli.hpp"
#include "commands.hpp"

namespace {

constexpr const char* kAbout = "Submits jobs to a GpuBridge fleet and looks at it.";

constexpr const char* kFooter = R"(
Keys (docs/security.md): --key-file is this client's NAME.key, --broker-key-file the broker's .pub
(or $GPUBRIDGE_KEY_FILE, $GPUBRIDGE_BROKER_KEY_FILE). The tenant is the one the key is listed
under; --tenant may only name it (an operator key may name any tenant in quota and actor commands).
Global flags may come before or after the command.
Exit status: 0 done, 1 the broker or the job answered an error, 2 a usage or configuration error.)";

}  // namespace

int main(int argc, char** argv) {
  using namespace bridge;
  CLI::App app(kAbout, "bridgectl");
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();  // global flags after the command too: `bridgectl status --json`
  Client::Options options;
  if (const char* broker = std::getenv("BRIDGE_BROKER"); broker != nullptr && *broker != '\0') options.broker = broker;
  std::uint32_t timeout_ms = 0, retries = 1;
  bool json = false;
  app.add_option("--broker", options.broker,
                 "the broker's client endpoint, or several separated by commas (or $BRIDGE_BROKER)")
      ->capture_default_str();
  app.add_option("--key-file", options.key_file, "this client's key pair (NAME.key)");
  app.add_option("--broker-key-file", options.broker_key_file, "the broker's public key (NAME.pub)");
  app.add_option("--tenant", options.tenant, "the tenant to act as (default: the key's)");
  app.add_option("--timeout", timeout_ms, "ms to wait for an answer (default 30000)");
  app.add_option("--retries", retries, "send a job up to N times when refused for a passing reason (quota, queue full)")
      ->capture_default_str();
  app.add_flag("--json", json, "print the answer as one JSON object");

  bridgectl::SubmitArgs submit_args;
  CLI::App* submit = app.add_subcommand("submit", "run one job and print its result (exit 1 if it failed)");
  submit->add_option("kernel", submit_args.kernel, "the kernel (bridge-worker --list-kernels)")->required();
  submit->add_option("--input", submit_args.inputs, "[NAME=]V1,V2,...[:SHAPE], SHAPE like 2x3; repeatable, in order")
      ->allow_extra_args(false);
  submit->add_option("--param", submit_args.params, "NAME=VALUE; repeatable")->allow_extra_args(false);
  submit->add_option("--dtype", submit_args.dtype, "f32, f64, i32, i64 or u8 (all inputs)")->capture_default_str();
  submit->add_option("--placement", submit_args.placement, "any, prefer-gpu, require-gpu or cpu-only")
      ->capture_default_str();
  submit->add_option("--priority", submit_args.priority, "-128..127 within the tenant's range")->capture_default_str();
  submit->footer("Ctrl-C cancels the job (it is stopped on its worker) and prints its CANCELLED answer.");

  CLI::App* status = app.add_subcommand("status", "the workers the broker knows: device, kernels, slots, heartbeat");

  std::string quota_tenant;
  CLI::App* quota = app.add_subcommand("quota", "tenants' limits (tenants.yaml) and live usage (Redis)");
  quota->require_subcommand(1);
  CLI::App* quota_show = quota->add_subcommand("show", "one tenant's quotas, or every tenant's with an operator key");
  quota_show->add_option("tenant", quota_tenant, "the tenant (default: the key's)");

  std::vector<std::string> actor_words;
  CLI::App* actor = app.add_subcommand("actor", "actors' state");
  actor->require_subcommand(1);
  CLI::App* actor_show = actor->add_subcommand("show", "an actor's version, worker and resident tensors");
  actor_show->add_option("words", actor_words, "[TENANT] ID (TENANT: an operator key only)")
      ->required()
      ->expected(1, 2);
  CLI::App* actor_reset = actor->add_subcommand(
      "reset", "drop an actor's resident tensors and any DATA_LOSS mark: its next call starts from empty");
  actor_reset->add_option("words", actor_words, "[TENANT] ID (TENANT: an operator key only)")
      ->required()
      ->expected(1, 2);

  std::uint32_t interval_ms = 1000;
  bool once = false;
  CLI::App* top = app.add_subcommand("top", "a live view of workers, tenants, queue and throughput");
  top->add_option("--interval", interval_ms, "ms between screens")->capture_default_str();
  top->add_flag("--once", once, "sample twice, an interval apart, print one screen and exit");

  std::string key_name;
  CLI::App* keygen = app.add_subcommand("keygen", "write a CURVE key pair: NAME.key (0600, the secret) and NAME.pub");
  keygen->add_option("name", key_name, "NAME: list NAME.pub in tenants.yaml or workers.yaml")->required();

  return core::run_cli(app, argc, argv, [&] {
    if (keygen->parsed()) return bridgectl::keygen(key_name);
    if (timeout_ms > 0) options.timeout = std::chrono::milliseconds(timeout_ms);
    options.retry.max_attempts = static_cast<int>(std::max<std::uint32_t>(1, retries));
    Client client(options);
    if (submit->parsed()) return bridgectl::submit(client, submit_args, json);
    if (status->parsed()) return bridgectl::status(client, json);
    if (quota_show->parsed()) return bridgectl::quota_show(client, quota_tenant, json);
    if (actor_show->parsed() || actor_reset->parsed())
      return bridgectl::actor_command(client, actor_words, json, actor_reset->parsed());
    return bridgectl::top(client, std::chrono::milliseconds(interval_ms), once);
  });
}
