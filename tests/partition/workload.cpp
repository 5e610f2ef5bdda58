#include "workload.hpp"

#include <future>
#include <sstream>

#include "bridge/actor.hpp"

namespace bridge::testing {
namespace {

// Submits and waits, counting every delivery: a second one for a job is a duplicate.
JobResult run_counted(Client& client, JobRequest request, std::atomic<int>& extra) {
  auto promise = std::make_shared<std::promise<JobResult>>();
  auto deliveries = std::make_shared<std::atomic<int>>(0);
  auto future = promise->get_future();
  client.submit(std::move(request), [promise, deliveries, &extra](JobResult r) {
    if (deliveries->fetch_add(1) > 0) {
      ++extra;
      return;
    }
    promise->set_value(std::move(r));
  });
  return future.get();
}

}  // namespace

std::string Workload::Report::to_string() const {
  std::ostringstream out;
  out << "submitted " << submitted << ", ok " << ok << ", failed " << failed << ", duplicated " << duplicated
      << ", wrong " << wrong << ", actor regressions " << regressions << ", longest time without a result "
      << longest_gap.count() << " ms" << (first_failure.empty() ? "" : "; first failure: " + first_failure);
  return out.str();
}

Workload::Workload(Client& client, int streams, std::string actor_id)
    : client_(client), actor_id_(std::move(actor_id)), last_ok_(std::chrono::steady_clock::now()) {
  for (int s = 0; s < streams; ++s) threads_.emplace_back([this, s] { jobs(s); });
  threads_.emplace_back([this] { actor_calls(); });
}

Workload::~Workload() {
  if (!threads_.empty()) stop();
}

Workload::Report Workload::stop() {
  stopping_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::lock_guard lock(mutex_);
  return report_;
}

void Workload::answered(bool ok, bool right) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  if (!ok) return;
  ++report_.ok;
  if (!right) ++report_.wrong;
  report_.longest_gap =
      std::max(report_.longest_gap, std::chrono::duration_cast<std::chrono::milliseconds>(now - last_ok_));
  last_ok_ = now;
}

void Workload::jobs(int stream) {
  std::atomic<int> extra{0};
  for (int n = 0; !stopping_; ++n) {
    const float x = static_cast<float>(stream * 100000 + n);
    {
      std::lock_guard lock(mutex_);
      ++report_.submitted;
    }
    JobResult r = run_counted(
        client_, {.kernel = "vector_add", .inputs = {Tensor::vector<float>({x, 1}), Tensor::vector<float>({1, x})}},
        extra);
    if (!r.ok()) {
      std::lock_guard lock(mutex_);
      ++report_.failed;
      if (report_.first_failure.empty()) report_.first_failure = r.status.to_string();
      continue;
    }
    answered(true, !r.outputs.empty() && r.outputs[0].values<float>()[0] == x + 1);
  }
  std::lock_guard lock(mutex_);
  report_.duplicated += extra;
}

void Workload::actor_calls() {
  Actor actor(client_, "", actor_id_);
  std::atomic<int> extra{0};
  std::uint64_t last_version = 0;
  for (long i = 0; !stopping_; ++i) {
    {
      std::lock_guard lock(mutex_);
      ++report_.submitted;
    }
    JobRequest call{
        .kernel = "passthrough", .inputs = {Tensor::vector<float>({static_cast<float>(i)})}, .actor_id = actor_id_};
    call.keep_outputs = {"step"};
    JobResult r = run_counted(client_, std::move(call), extra);
    if (!r.ok()) {
      std::lock_guard lock(mutex_);
      ++report_.failed;
      if (report_.first_failure.empty()) report_.first_failure = r.status.to_string();
      continue;
    }
    if (r.actor_version <= last_version) {
      std::lock_guard lock(mutex_);
      ++report_.regressions;
    }
    last_version = r.actor_version;
    answered(true, true);
  }
  std::lock_guard lock(mutex_);
  report_.duplicated += extra;
}

}  // namespace bridge::testing
