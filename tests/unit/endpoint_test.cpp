// PollSet, receive_batch and the identities (core/endpoint.hpp): inproc sockets and eventfds, no fleet.
#include "bridge/core/endpoint.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include <zmq_addon.hpp>

namespace bridge::core {
namespace {

using std::chrono::milliseconds;

struct Pair {
  zmq::context_t context{1};
  zmq::socket_t in{context, zmq::socket_type::pair};
  zmq::socket_t out{context, zmq::socket_type::pair};
  explicit Pair(const std::string& name) {
    in.bind("inproc://" + name);
    out.connect("inproc://" + name);
  }
  void send(const std::string& text) { out.send(zmq::buffer(text), zmq::send_flags::none); }
};

TEST(PollSet, RunsOnlyTheHandlersOfReadySourcesInTheOrderTheyWereAdded) {
  Pair a("a"), b("b");
  Notifier quiet, rung;
  std::vector<std::string> ran;
  PollSet set;
  set.on_readable(b.in, [&] { ran.push_back("b"); });
  set.on_notified(quiet, [&] { ran.push_back("quiet"); });
  set.every_wakeup([&] { ran.push_back("step"); });
  set.on_readable(a.in, [&] { ran.push_back("a"); });
  set.on_notified(rung, [&] { ran.push_back("rung"); });
  a.send("x");
  b.send("y");
  rung.notify();
  set.wait(milliseconds(1000));
  EXPECT_EQ(ran, (std::vector<std::string>{"b", "step", "a", "rung"}));
}

TEST(PollSet, DrainsANotifierBeforeItsHandlerSoItWakesTheLoopOnce) {
  Notifier notifier;
  int woken = 0;
  PollSet set;
  set.on_notified(notifier, [&] { ++woken; });
  notifier.notify();
  notifier.notify();
  set.wait(milliseconds(1000));
  set.wait(milliseconds(0));  // drained: nothing ready now
  EXPECT_EQ(woken, 1);
}

TEST(PollSet, StepsRunOnATimeoutAndSkippedDescriptorsAreNotPolled) {
  int steps = 0, descriptor = 0;
  PollSet set;
  set.on_events([] { return -1; }, [] { return short{ZMQ_POLLIN}; }, [&](short) { ++descriptor; });
  set.every_wakeup([&] { ++steps; });
  set.wait(milliseconds(1));
  EXPECT_EQ(steps, 1);
  EXPECT_EQ(descriptor, 0);
}

TEST(PollSet, FollowsASocketReplacedBetweenWaits) {
  Pair first("first"), second("second");
  zmq::socket_t* current = &first.in;
  int read = 0;
  PollSet set;
  set.on_readable([&] { return current->handle(); }, [&] {
    zmq::message_t m;
    if (current->recv(m, zmq::recv_flags::dontwait)) ++read;
  });
  current = &second.in;
  first.send("not watched any more");
  set.wait(milliseconds(20));
  EXPECT_EQ(read, 0);
  second.send("watched");
  set.wait(milliseconds(1000));
  EXPECT_EQ(read, 1);
}

TEST(PollSet, ADescriptorHandlerGetsTheEventsThatFired) {
  Notifier notifier;  // any readable descriptor will do
  notifier.notify();
  short seen = 0;
  PollSet set;
  set.on_events([&] { return notifier.fd(); }, [] { return short{ZMQ_POLLIN}; },
                [&](short revents) { seen = revents; });
  set.wait(milliseconds(1000));
  EXPECT_TRUE(seen & ZMQ_POLLIN);
}

TEST(ReceiveBatch, StopsAtTheBudgetAndLeavesTheRestQueued) {
  Pair pair("budget");
  for (int i = 0; i < 5; ++i) pair.send(std::to_string(i));
  std::vector<std::string> got;
  auto keep = [&](Frames& frames) {
    got.push_back(frames.at(0).to_string());
    return true;
  };
  // inproc delivers in order once the pipe is attached; a short wait lets all five arrive.
  PollSet set;
  set.on_readable(pair.in, [] {});
  set.wait(milliseconds(1000));
  EXPECT_EQ(receive_batch(pair.in, 3, keep), 3);
  EXPECT_EQ(receive_batch(pair.in, 3, keep), 2);
  EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_EQ(receive_batch(pair.in, 3, keep), 0);
}

TEST(ReceiveBatch, StopsWhenTheHandlerSaysSo) {
  Pair pair("stop");
  pair.send("first");
  pair.send("second");
  PollSet set;
  set.on_readable(pair.in, [] {});
  set.wait(milliseconds(1000));
  EXPECT_EQ(receive_batch(pair.in, 10, [](Frames&) { return false; }), 1);
  EXPECT_EQ(receive_batch(pair.in, 10, [](Frames& f) { return f.at(0).to_string() == "second"; }), 1);
}

TEST(Identity, RandomHexHasTheBitsAskedForAndDoesNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = random_hex(128);
    ASSERT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(random_hex(16).size(), 4u);
}

TEST(Identity, DefaultProcessIdNamesTheHostAndPidWithARandomSuffix) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string prefix = std::string(host) + "-" + std::to_string(::getpid()) + "-";
  const std::string id = default_process_id();
  ASSERT_EQ(id.rfind(prefix, 0), 0u) << id;
  const std::string suffix = id.substr(prefix.size());
  EXPECT_EQ(suffix.size(), 4u) << id;
  EXPECT_EQ(suffix.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
}

}  // namespace
}  // namespace bridge::core
