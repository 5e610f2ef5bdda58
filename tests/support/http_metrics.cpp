#include "http_metrics.hpp"

#include <httplib.h>

namespace bridge::testing {

std::string http_get(int port, const std::string& path, int* status) {
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(2);
  auto res = http.Get(path);
  if (!res) return "<no answer>";
  if (status != nullptr) *status = res->status;
  return res->body;
}

double metric_sample(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

}  // namespace bridge::testing
