// Batches (docs/protocol.md, "Batches") across a real broker: a worker's Batch of results reaches
// each result's client; a client that set Envelope.batches gets its answers that were ready together
// in one Batch, and a client that did not gets one message per answer; a client's Batch of jobs runs
// each; a Batch inside a Batch, or a message in a Batch that does not verify, is refused alone.
#include <gtest/gtest.h>

#include <array>
#include <set>

#include <zmq_addon.hpp>

#include "bridge/core/batch.hpp"
#include "bridge/core/endpoint.hpp"
#include "bridge/core/job_codec.hpp"
#include "fleet.hpp"
#include "raw_worker.hpp"

namespace bridge::testing {
namespace {

using core::Frames;

class RawClient {
 public:
  RawClient(zmq::context_t& context, const Fleet& fleet) : socket_(context, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::routing_id, "client-" + core::random_hex(128));
    fleet.secure_client_socket(socket_);
    socket_.connect(fleet.frontend());
  }

  static zmq::message_t job(std::uint64_t job_id, bool batches) {
    const JobRequest job{.kernel = "sleep", .params = {{"ms", 1}}};
    return std::move(core::encode_request(job, job_id, "", std::chrono::seconds(20), 0, 0, batches)[0]);
  }
  void send_job(std::uint64_t job_id, bool batches) { send(job(job_id, batches)); }
  void send(zmq::message_t header) {
    std::array<zmq::message_t, 1> frames{std::move(header)};
    zmq::send_multipart(socket_, frames);
  }

  // The next message within `wait`: its header frames, one per message of a Batch (empty if none came).
  std::vector<zmq::message_t> next(std::chrono::milliseconds wait, bool& was_batch) {
    std::vector<zmq::message_t> headers;
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, wait) == 0) return headers;
    Frames frames;
    (void)zmq::recv_multipart(socket_, std::back_inserter(frames));
    const wire::Envelope* envelope = nullptr;
    EXPECT_TRUE(core::decode_envelope(frames[0], core::Limits{}, envelope).is_ok());
    if (envelope == nullptr) return headers;
    was_batch = envelope->body_type() == wire::Body::Batch;
    EXPECT_EQ(frames.size(), 1u);
    if (!was_batch) {
      headers.push_back(std::move(frames[0]));
      return headers;
    }
    core::for_each_batched(*envelope->body_as_Batch(),
                           [&](zmq::message_t& header) { headers.push_back(std::move(header)); });
    return headers;
  }

 private:
  zmq::socket_t socket_;
};

// The job id and status of a result header (0 if it is none).
std::uint64_t job_of(zmq::message_t& header) {
  const wire::Envelope* envelope = nullptr;
  if (!core::decode_batched(header, core::Limits{}, envelope).is_ok() || envelope->body_as_JobResult() == nullptr)
    return 0;
  EXPECT_EQ(envelope->body_as_JobResult()->status(), wire::StatusCode::OK);
  return envelope->body_as_JobResult()->job_id();
}

