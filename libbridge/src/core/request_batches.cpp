#include "bridge/core/request_batches.hpp"

namespace bridge::core {

bool RequestBatches::offer(Frames& frames) {
  if (!gathering_ || frames.size() != 1) return false;
  // A header this client built: read without verifying.
  const auto* job = flatbuffers::GetRoot<wire::Envelope>(frames[0].data())->body_as_JobRequest();
  if (job == nullptr) return false;
  batches_.add(job->job_id(), std::move(frames[0]));
  return true;
}

std::vector<std::uint64_t> RequestBatches::flush(zmq::socket_t& socket) {
  gathering_ = false;
  return batches_.flush(socket);
}

}  // namespace bridge::core
