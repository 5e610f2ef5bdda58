#pragma once
/// @file CachingPool: the memory pool of the CUDA backend, for device memory and for pinned host
/// memory: a byte cap, size classes, reuse, trim and statistics (the seed's MemoryPoolManager). Plain
/// C++ over an allocate/free pair, so it is unit-tested without a GPU.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/worker/kernel.hpp"

namespace bridge::worker {

struct PoolStats {
  std::int64_t bytes_in_use = 0;  ///< handed out now (size-class bytes)
  std::int64_t bytes_cached = 0;  ///< freed by users, kept for reuse
  std::uint64_t hits = 0;         ///< allocations served from the cache
  std::uint64_t misses = 0;       ///< allocations that went to the CUDA allocator
};

/// Bytes a request of `bytes` occupies: powers of two from 512 B up to 64 MiB, then multiples of
/// 2 MiB, so that reuse is likely and waste is bounded (at most 2x, 2 MiB above 64 MiB).
std::size_t size_class(std::size_t bytes);

/// A caching allocator over a raw allocate/free pair. Thread-safe. When a request would pass the cap
/// (in use + cached + new), the cache is trimmed first; if it still would, the request fails.
class CachingPool {
 public:
  using RawAllocate = std::function<void*(std::size_t)>;  ///< nullptr on failure
  using RawFree = std::function<void(void*)>;

  CachingPool(std::string name, std::uint64_t cap_bytes, RawAllocate allocate, RawFree free);
  ~CachingPool();
  CachingPool(const CachingPool&) = delete;
  CachingPool& operator=(const CachingPool&) = delete;

  /// A block of at least `bytes`, or nullptr if the cap or the allocator refuses.
  void* acquire(std::size_t bytes);
  void release(void* block);
  /// Frees every cached block.
  void trim();
  PoolStats stats() const;
  std::uint64_t cap() const { return cap_; }

 private:
  void trim_locked();

  std::string name_;
  std::uint64_t cap_;
  RawAllocate allocate_;
  RawFree free_;
  mutable std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> cached_;  // by size class
  std::unordered_map<void*, std::size_t> sizes_;                // every live block's class
  PoolStats stats_;
};

/// An output tensor whose storage is a block of `pool`, zeroed if `spec.zero_fill`; the block goes
/// back to the pool when the last copy of the tensor goes (after ZeroMQ has sent it, typically), and
/// the pool lives as long as such a tensor does. nullopt when the pool has no room.
std::optional<Tensor> pooled_output(const std::shared_ptr<CachingPool>& pool, const OutputSpec& spec);

}  // namespace bridge::worker
