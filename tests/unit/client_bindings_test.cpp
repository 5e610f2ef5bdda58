#include "bridge/broker/client_bindings.hpp"

#include <gtest/gtest.h>

namespace bridge::broker {
namespace {

TEST(ClientBindings, ResultsGoOnlyToTheKeyThatSentWhileItsConnectionLasts) {
  ClientBindings b;
  ASSERT_TRUE(b.seen("r", 7, "alice"));
  b.job_added("r");
  EXPECT_TRUE(b.deliverable("r", "alice"));
  EXPECT_FALSE(b.deliverable("r", "bob"));
  b.disconnected(7);
  EXPECT_FALSE(b.deliverable("r", "alice")) << "a socket that claims the id in silence gets nothing";
  // Another key on the id while alice's job is in the broker: refused.
  EXPECT_FALSE(b.seen("r", 9, "bob"));
  EXPECT_FALSE(b.deliverable("r", "alice"));
  // Alice again, on a new connection: her results flow again.
  EXPECT_TRUE(b.seen("r", 9, "alice"));
  EXPECT_TRUE(b.deliverable("r", "alice"));
}

TEST(ClientBindings, AnIdIsFreeForAnotherKeyOnceItsJobsHaveEnded) {
  ClientBindings b;
  ASSERT_TRUE(b.seen("r", 7, "alice"));
  b.job_added("r");
  b.disconnected(7);
  b.job_ended("r");
  EXPECT_EQ(b.size(), 0u) << "a closed connection with no jobs leaves nothing behind";
  EXPECT_TRUE(b.seen("r", 8, "bob"));
  EXPECT_TRUE(b.deliverable("r", "bob"));
  EXPECT_FALSE(b.deliverable("r", "alice"));
}

TEST(ClientBindings, AReusedDescriptorUnbindsOnlyItsOwnConnection) {
  ClientBindings b;
  ASSERT_TRUE(b.seen("a", 5, "alice"));
  b.job_added("a");
  b.disconnected(5);
  ASSERT_TRUE(b.seen("b", 5, "bob"));  // the kernel gave bob's connection the same number
  EXPECT_TRUE(b.deliverable("b", "bob"));
  EXPECT_FALSE(b.deliverable("a", "alice"));
  b.disconnected(5);
  EXPECT_FALSE(b.deliverable("b", "bob"));
  EXPECT_EQ(b.size(), 1u) << "alice's binding stays while her job is here";
}

}  // namespace
}  // namespace bridge::broker
