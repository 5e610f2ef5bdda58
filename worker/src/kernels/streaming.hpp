#pragma once
// Streaming (non-temporal) stores, for a kernel's large output that is written once and not read
// again soon. An ordinary store first reads the line it writes into the cache; a loop that reads
// one stream and writes another thus moves three lines per line written, where streaming stores
// move two. Below kMinBytes the output is likely to be read again soon (by the next stage, or by
// ZeroMQ sending it), and is better left in the cache. docs/performance.md, row L.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace bridge::worker::streaming {

constexpr std::size_t kMinBytes = std::size_t{8} << 20;

/// How many of the `count` floats at `p` come before the first one on an `align`-byte boundary,
/// which streaming stores of that width need; all of them where a float is itself misaligned.
inline std::size_t unaligned_head(const float* p, std::size_t count, std::size_t align) {
  const auto misalign = reinterpret_cast<std::uintptr_t>(p) % align;
  if (misalign % sizeof(float) != 0) return count;
  return std::min(count, misalign == 0 ? 0 : (align - misalign) / sizeof(float));
}

/// Streaming stores are weakly ordered: a task's must all have landed before it says it is done.
/// Once per task, not per row: the fence waits for the write-combining buffers to drain.
inline void fence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

}  // namespace bridge::worker::streaming
