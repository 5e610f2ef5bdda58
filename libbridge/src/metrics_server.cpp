#include "bridge/metrics/metrics_server.hpp"

#include <stdexcept>

#include <httplib.h>

namespace bridge::metrics {

MetricsServer::MetricsServer(const std::string& listen, const Registry& registry, ReadyCheck ready)
    : server_(std::make_unique<httplib::Server>()) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics address '" + listen + "' is not HOST:PORT");
  const std::string host = listen.substr(0, colon);
  const int wanted = std::stoi(listen.substr(colon + 1));
  server_->Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  // Liveness: the process answers. Readiness: it can take work now (the service says why not).
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  server_->Get("/readyz", [ready = std::move(ready)](const httplib::Request&, httplib::Response& res) {
    const std::string why = ready ? ready() : std::string();
    res.status = why.empty() ? 200 : 503;
    res.set_content(why.empty() ? "ready\n" : "not ready: " + why + "\n", "text/plain");
  });
  port_ = wanted == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, wanted) ? wanted : -1);
  if (port_ <= 0) throw std::runtime_error("cannot listen for metrics on " + listen + " (port taken or bad address)");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

MetricsServer::~MetricsServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace bridge::metrics
