#include "cuda_backend.hpp"

#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

namespace bridge::worker::cuda {
namespace {

using Clock = std::chrono::steady_clock;

std::string describe(cudaError_t error) {
  return std::string(cudaGetErrorName(error)) + ": " + cudaGetErrorString(error);
}

float elapsed_ms(cudaEvent_t from, cudaEvent_t to) {
  float ms = 0;
  return cudaEventElapsedTime(&ms, from, to) == cudaSuccess ? ms : 0.0f;
}

std::uint64_t to_us(float ms) { return static_cast<std::uint64_t>(ms * 1000.0f); }

}  // namespace

std::unique_ptr<CudaBackend> CudaBackend::create(const CudaBackendOptions& options, std::string& error) {
  if (!options.cpu) {
    error = "the CUDA backend needs a CPU backend to fall back on";
    return nullptr;
  }
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    error = describe(status);
    return nullptr;
  }
  if (options.device < 0 || options.device >= count) {
    error = "device " + std::to_string(options.device) + " does not exist (" + std::to_string(count) + " CUDA devices)";
    return nullptr;
  }
  auto backend = std::make_unique<CudaBackend>(Token{}, options);
  if (!backend->initialise(error)) return nullptr;
  return backend;
}

CudaBackend::CudaBackend(Token, const CudaBackendOptions& options) : options_(options), breaker_(options.breaker) {}

bool CudaBackend::initialise(std::string& error) {
  const int ordinal = options_.device;
  auto fail = [&](const char* what, cudaError_t e) {
    error = std::string(what) + ": " + describe(e);
    return false;
  };
  if (auto e = cudaSetDevice(ordinal); e != cudaSuccess) return fail("cudaSetDevice", e);
  cudaDeviceProp prop{};
  if (auto e = cudaGetDeviceProperties(&prop, ordinal); e != cudaSuccess) return fail("cudaGetDeviceProperties", e);
  device_.kind = DeviceKind::kCuda;
  device_.name = prop.name;
  device_.total_memory_bytes = prop.totalGlobalMem;
  device_.compute_capability_major = prop.major;
  device_.compute_capability_minor = prop.minor;
  device_.multiprocessors = prop.multiProcessorCount;

  const std::uint64_t cap = options_.device_pool_bytes > 0 ? options_.device_pool_bytes : prop.totalGlobalMem / 10 * 9;
  device_pool_ = std::make_shared<CachingPool>(
      "device", cap,
      [ordinal](std::size_t bytes) -> void* {
        void* p = nullptr;
        cudaSetDevice(ordinal);
        return cudaMalloc(&p, bytes) == cudaSuccess ? p : (cudaGetLastError(), nullptr);
      },
      [ordinal](void* p) {
        cudaSetDevice(ordinal);
        cudaFree(p);
      });
  pinned_pool_ = std::make_shared<CachingPool>(
      "pinned", options_.pinned_pool_bytes,
      [](std::size_t bytes) -> void* {
        void* p = nullptr;
        return cudaHostAlloc(&p, bytes, cudaHostAllocPortable) == cudaSuccess ? p : (cudaGetLastError(), nullptr);
      },
      [](void* p) { cudaFreeHost(p); });

  char bus_id[32] = {};
  cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, ordinal);
  nvml_ = std::make_unique<Nvml>(bus_id);

  slots_.resize(std::max<std::uint32_t>(1, options_.slots));
  for (Slot& slot : slots_) {
    if (auto e = cudaStreamCreateWithFlags(slot.stream.out(), cudaStreamNonBlocking); e != cudaSuccess)
      return fail("cudaStreamCreate", e);
    for (Event* event : {&slot.start, &slot.done})
      if (auto e = cudaEventCreate(event->out()); e != cudaSuccess) return fail("cudaEventCreate", e);
    if (cublasCreate(slot.cublas.out()) != CUBLAS_STATUS_SUCCESS) {
      error = "cublasCreate failed";
      return false;
    }
    cublasSetStream(slot.cublas, slot.stream);
  }
  for (Slot& slot : slots_) threads_.emplace_back([this, &slot] { slot_loop(slot); });
  spdlog::info("CUDA backend: device {} '{}', compute capability {}.{}, {} SMs, {} MiB, pool cap {} MiB, {} streams; "
               "NVML {}",
               ordinal, device_.name, prop.major, prop.minor, prop.multiProcessorCount, prop.totalGlobalMem >> 20,
               cap >> 20, slots_.size(), nvml_->available() ? "available" : "unavailable: " + nvml_->why_unavailable());
  return true;
}

