#include "bridge/core/program.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "bridge/core/config_map.hpp"

namespace bridge::core {
namespace {

// Set and cleared under the mutex, which the signals' thread holds while it notifies: once
// clear_stop_signals() returns, no notify() is under way, and the notifiers may go.
std::mutex g_notifiers_mutex;
Notifier* g_stop = nullptr;
Notifier* g_reload = nullptr;

const sigset_t& handled_signals() {
  static const sigset_t set = [] {
    sigset_t s;
    sigemptyset(&s);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&s, sig);
    return s;
  }();
  return set;
}

// SIGINT, SIGTERM and SIGHUP are blocked in the calling thread before any other thread exists, so
// that every thread the program starts (ZeroMQ's, oneTBB's, the service loop) inherits the mask,
// and one thread takes them with sigwait(). A handler runs on whichever thread the signal lands on
// and interrupts the system call that thread is in: libzmq reports that EINTR from a send or a
// receive, which ended a broker that took SIGHUP (a tenants reload) in the middle of one.
void start_signal_thread() {
  static std::once_flag started;
  std::call_once(started, [] {
    pthread_sigmask(SIG_BLOCK, &handled_signals(), nullptr);
    std::thread([] {
      for (;;) {
        int sig = 0;
        if (sigwait(&handled_signals(), &sig) != 0) continue;
        {
          std::lock_guard lock(g_notifiers_mutex);
          if (Notifier* target = sig == SIGHUP ? g_reload : g_stop) {
            target->notify();
            continue;
          }
        }
        // Nobody takes it now: what the signal does by default, which ends the process.
        std::signal(sig, SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
        ::raise(sig);
      }
    }).detach();
  });
}

}  // namespace

int run_program(const char* name, const std::function<int()>& body) {
  start_signal_thread();
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
  start_signal_thread();
  std::lock_guard lock(g_notifiers_mutex);
  g_stop = &stop;
}

void clear_stop_signals() {
  std::lock_guard lock(g_notifiers_mutex);
  g_stop = nullptr;
  g_reload = nullptr;
}

void reload_on_sighup(Notifier& reload) {
  start_signal_thread();
  std::lock_guard lock(g_notifiers_mutex);
  g_reload = &reload;
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
  // Not where malloc is jemalloc's (the fleet's programs are linked with it): glibc's tunable would
  // change nothing, and jemalloc asks for huge pages by its own setting (jemalloc_settings.cpp).
  if (::dlsym(RTLD_DEFAULT, "mallctl") != nullptr) return;
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
