#include "netns.hpp"

#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace bridge::testing::netns {
namespace {

constexpr const char* kInsideVariable = "GPUBRIDGE_TEST_NETNS";

std::string& reason() {
  static std::string why = std::getenv(kInsideVariable) != nullptr ? "" : "enter() was not called";
  return why;
}

bool shell(const std::string& command) { return std::system((command + " > /dev/null 2>&1").c_str()) == 0; }

void must(const std::string& command) {
  if (std::system((command + " 2>&1").c_str()) != 0) throw std::runtime_error("netns: failed: " + command);
}

}  // namespace

std::string enter(int argc, char** argv) {
  if (std::getenv(kInsideVariable) != nullptr) return reason() = "";
  for (const char* tool : {"unshare", "ip", "iptables"})
    if (!shell(std::string("command -v ") + tool))
      return reason() = std::string(tool) + " is not installed (scripts/install-deps installs it)";
  if (!shell("unshare -rn sh -c 'ip link set lo up'"))
    return reason() = "this machine does not allow a user and network namespace (unshare -rn failed)";
  if (!shell("unshare -rn sh -c 'iptables -w -L -n'"))
    return reason() = "iptables does not work inside a user and network namespace here";
  std::vector<char> self(4096);
  const ssize_t n = readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (n <= 0) return reason() = "cannot find this program (/proc/self/exe)";
  self[static_cast<std::size_t>(n)] = '\0';
  std::vector<const char*> args{"unshare", "-rn", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\"", self.data()};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  setenv(kInsideVariable, "1", 1);
  execvp("unshare", const_cast<char* const*>(args.data()));
  unsetenv(kInsideVariable);
  return reason() = "cannot run unshare";
}

const std::string& unavailable() { return reason(); }

Drop::Drop(int port, double p) {
  const std::string chance = p >= 1.0 ? "" : " -m statistic --mode random --probability " + std::to_string(p);
  rules_ = std::to_string(port) + chance + " -j DROP";
  must("iptables -w -A INPUT -p tcp --dport " + rules_);
  must("iptables -w -A INPUT -p tcp --sport " + rules_);
}

Drop::~Drop() {
  shell("iptables -w -D INPUT -p tcp --dport " + rules_);
  shell("iptables -w -D INPUT -p tcp --sport " + rules_);
}

Delay::Delay(int ms) { must("tc qdisc add dev lo root netem delay " + std::to_string(ms) + "ms"); }

Delay::~Delay() { shell("tc qdisc del dev lo root"); }

std::string Delay::unavailable() {
  if (!reason().empty()) return reason();
  if (!shell("tc qdisc add dev lo root netem delay 1ms"))
    return "the kernel has no netem qdisc (tc: \"Specified qdisc kind is unknown\"): delay cannot be injected";
  shell("tc qdisc del dev lo root");
  return "";
}

}  // namespace bridge::testing::netns
