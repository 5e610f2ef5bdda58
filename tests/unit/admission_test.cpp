// Admission: a job takes a unit of its tenant's quota or is refused naming the limit, against an
// in-memory lease store (memory_lease_store.hpp) and a recording Host: no socket, no Redis.
#include <gtest/gtest.h>

#include <map>

#include "bridge/broker/admission.hpp"
#include "memory_lease_store.hpp"

namespace bridge::broker {
namespace {

using std::chrono::milliseconds;

struct Rig final : Admission::Host {
  MemoryLeaseStore store;
  QuotaLeases leases{store};
  JobTable jobs;
  TenantTable tenants;
  Admission::Options options{.enforce_quotas = true,
                             .admission_timeout_ms = 2000,
                             .retry_after_ms = 700,
                             .tenants_file = "tenants.yaml",
                             .store_name = "redis://127.0.0.1:1/0"};
  std::unique_ptr<Admission> admission;

  std::vector<std::uint64_t> admitted_keys;
  std::map<std::uint64_t, std::pair<Status, std::uint32_t>> failed;  // key -> (status, retry_after_ms)
  std::vector<std::string> refusals;                                 // "<tenant>:<limit>"

  explicit Rig(std::uint32_t max_jobs, bool enforce = true) {
    TenantQuota q;
    q.max_inflight_jobs = max_jobs;
    q.max_inflight_bytes = 1000;
    tenants = TenantTable::of({{"t", q}});
    options.enforce_quotas = enforce;
    admission = std::make_unique<Admission>(options, tenants, jobs, leases, *this);
  }

  void admitted(Job& job) override { admitted_keys.push_back(job.key); }
  void fail(Job& job, const Status& status, std::uint32_t retry_after_ms) override {
    failed[job.key] = {status, retry_after_ms};
    end(job);
  }
  void quota_refused(const std::string& tenant, const std::string& limit) override {
    refusals.push_back(tenant + ":" + limit);
  }

  // The broker's release: the quota goes back, then the job is gone.
  void end(Job& job) {
    admission->ended(job);
    jobs.erase(job);
  }
  Job& add(std::uint64_t key, std::uint64_t bytes = 10, const std::string& tenant = "t") {
    auto job = std::make_unique<Job>();
    job->key = key;
    job->client = "c";
    job->client_job_id = key;
    job->tenant = tenant;
    job->received = Clock::now();
    job->deadline = job->received + milliseconds(10000);
    job->payload_bytes = bytes;
    return *jobs.add(std::move(job));
  }
};

TEST(Admission, AJobWaitsForTheStoreOnceAndLaterJobsAreAdmittedFromTheLease) {
  Rig rig(160);  // blocks of 10
  Job& first = rig.add(1);
  rig.admission->admit(first);
  EXPECT_TRUE(rig.admitted_keys.empty());
  EXPECT_EQ(first.state, JobState::kAdmitting);
  // Bounded while it waits: its step deadline is the admission timeout, and the table watches it.
  EXPECT_LE(first.step_deadline, Clock::now() + milliseconds(2000));
  EXPECT_LE(rig.jobs.next_due(), first.step_deadline);
  ASSERT_TRUE(rig.store.answer());
  EXPECT_EQ(rig.admitted_keys, std::vector<std::uint64_t>{1});
  EXPECT_TRUE(first.holds_quota);
  EXPECT_EQ(first.step_deadline, Clock::time_point::max()) << "admitted: the admission timeout no longer applies";

  Job& second = rig.add(2);
  rig.admission->admit(second);
  EXPECT_EQ(rig.admitted_keys, (std::vector<std::uint64_t>{1, 2})) << "admitted at once from the lease";
  EXPECT_EQ(rig.store.leases, 1) << "no second request to the store";

  // Both end: their units go back, and the idle tenant's whole lease with them.
  rig.end(first);
  rig.end(second);
  rig.leases.trim();
  EXPECT_EQ(rig.store.held_jobs, 0u);
}

TEST(Admission, ARefusalNamesTheLimitTheCountAndWhenToRetry) {
  Rig rig(1);
  rig.store.others_jobs = 1;  // another broker runs the tenant's only job
  Job& job = rig.add(1);
  rig.admission->admit(job);
  ASSERT_TRUE(rig.store.answer());
  ASSERT_EQ(rig.failed.count(1), 1u);
  const auto& [status, retry_after] = rig.failed[1];
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("tenant 't' has 1 jobs in flight, its max_inflight_jobs is 1"), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("retry after 700 ms"), std::string::npos) << status.message();
  EXPECT_EQ(retry_after, 700u);
  EXPECT_EQ(rig.refusals, std::vector<std::string>{"t:max_inflight_jobs"});
  EXPECT_EQ(rig.jobs.size(), 0u);
}

TEST(Admission, AGrantThatArrivesAfterItsJobEndedIsHandedBack) {
  Rig rig(1);
  Job& job = rig.add(1);
  rig.admission->admit(job);
  rig.end(job);  // its deadline passed, or it was cancelled, while the store decided
  ASSERT_TRUE(rig.store.answer());
  EXPECT_TRUE(rig.admitted_keys.empty());
  rig.leases.trim();
  EXPECT_EQ(rig.store.held_jobs, 0u) << "the late grant still counts against the tenant";
  // And the tenant's one job can run.
  Job& next = rig.add(2);
  rig.admission->admit(next);
  rig.store.answer();
  EXPECT_EQ(rig.admitted_keys, std::vector<std::uint64_t>{2});
}

TEST(Admission, AnUnreachableStoreIsUnavailableNamingIt) {
  Rig rig(16);
  rig.store.reachable = false;
  Job& job = rig.add(1);
  rig.admission->admit(job);
  ASSERT_EQ(rig.failed.count(1), 1u);
  EXPECT_EQ(rig.failed[1].first.code(), StatusCode::kUnavailable);
  EXPECT_NE(rig.failed[1].first.message().find("redis://127.0.0.1:1/0"), std::string::npos)
      << rig.failed[1].first.message();
  EXPECT_EQ(rig.failed[1].second, 700u);
}

TEST(Admission, ATenantRemovedFromTheFileIsUnknown) {
  Rig rig(16);
  Job& job = rig.add(1, 10, "gone");
  rig.admission->admit(job);
  ASSERT_EQ(rig.failed.count(1), 1u);
  EXPECT_EQ(rig.failed[1].first.code(), StatusCode::kUnknownTenant);
  EXPECT_NE(rig.failed[1].first.message().find("tenants.yaml"), std::string::npos);
  EXPECT_EQ(rig.store.leases, 0);
}

TEST(Admission, AJobThatHoldsItsQuotaOrQuotasOffIsAdmittedWithoutTheStore) {
  Rig rig(16);
  Job& again = rig.add(1);
  again.holds_quota = true;  // an actor call sent again after its worker was lost
  rig.admission->admit(again);
  EXPECT_EQ(rig.admitted_keys, std::vector<std::uint64_t>{1});

  Rig open(1, /*enforce=*/false);
  open.store.others_jobs = 1;
  Job& job = open.add(1);
  open.admission->admit(job);
  EXPECT_EQ(open.admitted_keys, std::vector<std::uint64_t>{1});
  EXPECT_FALSE(job.holds_quota);
  EXPECT_EQ(open.store.leases, 0);
}

}  // namespace
}  // namespace bridge::broker
