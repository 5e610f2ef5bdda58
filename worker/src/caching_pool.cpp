#include "bridge/worker/caching_pool.hpp"

#include <cstring>

namespace bridge::worker {

std::size_t size_class(std::size_t bytes) {
  constexpr std::size_t kMin = 512;
  constexpr std::size_t kPowerOfTwoLimit = 64ull << 20;
  constexpr std::size_t kLargeStep = 2ull << 20;
  if (bytes <= kMin) return kMin;
  if (bytes <= kPowerOfTwoLimit) {
    std::size_t c = kMin;
    while (c < bytes) c <<= 1;
    return c;
  }
  return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

CachingPool::CachingPool(std::string name, std::uint64_t cap_bytes, RawAllocate allocate, RawFree free)
    : name_(std::move(name)), cap_(cap_bytes), allocate_(std::move(allocate)), free_(std::move(free)) {}

CachingPool::~CachingPool() {
  std::lock_guard lock(mutex_);
  // Blocks still in use belong to tensors that outlive the pool only if a caller broke the contract;
  // free everything so the device is clean either way.
  for (auto& [block, size] : sizes_) free_(block);
  sizes_.clear();
  cached_.clear();
}

void* CachingPool::acquire(std::size_t bytes) {
  const std::size_t size = size_class(bytes);
  std::lock_guard lock(mutex_);
  auto& list = cached_[size];
  if (!list.empty()) {
    void* block = list.back();
    list.pop_back();
    stats_.bytes_cached -= static_cast<std::int64_t>(size);
    stats_.bytes_in_use += static_cast<std::int64_t>(size);
    ++stats_.hits;
    return block;
  }
  auto total = [&] { return static_cast<std::uint64_t>(stats_.bytes_in_use + stats_.bytes_cached) + size; };
  if (total() > cap_) trim_locked();
  if (total() > cap_) return nullptr;
  void* block = allocate_(size);
  if (block == nullptr) {
    trim_locked();  // the device may be short because of our own cache
    block = allocate_(size);
    if (block == nullptr) return nullptr;
  }
  ++stats_.misses;
  stats_.bytes_in_use += static_cast<std::int64_t>(size);
  sizes_.emplace(block, size);
  return block;
}

void CachingPool::release(void* block) {
  if (block == nullptr) return;
  std::lock_guard lock(mutex_);
  auto it = sizes_.find(block);
  if (it == sizes_.end()) return;
  stats_.bytes_in_use -= static_cast<std::int64_t>(it->second);
  stats_.bytes_cached += static_cast<std::int64_t>(it->second);
  cached_[it->second].push_back(block);
}

void CachingPool::trim() {
  std::lock_guard lock(mutex_);
  trim_locked();
}

void CachingPool::trim_locked() {
  for (auto& [size, list] : cached_) {
    for (void* block : list) {
      free_(block);
      sizes_.erase(block);
      stats_.bytes_cached -= static_cast<std::int64_t>(size);
    }
    list.clear();
  }
}

PoolStats CachingPool::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::optional<Tensor> pooled_output(const std::shared_ptr<CachingPool>& pool, const OutputSpec& spec) {
  const std::size_t bytes = static_cast<std::size_t>(element_count(spec.shape)) * dtype_size(spec.dtype);
  void* block = bytes == 0 ? nullptr : pool->acquire(bytes);
  if (block == nullptr) return std::nullopt;
  // A block may hold another job's bytes (another tenant's): zeroed unless every element is written.
  if (spec.zero_fill) std::memset(block, 0, bytes);
  std::shared_ptr<const void> owner(block, [pool](const void* p) { pool->release(const_cast<void*>(p)); });
  return Tensor::adopt(spec.dtype, spec.shape, spec.name, std::move(owner), static_cast<const std::byte*>(block),
                       bytes);
}

}  // namespace bridge::worker
