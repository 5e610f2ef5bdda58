#pragma once
/// @file make_backend(): the backend a worker's `device` option asks for.

#include <memory>
#include <string>

#include "bridge/worker/backend.hpp"
#include "bridge/worker/worker_options.hpp"

namespace bridge::worker {

/// `device: cpu` gives the CPU backend. `auto` gives the CUDA backend on device 0 when the plugin
/// loads and finds a usable device, else the CPU backend, with `notice` saying why. `cuda:N` gives
/// the CUDA backend on device N or throws std::runtime_error saying why not.
std::shared_ptr<Backend> make_backend(const WorkerOptions& options, std::string& notice);

}  // namespace bridge::worker