CudaBackend::~CudaBackend() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  for (auto& t : threads_) t.join();
  cudaSetDevice(options_.device);  // the slots' handles are destroyed next, on this device
  slots_.clear();
}

void CudaBackend::execute(std::unique_ptr<Execution> execution, const Completion& done) {
  {
    std::lock_guard lock(mutex_);
    ++running_;
    queue_.push_back({std::move(execution), done});
  }
  work_.notify_one();
}

void CudaBackend::wait_idle() {
  {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return running_ == 0; });
  }
  options_.cpu->wait_idle();  // jobs this backend handed to the CPU
}

void CudaBackend::finished() {
  std::lock_guard lock(mutex_);
  if (--running_ == 0) idle_.notify_all();
}

void CudaBackend::slot_loop(Slot& slot) {
  cudaSetDevice(options_.device);
  while (true) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    run(std::move(task), slot);
  }
}

void CudaBackend::run(Task task, Slot& slot) {
  Execution& e = *task.execution;
  Status refused;
  if (e.cancel->requested())
    refused = e.cancel->status();
  else if (Clock::now() > e.deadline)
    refused = Status(StatusCode::kDeadlineExceeded, "deadline passed while the job waited in the worker");
  else
    refused = prepare_execution(e, [this](const OutputSpec& spec) { return allocate_output(spec); });
  if (!refused.is_ok()) {
    e.status = std::move(refused);
    e.ran_on = &device_;
    task.done(std::move(task.execution));
    return finished();
  }
  // A pipeline runs on the GPU only as a whole, so that its intermediates never cross the bus.
  std::vector<GpuKernelFn> kernels;
  for (std::size_t i = 0; i < e.step_count(); ++i) {
    const std::string& name = e.step_kernel(i).name;
    kernels.push_back(find_gpu_kernel(name));
    if (kernels.back() == nullptr)
      return fall_back(std::move(task), "kernel '" + name + "' has no GPU implementation" +
                                            (e.step_count() > 1 ? " (the whole pipeline runs on the CPU)" : ""));
  }
  if (!breaker_.allow()) return fall_back(std::move(task), breaker_.describe());

  const GpuStatus status = run_on_gpu(e, slot, kernels);
  if (status.ok()) {
    breaker_.record_success();
    // The stages were enqueued together, so a stop request ends the job here, not between them.
    e.status = e.cancel->requested() ? e.cancel->status() : Status{};
    e.ran_on = &device_;
    task.done(std::move(task.execution));
    return finished();
  }
  if (status.error == cudaErrorMemoryAllocation) {
    breaker_.record_success();  // the device works; it is only full
    return fall_back(std::move(task), "GPU out of memory: " + status.what);
  }
  if (breaker_.record_failure()) spdlog::error("CUDA backend: {}", breaker_.describe());
  spdlog::warn("CUDA backend: job dispatch {} failed on the GPU ({}); running it on the CPU", e.dispatch_id,
               status.what);
  fall_back(std::move(task), "GPU failure: " + status.what);
}

void CudaBackend::fall_back(Task task, std::string reason) {
  Execution& e = *task.execution;
  // A failed GPU attempt may have written part of an output; CPU kernels expect zeros.
  for (std::size_t i = 0; i < e.step_count(); ++i)
    for (Tensor& t : e.step_outputs(i))
      if (t.byte_size() > 0) std::memset(t.mutable_bytes().data(), 0, t.byte_size());
  e.fallback_reason = std::move(reason);
  options_.cpu->execute(std::move(task.execution), task.done);
  finished();
}

