// ClientOutbox on its own: how many wake-ups the I/O thread gets for the requests callers queue.
// The notifier is an eventfd, so reading it says how many times it was written since the last read.
#include "bridge/core/client_outbox.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

namespace bridge::core {
namespace {

PendingRequest request(std::uint64_t id) {
  PendingRequest r;
  r.id = id;
  return r;
}

// Wake-ups written since the last call (0 when none: the eventfd is non-blocking).
std::uint64_t wakeups(ClientOutbox& outbox) {
  std::uint64_t count = 0;
  if (::read(outbox.notifier().fd(), &count, sizeof count) != sizeof count) return 0;
  return count;
}

void push(ClientOutbox& outbox, std::uint64_t id) {
  PendingRequest r = request(id);
  ASSERT_TRUE(outbox.push(r));
}

TEST(ClientOutbox, RequestsQueuedBeforeTheTakerRunsWakeItOnce) {
  ClientOutbox outbox;
  for (std::uint64_t id = 1; id <= 5; ++id) push(outbox, id);
  EXPECT_EQ(wakeups(outbox), 1u);
  auto taken = outbox.take();
  ASSERT_EQ(taken.size(), 5u);
  EXPECT_EQ(taken.front().id, 1u);
  EXPECT_EQ(taken.back().id, 5u);
  push(outbox, 6);  // after a take, the next request needs a wake-up of its own
  EXPECT_EQ(wakeups(outbox), 1u);
  EXPECT_EQ(outbox.take().size(), 1u);
}

TEST(ClientOutbox, AHoldingThreadWakesTheTakerOnceAtTheEndOfItsOutermostHold) {
  ClientOutbox outbox;
  const auto me = std::this_thread::get_id();
  outbox.hold(me);
  outbox.hold(me);  // nested
  for (std::uint64_t id = 1; id <= 3; ++id) push(outbox, id);
  EXPECT_EQ(wakeups(outbox), 0u);
  outbox.release(me);
  EXPECT_EQ(wakeups(outbox), 0u) << "the outer hold still holds";
  outbox.release(me);
  EXPECT_EQ(wakeups(outbox), 1u);
  EXPECT_EQ(outbox.take().size(), 3u);
  outbox.hold(me);
  outbox.release(me);
  EXPECT_EQ(wakeups(outbox), 0u) << "nothing queued: no wake-up";
}

TEST(ClientOutbox, AnotherThreadsRequestIsNotHeldByAHold) {
  ClientOutbox outbox;
  outbox.hold(std::this_thread::get_id());
  push(outbox, 1);
  std::thread([&] { push(outbox, 2); }).join();
  EXPECT_EQ(wakeups(outbox), 1u) << "the other thread's request woke the taker";
  EXPECT_EQ(outbox.take().size(), 2u) << "and the held one goes with it";
  outbox.release(std::this_thread::get_id());
  EXPECT_EQ(wakeups(outbox), 0u);
}

TEST(ClientOutbox, AHoldEndsForItsThreadWhereverItIsReleased) {
  ClientOutbox outbox;
  const auto me = std::this_thread::get_id();
  outbox.hold(me);
  std::thread([&] { outbox.release(me); }).join();
  push(outbox, 1);
  EXPECT_EQ(wakeups(outbox), 1u);
}

TEST(ClientOutbox, TheTakersOwnRequestsWakeNothingAndAreMarked) {
  ClientOutbox outbox;
  outbox.set_taker(std::this_thread::get_id());
  push(outbox, 1);
  EXPECT_EQ(wakeups(outbox), 0u);
  EXPECT_TRUE(outbox.self_queued());
  EXPECT_EQ(outbox.take().size(), 1u);
  EXPECT_FALSE(outbox.self_queued());
}

TEST(ClientOutbox, AfterCloseRequestsAreRefusedAndWhatWasQueuedIsReturned) {
  ClientOutbox outbox;
  push(outbox, 1);
  auto left = outbox.close();
  ASSERT_EQ(left.size(), 1u);
  PendingRequest late = request(2);
  late.frames.emplace_back(3);
  EXPECT_FALSE(outbox.push(late));
  EXPECT_EQ(late.frames.size(), 1u) << "a refused request is left to its caller to answer";
}

TEST(ClientOutbox, CancelsAreTakenApartFromRequests) {
  ClientOutbox outbox;
  outbox.cancel(7);
  EXPECT_EQ(wakeups(outbox), 1u);
  EXPECT_TRUE(outbox.take().empty());
  EXPECT_EQ(outbox.take_cancels(), std::vector<std::uint64_t>{7});
}

}  // namespace
}  // namespace bridge::core