TEST(Batches, AWorkersBatchOfResultsReachesEachClientAsThatClientReadsThem) {
  Fleet fleet({.workers = 0});
  zmq::context_t context;
  zmq::socket_t worker = raw_worker(context, fleet, "batcher", 20000, {.slots = 6});
  ASSERT_TRUE(fleet.wait_for_workers(1));
  RawClient batched(context, fleet);
  RawClient plain(context, fleet);
  Client library(fleet.client_options());
  const auto wait = std::chrono::seconds(5);
  batched.send_job(1, true);
  batched.send_job(2, true);
  plain.send_job(1, false);
  plain.send_job(2, false);
  auto first = library.submit({.kernel = "sleep", .params = {{"ms", 1}}});
  auto second = library.submit({.kernel = "sleep", .params = {{"ms", 1}}});
  std::vector<std::uint64_t> dispatches;
  for (int i = 0; i < 6; ++i) dispatches.push_back(next_dispatch(worker, wait));
  ASSERT_EQ(std::count(dispatches.begin(), dispatches.end(), 0u), 0) << fleet.logs();

  // Refused alone, ahead of the real results: a Batch inside the Batch, and bytes that are no header.
  core::BatchWriter nested;
  nested.add(ok_result(dispatches[0]));
  nested.add(ok_result(dispatches[1]));
  core::BatchWriter answers;
  answers.add(nested.take());
  answers.add(zmq::message_t(std::string("not a header at all")));
  for (const std::uint64_t dispatch : dispatches) answers.add(ok_result(dispatch));
  Frames frames;
  frames.push_back(answers.take());
  zmq::send_multipart(worker, frames);

  bool was_batch = false;
  std::vector<zmq::message_t> got = batched.next(wait, was_batch);
  EXPECT_TRUE(was_batch) << "answers ready together went one message each to a client that reads batches";
  std::set<std::uint64_t> jobs;
  for (auto& header : got) jobs.insert(job_of(header));
  EXPECT_EQ(jobs, (std::set<std::uint64_t>{1, 2})) << fleet.logs();
  EXPECT_TRUE(batched.next(std::chrono::milliseconds(300), was_batch).empty()) << "an answer came twice";

  jobs.clear();
  for (int i = 0; i < 2; ++i) {
    was_batch = true;
    got = plain.next(wait, was_batch);
    ASSERT_EQ(got.size(), 1u) << fleet.logs();
    EXPECT_FALSE(was_batch) << "a client that did not set Envelope.batches was sent a Batch";
    jobs.insert(job_of(got[0]));
  }
  EXPECT_EQ(jobs, (std::set<std::uint64_t>{1, 2}));

  // The client library reads batches (Client::Options::batches, on by default).
  ASSERT_EQ(first.wait_for(wait), std::future_status::ready) << fleet.logs();
  ASSERT_EQ(second.wait_for(wait), std::future_status::ready) << fleet.logs();
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(second.get().ok());

  const std::string log = fleet.broker().log();
  EXPECT_NE(log.find("refused: MALFORMED_MESSAGE: message 1 of 8 in a Batch: a Batch inside a Batch"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("refused: MALFORMED_MESSAGE: message 2 of 8 in a Batch: first frame is not a GpuBridge header"),
            std::string::npos)
      << log;
}

// The worker gathers the answers that are ready within one wake-up: each job is answered once with
// its own outputs, those with large ones (frames of their own, never in a Batch) among them.
TEST(Batches, AWorkersAnswersArriveOnceEachWhateverTheyTravelIn) {
  Fleet fleet({.workers = 1, .slots = 4});
  Client client(fleet.client_options());
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 200; ++i) {
    const std::int64_t n = i % 10 == 0 ? 4096 : 4;  // 16 KiB: over inline_bytes, in a frame of its own
    std::vector<float> values(static_cast<std::size_t>(n), static_cast<float>(i));
    futures.push_back(
        client.submit({.kernel = "passthrough", .inputs = {Tensor::from<float>(std::span<const float>(values), {n})}}));
  }
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(futures[static_cast<std::size_t>(i)].wait_for(std::chrono::seconds(20)), std::future_status::ready)
        << fleet.logs();
    JobResult r = futures[static_cast<std::size_t>(i)].get();
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    ASSERT_EQ(r.outputs.size(), 1u);
    const auto out = r.outputs[0].values<float>();
    ASSERT_EQ(out.size(), i % 10 == 0 ? 4096u : 4u);
    EXPECT_EQ(out.front(), static_cast<float>(i));
    EXPECT_EQ(out.back(), static_cast<float>(i));
  }
}

