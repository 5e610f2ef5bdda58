#include "bridge/core/request_batches.hpp"

#include <array>
#include <utility>

#include <zmq_addon.hpp>

namespace bridge::core {

bool RequestBatches::offer(Frames& frames) {
  if (!gathering_ || frames.size() != 1) return false;
  // A header this client built: read without verifying.
  const auto* job = flatbuffers::GetRoot<wire::Envelope>(frames[0].data())->body_as_JobRequest();
  if (job == nullptr) return false;
  add(job->job_id(), std::move(frames[0]));
  return true;
}

void RequestBatches::add(std::uint64_t id, zmq::message_t header) {
  if (!open_.fits(header)) full_.push_back({open_.take(), std::exchange(open_ids_, {})});
  open_ids_.push_back(id);
  open_.add(std::move(header));
}

std::vector<std::uint64_t> RequestBatches::flush(zmq::socket_t& socket) {
  gathering_ = false;
  if (!open_.empty()) full_.push_back({open_.take(), std::exchange(open_ids_, {})});
  std::vector<std::uint64_t> unsent;
  for (Gathered& gathered : full_) {
    std::array<zmq::message_t, 1> frames{std::move(gathered.frame)};
    bool sent = false;
    try {
      sent = zmq::send_multipart(socket, frames, zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t&) {
    }
    if (!sent) unsent.insert(unsent.end(), gathered.ids.begin(), gathered.ids.end());
  }
  full_.clear();
  return unsent;
}

}  // namespace bridge::core
