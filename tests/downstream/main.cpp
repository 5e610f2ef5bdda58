// Uses only the installed public headers. With no broker listening, a job must come back
// DEADLINE_EXCEEDED, which proves the library links, starts its I/O thread and keeps its promise.
#include <bridge/client.hpp>

#include <iostream>

int main(int argc, char** argv) {
  const std::string endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:1";
  bridge::Client client({.broker = endpoint, .tenant = "default", .timeout = std::chrono::milliseconds(100)});
  bridge::JobRequest job{.kernel = "vector_add",
                         .inputs = {bridge::Tensor::vector<float>({1, 2}), bridge::Tensor::vector<float>({3, 4})}};
  bridge::JobResult result = client.run(job);
  std::cout << "downstream: " << result.status.to_string() << "\n";
  return result.status.code() == bridge::StatusCode::kDeadlineExceeded ? 0 : 1;
}
