#include "bridge/broker/worker_registry.hpp"

#include "bridge/broker/placement.hpp"

#include <algorithm>
#include <unordered_set>

namespace bridge::broker {

bool WorkerRecord::has_kernel(const std::string& kernel) const {
  return std::binary_search(kernels.begin(), kernels.end(), kernel);
}

bool placement_allows(Placement placement, const WorkerRecord& worker) {
  switch (placement) {
    case Placement::kRequireGpu: return worker.is_gpu();
    case Placement::kCpuOnly: return !worker.is_gpu();
    case Placement::kAny:
    case Placement::kPreferGpu: return true;
  }
  return false;
}

WorkerRegistry::Registration WorkerRegistry::upsert(WorkerRecord hello, std::vector<Job*>& let_go,
                                                    const std::vector<std::uint64_t>& running) {
  std::sort(hello.kernels.begin(), hello.kernels.end());
  auto it = workers_.find(hello.id);
  if (it == workers_.end()) {
    WorkerRecord& added = workers_.emplace(hello.id, std::move(hello)).first->second;
    routes_[added.route] = &added;
    return {HelloKind::kNew, added};
  }
  WorkerRecord& record = it->second;
  HelloKind kind = HelloKind::kSameConnection;
  if (record.incarnation != hello.incarnation) {
    kind = HelloKind::kNewProcess;
    for (auto& [dispatch_id, job] : record.inflight) let_go.push_back(job);
    record.inflight.clear();
    record.completed = 0;
  } else if (hello.connection < record.connection) {
    // Sent before the hello the broker already took (a closed connection's, delivered late).
    return {HelloKind::kStale, record};
  } else if (hello.connection > record.connection) {
    kind = HelloKind::kNewConnection;
    const std::unordered_set<std::uint64_t> held(running.begin(), running.end());
    for (auto job = record.inflight.begin(); job != record.inflight.end();) {
      if (held.contains(job->first)) {
        ++job;
      } else {
        let_go.push_back(job->second);
        job = record.inflight.erase(job);
      }
    }
  }
  // The same process (a new connection, or a hello again): what it holds still runs there.
  hello.inflight = std::move(record.inflight);
  hello.completed = record.completed;
  if (record.route != hello.route) {
    forget_route(record.route, record);
    routes_[hello.route] = &record;
  }
  record = std::move(hello);
  // Oldest first, so that re-queued jobs keep their order.
  std::sort(let_go.begin(), let_go.end(), [](const auto& a, const auto& b) { return a->key < b->key; });
  return {kind, record};
}

WorkerRecord* WorkerRegistry::find(const std::string& id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

WorkerRecord* WorkerRegistry::find_by_route(std::string_view route) {
  auto it = routes_.find(route);
  return it == routes_.end() ? nullptr : it->second;
}

void WorkerRegistry::forget_route(const std::string& route, const WorkerRecord& worker) {
  // Only its own: another worker's hello may have come on a connection under the same routing id.
  if (auto it = routes_.find(route); it != routes_.end() && it->second == &worker) routes_.erase(it);
}

std::vector<Job*> WorkerRegistry::remove(const std::string& id) {
  std::vector<Job*> jobs;
  auto it = workers_.find(id);
  if (it == workers_.end()) return jobs;
  for (auto& [dispatch_id, job] : it->second.inflight) jobs.push_back(job);
  forget_route(it->second.route, it->second);
  workers_.erase(it);
  // Oldest first, so that re-queued jobs keep their order.
  std::sort(jobs.begin(), jobs.end(), [](const auto& a, const auto& b) { return a->key < b->key; });
  return jobs;
}

std::vector<std::string> WorkerRegistry::silent_since(Clock::time_point now, std::uint32_t liveness) const {
  std::vector<std::string> out;
  for (const auto& [id, w] : workers_)
    if (now - w.last_seen - own_sends_.excused(w.last_seen, now) >
        std::chrono::milliseconds(w.heartbeat_ms) * liveness + w.transfer_grace)
      out.push_back(id);
  return out;
}

bool WorkerRecord::has_kernels(const std::vector<std::string>& wanted) const {
  return std::all_of(wanted.begin(), wanted.end(), [&](const std::string& k) { return has_kernel(k); });
}

bool WorkerRegistry::can_take(const WorkerRecord& worker, const Job& job) const {
  if (!worker.has_free_credit() || !worker.has_kernels(job.kernels) || !placement_allows(job.placement, worker))
    return false;
  // An actor call goes to the worker holding the activation; if that worker left, anywhere (the
  // new worker answers ACTOR_NOT_ACTIVE and the broker reactivates the actor from Redis).
  return job.pinned_worker.empty() || job.pinned_worker == worker.id || workers_.count(job.pinned_worker) == 0;
}

WorkerRecord* WorkerRegistry::select(const Job& job) {
  WorkerRecord* best = nullptr;
  bool best_idle = false;
  double best_rank = 0;
  for (auto& [id, w] : workers_) {
    if (!can_take(w, job)) continue;
    // A worker with an idle slot comes before any whose slots are all taken (the job would wait in
    // its prefetch queue), whatever their devices; then the placement's rank; then, between equals,
    // the worker idle longest, so that they take turns.
    const bool idle = w.has_free_credit(/*with_prefetch=*/false);
    const double rank = placement_rank(job.placement, w);
    if (best == nullptr || idle > best_idle ||
        (idle == best_idle && (rank > best_rank || (rank == best_rank && w.last_dispatch < best->last_dispatch)))) {
      best = &w;
      best_idle = idle;
      best_rank = rank;
    }
  }
  return best;
}

bool WorkerRegistry::could_run(const std::vector<std::string>& kernels, Placement placement) const {
  return std::any_of(workers_.begin(), workers_.end(), [&](const auto& entry) {
    return !entry.second.draining && entry.second.has_kernels(kernels) && placement_allows(placement, entry.second);
  });
}

bool WorkerRegistry::any_has_kernel(const std::string& kernel) const {
  return std::any_of(workers_.begin(), workers_.end(),
                     [&](const auto& entry) { return entry.second.has_kernel(kernel); });
}

std::size_t WorkerRegistry::inflight_jobs() const {
  std::size_t n = 0;
  for (const auto& [id, w] : workers_) n += w.inflight.size();
  return n;
}

}  // namespace bridge::broker
