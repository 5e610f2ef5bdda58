#include "bridge/core/program.hpp"

#include <sys/auxv.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "bridge/core/config_map.hpp"

namespace bridge::core {
namespace {

std::atomic<Notifier*> g_stop{nullptr};
std::atomic<Notifier*> g_reload{nullptr};

void on_stop_signal(int) {
  if (Notifier* stop = g_stop.load()) stop->notify();
}

void on_reload_signal(int) {
  if (Notifier* reload = g_reload.load()) reload->notify();
}

}  // namespace

int run_program(const char* name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: fatal: %s\n", name, e.what());
    return 1;
  }
}

void stop_on_signals(Notifier& stop) {
  g_stop.store(&stop);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

void clear_stop_signals() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGHUP, SIG_DFL);
  g_stop.store(nullptr);
  g_reload.store(nullptr);
}

void reload_on_sighup(Notifier& reload) {
  g_reload.store(&reload);
  std::signal(SIGHUP, on_reload_signal);
}

void use_huge_pages_for_large_blocks(char** argv) {
  constexpr const char* kTunable = "glibc.malloc.hugetlb";
  constexpr const char* kMarker = "GPUBRIDGE_RAN_AGAIN_FOR_HUGE_PAGES";
  if (std::getenv(kMarker) != nullptr) {
    // The run again: exec'd through /proc/self/exe, whose name ps and pgrep would show; and the
    // marker is not passed on to anything this process starts.
    ::unsetenv(kMarker);
    if (argv != nullptr && argv[0] != nullptr) {
      const std::string name = std::filesystem::path(argv[0]).filename().string();
      ::prctl(PR_SET_NAME, name.substr(0, 15).c_str(), 0, 0, 0);
    }
    return;
  }
  // Not for a setuid or file-capability binary (glibc drops the tunable there, and would be asked
  // again forever), nor when started through the dynamic loader by hand (/proc/self/exe is the
  // loader, which would take the arguments for its own).
  if (::getauxval(AT_SECURE) != 0 || argv == nullptr || argv[0] == nullptr) return;
  std::error_code error;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", error).filename().string();
  if (error || self.rfind("ld-", 0) == 0) return;
  const char* current = std::getenv("GLIBC_TUNABLES");
  std::string tunables = current != nullptr ? current : "";
  if (tunables.find(kTunable) != std::string::npos) return;
  std::ifstream mode_file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(mode_file, mode);
  if (mode.find("[madvise]") == std::string::npos) return;
  tunables += (tunables.empty() ? "" : ":") + std::string(kTunable) + "=1";
  if (::setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0 || ::setenv(kMarker, "1", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // Still here: the exec failed (no /proc, say); this process goes on with 4 KiB pages.
  ::unsetenv(kMarker);
}

}  // namespace bridge::core