// A client's Batch of jobs (docs/protocol.md, "Batches"): each job runs and is answered, the answers
// that are ready together in one Batch; a Batch inside it, and bytes that are no header, are each
// answered MALFORMED_MESSAGE, and what the inner Batch held never runs.
TEST(Batches, AClientsBatchOfJobsRunsEachAndWhatDoesNotVerifyIsRefusedAlone) {
  Fleet fleet({.workers = 1});
  zmq::context_t context;
  RawClient client(context, fleet);
  core::BatchWriter nested;
  nested.add(RawClient::job(9, true));
  nested.add(RawClient::job(10, true));
  core::BatchWriter jobs;
  jobs.add(RawClient::job(1, true));
  jobs.add(nested.take());
  jobs.add(zmq::message_t(std::string("not a header at all")));
  jobs.add(RawClient::job(2, true));
  client.send(jobs.take());

  std::set<std::uint64_t> answered;
  int malformed = 0;
  std::string refusals;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until && (answered.size() < 2 || malformed < 2)) {
    bool was_batch = false;
    for (zmq::message_t& header : client.next(std::chrono::milliseconds(500), was_batch)) {
      const wire::Envelope* envelope = nullptr;
      ASSERT_TRUE(core::decode_batched(header, core::Limits{}, envelope).is_ok());
      const wire::JobResult* result = envelope->body_as_JobResult();
      ASSERT_NE(result, nullptr);
      if (result->status() == wire::StatusCode::MALFORMED_MESSAGE && result->job_id() == 0) {
        ++malformed;
        refusals += std::string(core::view(result->message())) + "\n";
        continue;
      }
      EXPECT_EQ(result->status(), wire::StatusCode::OK) << core::view(result->message());
      EXPECT_TRUE(answered.insert(result->job_id()).second) << "job " << result->job_id() << " answered twice";
    }
  }
  EXPECT_EQ(answered, (std::set<std::uint64_t>{1, 2})) << fleet.logs();
  EXPECT_EQ(malformed, 2) << fleet.logs();
  // Which message of the Batch each was: a refusal that cannot read a message cannot name its job.
  EXPECT_NE(refusals.find("message 2 of 4 in a Batch: a Batch inside a Batch"), std::string::npos) << refusals;
  EXPECT_NE(refusals.find("message 3 of 4 in a Batch: first frame is not a GpuBridge header"), std::string::npos)
      << refusals;
  bool was_batch = false;
  EXPECT_TRUE(client.next(std::chrono::milliseconds(300), was_batch).empty()) << "a job of the inner Batch ran";
}

// A Batch of one more job than a Batch may hold is refused whole, unread: none of its jobs runs.
TEST(Batches, ABatchOfMoreMessagesThanABatchHoldsIsRefusedWhole) {
  Fleet fleet({.workers = 1});
  zmq::context_t context;
  RawClient client(context, fleet);
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::BatchedMessage>> messages;
  for (std::uint64_t job = 1; job <= core::kMaxBatchMessages + 1; ++job) {
    zmq::message_t header = RawClient::job(job, true);
    auto bytes = fbb.CreateVector(static_cast<const std::uint8_t*>(header.data()), header.size());
    messages.push_back(wire::CreateBatchedMessage(fbb, bytes));
  }
  auto batch = wire::CreateBatch(fbb, fbb.CreateVector(messages));
  client.send(core::finish_envelope(fbb, wire::Body::Batch, batch.Union()));
  bool was_batch = false;
  std::vector<zmq::message_t> got = client.next(std::chrono::seconds(5), was_batch);
  ASSERT_EQ(got.size(), 1u) << fleet.logs();
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(core::decode_envelope(got[0], core::Limits{}, envelope).is_ok());
  const wire::JobResult* refusal = envelope->body_as_JobResult();
  ASSERT_NE(refusal, nullptr);
  EXPECT_EQ(refusal->status(), wire::StatusCode::MALFORMED_MESSAGE);
  EXPECT_NE(core::view(refusal->message()).find("holds at most 64"), std::string_view::npos)
      << core::view(refusal->message());
  EXPECT_TRUE(client.next(std::chrono::milliseconds(500), was_batch).empty()) << "a job of the refused Batch ran";
}

}  // namespace
}  // namespace bridge::testing
