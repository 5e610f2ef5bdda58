#include "bridge/metrics/metrics_server.hpp"

#include <fstream>
#include <stdexcept>

#include <httplib.h>

namespace bridge::metrics {

namespace {

// Compares without an early exit, so that the time taken says nothing about where a guess differs.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

bool MetricsServer::is_loopback(const std::string& listen) {
  const std::string host = listen.substr(0, listen.rfind(':'));
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "[::1]" || host == "localhost";
}

std::string MetricsServer::read_token_file(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream in(path);
  std::string token;
  if (!in || !std::getline(in, token)) throw std::runtime_error("metrics_token_file " + path + ": cannot read it");
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) throw std::runtime_error("metrics_token_file " + path + " is empty");
  return token;
}

MetricsServer::MetricsServer(const std::string& listen, const Registry& registry, ReadyCheck ready, std::string token)
    : server_(std::make_unique<httplib::Server>()) {
  if (!token.empty())
    server_->set_pre_routing_handler([token = std::move(token)](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/healthz") return httplib::Server::HandlerResponse::Unhandled;
      if (same_secret(req.get_header_value("Authorization"), "Bearer " + token))
        return httplib::Server::HandlerResponse::Unhandled;
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content("a bearer token is required (metrics_token_file)\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    });
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics address '" + listen + "' is not HOST:PORT");
  const std::string host = listen.substr(0, colon);
  const int wanted = std::stoi(listen.substr(colon + 1));
  server_->Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  // Liveness: the process answers. Readiness: it can take work now (the service says why not).
  server_->Get("/healthz",
               [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
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
