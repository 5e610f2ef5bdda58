#include "bridge/worker/cpu_backend.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

namespace bridge::worker {
namespace {

using Clock = std::chrono::steady_clock;

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "cpu";
}

// MemAvailable from /proc/meminfo, in bytes; -1 if unreadable.
std::int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  for (std::string key; in >> key;) {
    std::int64_t kib = 0;
    in >> kib;
    if (key == "MemAvailable:") return kib * 1024;
    in.ignore(64, '\n');
  }
  return -1;
}

// Busy and total jiffies of all CPUs from the first line of /proc/stat; false if unreadable.
bool read_cpu_jiffies(std::uint64_t& busy, std::uint64_t& total) {
  std::ifstream in("/proc/stat");
  std::string label;
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || label != "cpu")
    return false;
  busy = user + nice + system + irq + softirq + steal;
  total = busy + idle + iowait;
  return true;
}

// Host memory for the output pool: 2 MiB-aligned above 2 MiB, so that transparent huge pages can
// back it (one fault per 2 MiB instead of per 4 KiB) where the system allows them on request.
void* allocate_host_block(std::size_t bytes) {
  constexpr std::size_t kHugePage = 2u << 20;
  constexpr std::size_t kCacheLine = 64;  // as Tensor's own storage: aligned for every dtype
  const std::size_t alignment = bytes >= kHugePage ? kHugePage : kCacheLine;
  void* block = std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
  if (block != nullptr && bytes >= kHugePage) ::madvise(block, bytes, MADV_HUGEPAGE);  // advice: may be refused
  return block;
}

}  // namespace

struct CpuBackend::Arena {
  // oneTBB lets at most (cores - 1) worker threads run by default, counting on a master thread to
  // join; here no master joins, so the limit is raised to give the arena all of its threads.
  explicit Arena(int threads)
      : parallelism(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads) + 1),
        arena(threads, 0),
        inline_arena(1, 1) {}
  tbb::global_control parallelism;
  tbb::task_arena arena;
  // One slot, the caller's: a kernel's parallel loops run in it serially, on the thread that calls
  // run_inline(), and no oneTBB thread is woken.
  tbb::task_arena inline_arena;
};

void run_on_cpu(Execution& execution) {
  execution.status = {};
  execution.compute_us = 0;
  execution.step_compute_us.clear();
  // The job's own task group: a stop request cancels it, so the kernels' parallel loops (bound to
  // it as children) skip every chunk not yet started.
  tbb::task_group_context context;
  tbb::task_group group(context);
  execution.cancel->bind([&context] { context.cancel_group_execution(); });
  for (std::size_t i = 0; i < execution.step_count() && execution.status.is_ok(); ++i) {
    if (execution.cancel->requested()) break;  // between steps
    const KernelSpec& kernel = execution.step_kernel(i);
    const auto start = Clock::now();
    try {
      group.run_and_wait([&] { kernel.run_cpu(execution.step_args(i), execution.step_outputs(i)); });
    } catch (const std::exception& e) {
      execution.status = Status(StatusCode::kInternal, "kernel " + kernel.name + " failed on the CPU: " + e.what());
    }
    const auto us =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    execution.compute_us += us;
    execution.step_compute_us.push_back(us);
  }
  execution.cancel->unbind();
  // A stopped job's outputs are partial: it ends with the stop's reason, whatever the kernel did.
  if (execution.cancel->requested()) execution.status = execution.cancel->status();
}

CpuBackend::CpuBackend(Options options) {
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  const unsigned threads = options.threads == 0 ? hardware : options.threads;
  // No slot is reserved for an external "master" thread: the service thread only enqueues.
  arena_ = std::make_unique<Arena>(static_cast<int>(threads));
  if (options.output_pool_bytes > 0)
    output_pool_ = std::make_shared<CachingPool>("output", options.output_pool_bytes, allocate_host_block,
                                                 [](void* block) { std::free(block); });
  device_.kind = DeviceKind::kCpu;
  device_.name = cpu_model_name();
  device_.total_memory_bytes =
      static_cast<std::uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  device_.multiprocessors = static_cast<int>(threads);
  read_cpu_jiffies(last_busy_, last_total_);
}

CpuBackend::~CpuBackend() { wait_idle(); }

