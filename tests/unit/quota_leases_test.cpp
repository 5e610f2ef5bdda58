// QuotaLeases: admission from leases taken in blocks, against an in-memory store that answers when
// the test says (as Redis would, later), so that no socket is needed (memory_lease_store.hpp).
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "bridge/broker/quota_leases.hpp"
#include "memory_lease_store.hpp"

namespace bridge::broker {
namespace {

using std::chrono::milliseconds;
using Decision = LeaseStore::Decision;

TenantQuota quota(std::uint32_t max_jobs) {
  TenantQuota q;
  q.max_inflight_jobs = max_jobs;
  q.max_inflight_bytes = 1 << 20;
  return q;
}

struct Rig {
  MemoryLeaseStore store;
  QuotaLeases leases{store};
  std::vector<Decision> decided;
  QuotaLeases::Admit admit(const TenantQuota& q, std::uint64_t bytes = 10) {
    return leases.admit("t", q, bytes, milliseconds(3000), [this](Decision d) { decided.push_back(d); });
  }
};

TEST(QuotaLeases, ALeaseIsTakenInBlocksAndLaterJobsAreAdmittedFromItWithoutTheStore) {
  Rig rig;
  const TenantQuota q = quota(160);  // blocks of 10
  EXPECT_EQ(rig.admit(q), QuotaLeases::Admit::kLater);
  ASSERT_TRUE(rig.store.answer());
  ASSERT_EQ(rig.decided.size(), 1u);
  EXPECT_TRUE(rig.decided[0].admitted);
  EXPECT_EQ(rig.store.held_jobs, 10u) << "the job plus a block of headroom";
  for (int i = 0; i < 9; ++i) EXPECT_EQ(rig.admit(q), QuotaLeases::Admit::kNow);
  EXPECT_EQ(rig.store.leases, 1) << "nine more jobs came from the lease";
  EXPECT_EQ(rig.admit(q), QuotaLeases::Admit::kLater) << "the lease is used up";
}

TEST(QuotaLeases, AnIdleTenantGivesItsWholeLeaseBack) {
  Rig rig;
  const TenantQuota q = quota(160);
  rig.admit(q);
  rig.store.answer();
  rig.leases.release("t", 10);
  rig.leases.trim();
  EXPECT_EQ(rig.store.held_jobs, 0u);
  EXPECT_EQ(rig.store.held_bytes, 0u);
}

TEST(QuotaLeases, ASmallLimitIsExactAcrossBrokers) {
  Rig rig;
  const TenantQuota q = quota(2);  // under 16: one unit at a time
  rig.store.others_jobs = 1;       // another broker holds one
  rig.admit(q);
  rig.store.answer();
  EXPECT_TRUE(rig.decided.back().admitted);
  rig.admit(q);
  rig.store.answer();
  EXPECT_FALSE(rig.decided.back().admitted);
  EXPECT_EQ(rig.decided.back().limit, "max_inflight_jobs");
}

TEST(QuotaLeases, GiveBacksTheStoreRefusedAreSetRightByResync) {
  Rig rig;
  const TenantQuota q = quota(160);
  rig.admit(q);
  rig.store.answer();
  rig.store.refuse_writes = true;  // the give-back of an idle tenant is lost
  rig.leases.release("t", 10);
  rig.leases.trim();
  EXPECT_EQ(rig.store.held_jobs, 10u) << "the store still counts the lease";
  rig.store.refuse_writes = false;
  rig.leases.resync();
  rig.leases.trim();
  EXPECT_EQ(rig.store.held_jobs, 0u) << "resync wrote this broker's truth";
}

TEST(QuotaLeases, WithoutTheStoreJobsAreUnreachableOrFailingOpenAdmittedAgainstTheLimits) {
  Rig rig;
  rig.store.reachable = false;
  const TenantQuota q = quota(2);
  EXPECT_EQ(rig.admit(q), QuotaLeases::Admit::kUnreachable);
  rig.leases.set_fail_open(true);
  EXPECT_EQ(rig.admit(q), QuotaLeases::Admit::kNow);
  EXPECT_EQ(rig.admit(q), QuotaLeases::Admit::kNow);
  EXPECT_EQ(rig.admit(q), QuotaLeases::Admit::kRefused) << "failing open still holds the tenant to its limit";
}

TEST(QuotaLeases, LosingTheStoreAnswersEveryWaitingJobOnce) {
  Rig rig;
  const TenantQuota q = quota(160);
  EXPECT_EQ(rig.admit(q), QuotaLeases::Admit::kLater);
  rig.leases.on_redis(false);
  ASSERT_EQ(rig.decided.size(), 1u);
  EXPECT_FALSE(rig.decided[0].reachable);
}

}  // namespace
}  // namespace bridge::broker
