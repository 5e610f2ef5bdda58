// ClientLedger: bytes held for a client until libzmq lets go of them, budgets and stalls.
#include <gtest/gtest.h>

#include "bridge/broker/client_ledger.hpp"

namespace bridge::broker {
namespace {

using Clock = ClientLedger::Clock;
using std::chrono::milliseconds;

TEST(ClientLedger, CountsAFrameUntilItIsFreedWithoutCopyingIt) {
  ClientLedger ledger({.max_unread_bytes = 100, .stall = milliseconds(1000)});
  zmq::message_t original(64);
  const void* bytes = original.data();
  {
    zmq::message_t counted = ledger.counted("a", std::move(original));
    EXPECT_EQ(counted.data(), bytes) << "copied";
    EXPECT_EQ(counted.size(), 64u);
    EXPECT_EQ(ledger.unread_bytes("a"), 64u);
    EXPECT_EQ(ledger.unread_bytes("b"), 0u);
    zmq::message_t shared;
    shared.copy(counted);  // libzmq shares the bytes; they are held until the last reference goes
    counted = zmq::message_t();
    EXPECT_EQ(ledger.unread_bytes("a"), 64u);
  }
  EXPECT_EQ(ledger.unread_bytes("a"), 0u);
  EXPECT_EQ(ledger.total_unread(), 0u);
}

// Jobs in flight bring their results whatever the client holds: the budget bounds it only if a
// result that would pass it is withheld; a client holding nothing may get any one result. A
// withheld result puts the client over its budget until it has read down to half of it.
TEST(ClientLedger, ATenantsClientsShareOneBoundWhateverTheirNumber) {
  ClientLedger ledger({.max_unread_bytes = 100, .stall = milliseconds(1000), .max_unread_tenant_bytes = 150});
  std::vector<zmq::message_t> held;
  for (const char* client : {"a1", "a2", "a3"}) {
    ledger.belongs_to(client, "alice");
    held.push_back(ledger.counted(client, zmq::message_t(60)));
  }
  ledger.belongs_to("b1", "bob");
  held.push_back(ledger.counted("b1", zmq::message_t(60)));
  EXPECT_FALSE(ledger.over_budget("a1")) << "each client is within its own budget";
  EXPECT_EQ(ledger.tenant_unread_bytes("alice"), 180u);
  EXPECT_TRUE(ledger.tenant_over_budget("alice"));
  EXPECT_FALSE(ledger.tenant_over_budget("bob"));
  ledger.belongs_to("a4", "alice");
  EXPECT_TRUE(ledger.tenant_over_budget("alice")) << "a new connection of the tenant is over too";
  held.erase(held.begin());  // a1 read its result
  EXPECT_EQ(ledger.tenant_unread_bytes("alice"), 120u);
  EXPECT_FALSE(ledger.tenant_over_budget("alice"));
  held.clear();
  ledger.sweep(Clock::now());
  EXPECT_EQ(ledger.tenant_unread_bytes("alice"), 0u);
}

TEST(ClientLedger, AResultThatWouldPassTheBudgetIsWithheldUnlessTheClientHoldsNothing) {
  ClientLedger ledger({.max_unread_bytes = 100, .stall = milliseconds(50)});
  EXPECT_FALSE(ledger.withhold("a", 1000)) << "a result larger than the budget could never be delivered";
  zmq::message_t first = ledger.counted("a", zmq::message_t(30));
  zmq::message_t second = ledger.counted("a", zmq::message_t(30));
  EXPECT_FALSE(ledger.withhold("a", 40));
  EXPECT_FALSE(ledger.over_budget("a"));
  EXPECT_TRUE(ledger.withhold("a", 41));
  EXPECT_FALSE(ledger.withhold("b", 41)) << "another client's budget is its own";
  EXPECT_TRUE(ledger.over_budget("a")) << "its result was withheld: new jobs are refused";
  const auto t0 = Clock::now();
  EXPECT_TRUE(ledger.sweep(t0).empty());
  EXPECT_EQ(ledger.sweep(t0 + milliseconds(60)), std::vector<std::string>{"a"}) << "withheld for longer than the stall";
  first = zmq::message_t();  // it reads down to half the budget
  EXPECT_FALSE(ledger.over_budget("a"));
  second = zmq::message_t();
  EXPECT_FALSE(ledger.withhold("a", 1000));
}

TEST(ClientLedger, OverTheBudgetForLongerThanTheStallDropsTheClientOnce) {
  ClientLedger ledger({.max_unread_bytes = 100, .stall = milliseconds(50)});
  std::vector<zmq::message_t> unread;
  unread.push_back(ledger.counted("slow", zmq::message_t(80)));
  EXPECT_FALSE(ledger.over_budget("slow"));
  unread.push_back(ledger.counted("slow", zmq::message_t(80)));
  unread.push_back(ledger.counted("fast", zmq::message_t(10)));
  EXPECT_TRUE(ledger.over_budget("slow"));
  EXPECT_FALSE(ledger.over_budget("fast"));
  const auto t0 = Clock::now();
  EXPECT_TRUE(ledger.sweep(t0).empty());  // over since t0
  EXPECT_TRUE(ledger.sweep(t0 + milliseconds(20)).empty());
  EXPECT_EQ(ledger.sweep(t0 + milliseconds(60)), std::vector<std::string>{"slow"});
  EXPECT_TRUE(ledger.dropped("slow"));
  EXPECT_FALSE(ledger.dropped("fast"));
  EXPECT_TRUE(ledger.sweep(t0 + milliseconds(200)).empty()) << "named once";
  // It read (or its connection went): everything drained, so it starts afresh.
  unread.clear();
  EXPECT_TRUE(ledger.sweep(t0 + milliseconds(300)).empty());
  EXPECT_FALSE(ledger.dropped("slow"));
  EXPECT_EQ(ledger.total_unread(), 0u);
}

TEST(ClientLedger, FallingUnderTheBudgetRestartsTheStallClock) {
  ClientLedger ledger({.max_unread_bytes = 100, .stall = milliseconds(50)});
  std::vector<zmq::message_t> unread;
  unread.push_back(ledger.counted("c", zmq::message_t(150)));
  const auto t0 = Clock::now();
  ledger.sweep(t0);
  unread.clear();
  unread.push_back(ledger.counted("c", zmq::message_t(50)));
  EXPECT_TRUE(ledger.sweep(t0 + milliseconds(40)).empty());  // under: the clock stops
  unread.push_back(ledger.counted("c", zmq::message_t(100)));
  EXPECT_TRUE(ledger.sweep(t0 + milliseconds(60)).empty());  // over again, from now
  EXPECT_TRUE(ledger.sweep(t0 + milliseconds(100)).empty());
  EXPECT_EQ(ledger.sweep(t0 + milliseconds(120)).size(), 1u);
}

}  // namespace
}  // namespace bridge::broker