GpuStatus CudaBackend::run_on_gpu(Execution& e, Slot& slot, const std::vector<GpuKernelFn>& kernels) {
  const std::size_t steps = e.step_count();
  std::vector<void*> device_buffers;  // inputs, every step's outputs, scratch: back to the pool at the end
  std::vector<void*> staging;
  bool enqueued = false;  // something is on the stream: wait for it before reusing buffers
  auto release_all = [&] {
    if (enqueued) cudaStreamSynchronize(slot.stream);
    for (void* p : device_buffers) device_pool_->release(p);
    for (void* p : staging) pinned_pool_->release(p);
  };
  std::vector<DeviceCopy*> filled;  // actors' device copies this job uploads into
  auto give_up = [&](GpuStatus status) {
    release_all();
    for (DeviceCopy* copy : filled) copy->buffer.reset();  // its upload may not have happened
    cudaGetLastError();  // clear a non-sticky error so the next job starts clean
    return status;
  };
  auto check = [](cudaError_t error, const char* what) -> GpuStatus {
    if (error == cudaSuccess) return {};
    return {error, std::string(what) + ": " + describe(error)};
  };
  auto device_alloc = [&](std::size_t bytes, void*& out) -> GpuStatus {
    out = nullptr;
    if (bytes == 0) return {};
    out = device_pool_->acquire(bytes);
    if (out == nullptr) return {cudaErrorMemoryAllocation, "no " + std::to_string(bytes) + " bytes in the device pool"};
    device_buffers.push_back(out);
    return {};
  };
  while (slot.marks.size() < steps + 1) {
    Event event;
    if (auto s = check(cudaEventCreate(event.out()), "cudaEventCreate"); !s.ok()) return s;
    slot.marks.push_back(std::move(event));
  }
  // Host side first (device buffers, pinned staging copies), so that the GPU timeline measured by
  // the events holds only the uploads, the kernels and the downloads.
  const auto host_start = Clock::now();
  std::vector<const void*> step_inputs;  // device addresses of the current step's inputs
  std::vector<const void*> sources;      // what each upload reads: a pinned staging copy, or the frame itself
  for (std::size_t i = 0; i < e.inputs.size(); ++i) {
    const Tensor& input = e.inputs[i];
    const std::size_t bytes = input.byte_size();
    DeviceCopy* resident = i < e.resident_copies.size() ? e.resident_copies[i].get() : nullptr;
    void* device = nullptr;
    if (resident != nullptr && bytes > 0) {
      // An actor's resident tensor: uploaded by the first call that uses it, then reused. Its
      // block stays out of the job's buffers; the copy gives it back when the actor drops it.
      std::lock_guard lock(resident->mutex);
      if (resident->buffer) {
        step_inputs.push_back(resident->buffer.get());
        sources.push_back(nullptr);  // already on the device
        continue;
      }
      if ((device = device_pool_->acquire(bytes)) != nullptr) {
        resident->buffer = std::shared_ptr<void>(device, [pool = device_pool_](void* p) { pool->release(p); });
        filled.push_back(resident);
      }
    }
    if (device == nullptr)
      if (auto s = device_alloc(bytes, device); !s.ok()) return give_up(s);
    step_inputs.push_back(device);
    const void* source = bytes == 0 ? nullptr : input.bytes().data();
    // Pinned staging lets the copy run asynchronously; without room in the pinned pool, the driver
    // stages the pageable bytes itself (slower, still correct).
    if (void* pinned = bytes == 0 ? nullptr : pinned_pool_->acquire(bytes)) {
      std::memcpy(pinned, source, bytes);
      staging.push_back(pinned);
      source = pinned;
    }
    sources.push_back(source);
  }
  std::vector<std::vector<void*>> step_outputs(steps);
  for (std::size_t i = 0; i < steps; ++i)
    for (const Tensor& output : e.step_outputs(i)) {
      void* device = nullptr;
      if (auto s = device_alloc(output.byte_size(), device); !s.ok()) return give_up(s);
      step_outputs[i].push_back(device);
    }
  const auto host_staging_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - host_start).count());

  enqueued = true;
  if (auto s = check(cudaEventRecord(slot.start, slot.stream), "cudaEventRecord"); !s.ok()) return give_up(s);
  for (std::size_t i = 0; i < e.inputs.size(); ++i) {
    if (sources[i] == nullptr) continue;
    if (auto s = check(cudaMemcpyAsync(const_cast<void*>(step_inputs[i]), sources[i], e.inputs[i].byte_size(),
                                       cudaMemcpyHostToDevice, slot.stream),
                       "upload");
        !s.ok())
      return give_up(s);
  }
  if (auto s = check(cudaEventRecord(slot.marks[0], slot.stream), "cudaEventRecord"); !s.ok()) return give_up(s);
  for (std::size_t i = 0; i < steps; ++i) {
    // Each step reads the previous step's device outputs: intermediates never leave the device.
    GpuJob job{e.step_inputs(i), e.step_params(i), step_inputs,   step_outputs[i],
               slot.stream,      slot.cublas,      *device_pool_, {}};
    const GpuStatus launched = kernels[i](job);
    device_buffers.insert(device_buffers.end(), job.scratch.begin(), job.scratch.end());
    if (!launched.ok()) return give_up(launched);
    if (auto s = check(cudaEventRecord(slot.marks[i + 1], slot.stream), "cudaEventRecord"); !s.ok()) return give_up(s);
    step_inputs.assign(step_outputs[i].begin(), step_outputs[i].end());
  }
  std::vector<Tensor>& result = e.result();
  for (std::size_t i = 0; i < result.size(); ++i) {
    const std::size_t bytes = result[i].byte_size();
    if (bytes == 0) continue;
    // Outputs come from allocate_output(): pinned, so this lands without an extra host copy.
    if (auto s = check(cudaMemcpyAsync(result[i].mutable_bytes().data(), step_outputs[steps - 1][i], bytes,
                                       cudaMemcpyDeviceToHost, slot.stream),
                       "download");
        !s.ok())
      return give_up(s);
  }
  if (auto s = check(cudaEventRecord(slot.done, slot.stream), "cudaEventRecord"); !s.ok()) return give_up(s);
  // Waits for this slot's stream only; other slots keep the device busy meanwhile. Errors of
  // earlier asynchronous work (a kernel fault) surface here.
  if (auto s = check(cudaEventSynchronize(slot.done), "job on the GPU"); !s.ok()) return give_up(s);
  enqueued = false;
  e.transfer_us += host_staging_us + to_us(elapsed_ms(slot.start, slot.marks[0])) +
                   to_us(elapsed_ms(slot.marks[steps], slot.done));
  e.compute_us = to_us(elapsed_ms(slot.marks[0], slot.marks[steps]));
  e.step_compute_us.clear();
  for (std::size_t i = 0; i < steps; ++i)
    e.step_compute_us.push_back(to_us(elapsed_ms(slot.marks[i], slot.marks[i + 1])));
  release_all();
  return {};
}

Tensor CudaBackend::allocate_output(const OutputSpec& spec) {
  // Pinned, so that device-to-host copies land in it directly; plain memory when the pool is full.
  std::optional<Tensor> pinned = pooled_output(pinned_pool_, spec);
  return pinned ? std::move(*pinned) : Backend::allocate_output(spec);
}

DeviceMetrics CudaBackend::metrics() {
  DeviceMetrics m;
  cudaSetDevice(options_.device);
  std::size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) == cudaSuccess) m.free_memory_bytes = static_cast<std::int64_t>(free);
  const NvmlReadings nvml = nvml_->read();
  m.temperature_c = nvml.temperature_c;
  m.utilization_percent = nvml.utilization_percent;
  m.power_watts = nvml.power_watts;
  const PoolStats pool = device_pool_->stats();
  m.pool_bytes_in_use = pool.bytes_in_use;
  m.pool_bytes_cached = pool.bytes_cached;
  m.pool_hits = pool.hits;
  m.pool_misses = pool.misses;
  m.gpu_disabled = breaker_.is_open();
  return m;
}

}  // namespace bridge::worker::cuda