DeviceMetrics CpuBackend::metrics() {
  DeviceMetrics m;
  m.free_memory_bytes = available_memory_bytes();
  std::uint64_t busy = 0, total = 0;
  if (read_cpu_jiffies(busy, total) && total > last_total_) {
    m.utilization_percent = 100.0f * static_cast<float>(busy - last_busy_) / static_cast<float>(total - last_total_);
    last_busy_ = busy;
    last_total_ = total;
  }
  if (output_pool_) {
    const PoolStats pool = output_pool_->stats();
    m.pool_bytes_in_use = pool.bytes_in_use;
    m.pool_bytes_cached = pool.bytes_cached;
    m.pool_hits = pool.hits;
    m.pool_misses = pool.misses;
  }
  return m;  // temperature and power: not read on CPUs (-1, unknown)
}

Tensor CpuBackend::allocate_output(const OutputSpec& spec) {
  const auto bytes = static_cast<std::uint64_t>(element_count(spec.shape)) * dtype_size(spec.dtype);
  if (output_pool_ && bytes >= kPooledOutputBytes)
    if (std::optional<Tensor> pooled = pooled_output(output_pool_, spec)) return std::move(*pooled);
  return Backend::allocate_output(spec);
}

void CpuBackend::run(Execution& e) {
  e.ran_on = &device_;
  if (e.cancel->requested()) {
    e.status = e.cancel->status();
  } else if (Clock::now() > e.deadline) {
    e.status = Status(StatusCode::kDeadlineExceeded, "deadline passed while the job waited in the worker");
  } else if (Status prepared = prepare_execution(e, [this](const OutputSpec& spec) { return allocate_output(spec); });
             !prepared.is_ok()) {
    e.status = std::move(prepared);
  } else {
    run_on_cpu(e);
  }
}

bool CpuBackend::runs_inline(const Execution& e) const {
  // A hand-off to the arena and back costs two thread wake-ups, tens of microseconds on a busy
  // machine: more than a small job of a kernel that costs nanoseconds per byte. Such a job runs
  // here; anything else (a kernel of fixed or superlinear cost, however small its bytes) does not.
  // Shapes count by their extent (a dimension of 0 as 1): a tensor with no bytes may still have a
  // dimension a kernel works in proportion to, and such a job does not run here either.
  std::uint64_t extent = 0;
  auto add = [&extent](const Shape& shape, DType dtype) {
    std::uint64_t bytes = 0, tensor_extent = 0;
    // Capped, so that the sum cannot overflow either; a shape that does not count is too large.
    extent += shape_bytes(shape, dtype, bytes, tensor_extent) ? std::min(tensor_extent, kInlineJobBytes + 1)
                                                              : kInlineJobBytes + 1;
  };
  for (std::size_t i = 0; i < e.step_count(); ++i) {
    const KernelSpec& kernel = e.step_kernel(i);
    if (!kernel.bytes_bound) return false;
    const std::vector<OutputSpec>& planned = e.step_planned(i);
    for (const OutputSpec& spec : planned) add(spec.shape, spec.dtype);
    extent += kInlineStepBytes + std::min<std::uint64_t>(planned.size(), kInlineJobBytes) * kInlineOutputBytes;
    if (kernel.inline_bytes_per_row > 0 && !planned.empty() && !planned[0].shape.empty()) {
      // Rows of the first output (every dimension but the last, a 0 as 1), at their cost in bytes.
      const Shape& shape = planned[0].shape;
      std::uint64_t rows = 1;
      for (std::size_t d = 0; d + 1 < shape.size(); ++d)
        if (__builtin_mul_overflow(rows, static_cast<std::uint64_t>(std::max<std::int64_t>(shape[d], 1)), &rows))
          return false;
      extent += std::min(rows, kInlineJobBytes + 1) * kernel.inline_bytes_per_row;
    }
  }
  for (const auto& member : e.members)
    for (const Tensor& t : member->inputs) add(t.shape(), t.dtype());
  for (const Tensor& t : e.inputs) add(t.shape(), t.dtype());
  return extent <= kInlineJobBytes;
}

bool CpuBackend::run_inline(Execution& e) {
  if (!runs_inline(e)) return false;
  arena_->inline_arena.execute([&] { run(e); });
  return true;
}

void CpuBackend::execute(std::unique_ptr<Execution> execution, const Completion& done) {
  running_.fetch_add(1);
  // The Execution moves into the task; std::function needs a copyable callable, hence shared_ptr.
  auto shared = std::make_shared<std::unique_ptr<Execution>>(std::move(execution));
  arena_->arena.enqueue([this, shared, done] {
    run(**shared);
    done(std::move(*shared));
    if (running_.fetch_sub(1) == 1) {
      std::lock_guard lock(idle_mutex_);
      idle_.notify_all();
    }
  });
}

void CpuBackend::wait_idle() {
  std::unique_lock lock(idle_mutex_);
  idle_.wait(lock, [this] { return running_.load() == 0; });
}

}  // namespace bridge::worker
