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
  /// if it cannot bind, naming the address.
  MetricsServer(const std::string& listen, const Registry& registry, ReadyCheck ready);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace bridge::metrics
