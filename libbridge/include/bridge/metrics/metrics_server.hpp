#pragma once
/// @file MetricsServer: /metrics, /healthz and /readyz over HTTP (cpp-httplib), on its own thread.

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "bridge/metrics/metrics.hpp"

namespace httplib {
class Server;
}

namespace bridge::metrics {

class MetricsServer {
 public:
  /// Why the process is not ready to take work (empty: ready). Called on the HTTP thread.
  using ReadyCheck = std::function<std::string()>;

  /// Listens on `listen` ("HOST:PORT"; port 0 = pick one, see port()). Throws std::runtime_error
  /// if it cannot bind, naming the address. `token` non-empty: /metrics and /readyz answer only a
  /// request with `Authorization: Bearer <token>` (401 otherwise); /healthz says only "ok" and stays
  /// open for liveness probes. Read it from a file with read_token_file.
  MetricsServer(const std::string& listen, const Registry& registry, ReadyCheck ready, std::string token = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }
  /// Whether `listen`'s host is a loopback address (127.0.0.0/8, ::1, localhost).
  static bool is_loopback(const std::string& listen);
  /// The first line of a token file ("" for an empty path: no token); throws std::runtime_error if
  /// the file is missing or empty.
  static std::string read_token_file(const std::string& path);

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace bridge::metrics
