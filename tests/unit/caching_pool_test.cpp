// The CUDA backend's memory pool logic (cap, size classes, reuse, trim, stats) over malloc/free.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "bridge/worker/caching_pool.hpp"

namespace bridge::worker {
namespace {

struct Counting {
  int allocations = 0;
  int frees = 0;
  bool refuse = false;
  CachingPool::RawAllocate allocate() {
    return [this](std::size_t bytes) -> void* {
      if (refuse) return nullptr;
      ++allocations;
      return std::malloc(bytes);
    };
  }
  CachingPool::RawFree free() {
    return [this](void* p) {
      ++frees;
      std::free(p);
    };
  }
};

TEST(CachingPool, SizeClassesArePowersOfTwoThenTwoMebibyteSteps) {
  EXPECT_EQ(size_class(1), 512u);
  EXPECT_EQ(size_class(513), 1024u);
  EXPECT_EQ(size_class(1 << 20), 1u << 20);
  EXPECT_EQ(size_class((1 << 20) + 1), 2u << 20);
  EXPECT_EQ(size_class((64u << 20) + 1), (66u << 20));
}

TEST(CachingPool, ReusesReleasedBlocksAndCountsHitsAndMisses) {
  Counting raw;
  CachingPool pool("test", 1 << 20, raw.allocate(), raw.free());
  void* a = pool.acquire(1000);
  pool.release(a);
  void* b = pool.acquire(900);  // same class (1024)
  EXPECT_EQ(a, b);
  const PoolStats s = pool.stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.bytes_in_use, 1024);
  EXPECT_EQ(raw.allocations, 1);
  pool.release(b);
  EXPECT_EQ(pool.stats().bytes_cached, 1024);
  pool.trim();
  EXPECT_EQ(pool.stats().bytes_cached, 0);
  EXPECT_EQ(raw.frees, 1);
}

TEST(CachingPool, RefusesBeyondTheCapAfterTrimmingItsCache) {
  Counting raw;
  CachingPool pool("test", 4096, raw.allocate(), raw.free());
  void* a = pool.acquire(2048);
  void* cached = pool.acquire(1024);
  pool.release(cached);
  // 2048 in use + 1024 cached + 2048 asked > 4096: the cache goes first, then it fits.
  void* b = pool.acquire(2048);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(raw.frees, 1);
  EXPECT_EQ(pool.acquire(1), nullptr);  // 4096 in use: full
  pool.release(a);
  pool.release(b);
}

TEST(CachingPool, TrimsAndRetriesWhenTheAllocatorRefuses) {
  Counting raw;
  CachingPool pool("test", 1 << 20, raw.allocate(), raw.free());
  pool.release(pool.acquire(4096));
  raw.refuse = true;
  EXPECT_EQ(pool.acquire(8192), nullptr);
  EXPECT_EQ(pool.stats().bytes_cached, 0);  // it trimmed before giving up
}

TEST(CachingPool, FreesEverythingOnDestruction) {
  Counting raw;
  {
    CachingPool pool("test", 1 << 20, raw.allocate(), raw.free());
    pool.acquire(100);
    pool.release(pool.acquire(5000));
  }
  EXPECT_EQ(raw.frees, raw.allocations);
}

}  // namespace
}  // namespace bridge::worker
