#pragma once
// Test support: child processes, free loopback ports, temporary directories.

#include <sys/types.h>
#include <time.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bridge::testing {

/// A temporary directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  /// Writes `text` to `name` inside the directory and returns the full path.
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

/// The files at `paths`, each under a "==== PATH" line: processes' logs, for failure messages.
std::string concatenated_logs(const std::vector<std::string>& paths);

/// A port on 127.0.0.1 that was free a moment ago.
int free_port();
std::string tcp_endpoint(int port);

/// A child process with stdout and stderr sent to `log_path`. Killed (SIGKILL) on destruction if
/// still running.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int signo);
  /// Waits up to `timeout` for the process to exit; its exit code, or nullopt on timeout. A death by
  /// signal N is reported as 128 + N.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void kill_hard();  ///< SIGKILL and reap
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns its last value.
template <class F>
bool eventually(F condition, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    struct timespec ts {
      0, 10'000'000
    };
    nanosleep(&ts, nullptr);
  }
}

}  // namespace bridge::testing
