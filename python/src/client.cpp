#include "client.hpp"

#include <pybind11/stl.h>

#include "arrays.hpp"
#include "convert.hpp"
#include "gil.hpp"
#include "reports.hpp"
#include "result.hpp"

namespace py = pybind11;

namespace gpubridge {
namespace {

// Completes a concurrent.futures.Future with the GIL held: a Result, or the error of its status. A
// future its caller cancelled takes nothing.
void complete(PyObject* future_ptr, bridge::JobResult result) {
  // Interned once: this runs for every job, and attr("...") would make the name string each time.
  static PyObject* const kCancelled = PyUnicode_InternFromString("cancelled");
  static PyObject* const kSetResult = PyUnicode_InternFromString("set_result");
  py::object future = py::reinterpret_steal<py::object>(future_ptr);
  try {
    auto cancelled = py::reinterpret_steal<py::object>(PyObject_CallMethodNoArgs(future.ptr(), kCancelled));
    if (!cancelled) throw py::error_already_set();
    if (cancelled.ptr() == Py_True) return;
    if (result.ok()) {
      py::object shown = py::cast(Result(std::move(result)));
      if (!py::reinterpret_steal<py::object>(PyObject_CallMethodOneArg(future.ptr(), kSetResult, shown.ptr())))
        throw py::error_already_set();
    } else {
      py::object shown = py::cast(Result(std::move(result)));
      future.attr("set_exception")(make_error(shown.cast<Result&>().job(), shown));
    }
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("gpubridge: completing a job's future");
  }
}

// Runs `fn(client)` without the GIL; the connection is held for the call, so a close() meanwhile
// only answers it CANCELLED.
template <class Fn>
bridge::Status blocking(const PyClient& owner, Fn&& fn) {
  std::shared_ptr<Connection> conn = owner.live();
  bridge::Status status;
  {
    py::gil_scoped_release unlocked;
    status = fn(*conn->client);
  }
  release_deferred();
  return status;
}

// A job's inputs. None only where `resident` names an actor's tensor, which takes its place.
std::vector<bridge::Tensor> tensors_of(const py::sequence& inputs, const std::vector<std::string>& resident) {
  const auto count = static_cast<std::size_t>(inputs.size());
  std::vector<bridge::Tensor> tensors;
  tensors.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    // Owned, not borrowed: a sequence may make its items as they are read (an array's rows).
    py::object input = inputs[i];
    if (!input.is_none()) {
      tensors.push_back(tensor_from_python(input));
    } else if (i < resident.size() && !resident[i].empty()) {
      tensors.emplace_back();
    } else {
      throw py::type_error("input " + std::to_string(i) +
                           " is None: pass an array (or, in an actor call, "
                           "gpubridge.Resident(name) for one of the actor's tensors)");
    }
  }
  return tensors;
}

void raise_unless_ok(const bridge::Status& status) {
  if (!status.is_ok()) raise(make_error(status));
}

}  // namespace

Connection::~Connection() {
  // In a done-callback, the delivery thread's hold on the client's sends ends before the client does.
  if (delivery->is_current()) delivery->end_hold();
  if (client) client->close();  // answers what is pending; needs no GIL
  delivery.reset();  // hands the answers to Python (its batches and their holds end); releases the GIL to wait
  client.reset();
}

PyClient::PyClient(const std::string& broker, std::string tenant, std::string key_file, std::string broker_key_file,
                   double timeout, int retry_attempts, double retry_initial_backoff, double retry_max_backoff,
                   double broker_check) {
  bridge::Client::Options options;
  options.broker = broker;
  options.tenant = std::move(tenant);
  options.key_file = std::move(key_file);
  options.broker_key_file = std::move(broker_key_file);
  options.timeout = to_ms(timeout, "timeout");
  if (options.timeout.count() <= 0) throw py::value_error("timeout must be more than 0 seconds");
  if (retry_attempts < 1) throw py::value_error("retry_attempts must be 1 (no retry) or more");
  options.retry = {retry_attempts, to_ms(retry_initial_backoff, "retry_initial_backoff"),
                   to_ms(retry_max_backoff, "retry_max_backoff")};
  options.broker_check = to_ms(broker_check, "broker_check");
  auto conn = std::make_shared<Connection>();
  conn->delivery = std::make_unique<Delivery>(complete);
  options.after_callbacks = [delivery = conn->delivery.get()] { delivery->after_callbacks(); };
  try {
    conn->client = std::make_unique<bridge::Client>(std::move(options));
    conn->delivery->hold_sends_of(*conn->client);
  } catch (const std::exception& e) {
    throw py::value_error("gpubridge.Client(broker='" + broker + "'): " + e.what());
  }
  conn_ = std::move(conn);
}

PyClient::~PyClient() {
  if (!forked_) close();
}

std::shared_ptr<Connection> PyClient::live() const {
  if (forked_)
    throw py::value_error(
        "this gpubridge Client was made before fork(): its threads are in the parent; make a new "
        "Client in this process");
  if (closed()) throw py::value_error("the gpubridge Client is closed");
  return conn_;
}

std::uint64_t PyClient::submit(std::string kernel, const py::sequence& inputs, const py::handle& params,
                               py::object future) {
  bridge::JobRequest request{.kernel = std::move(kernel), .params = params_of(params)};
  return send(std::move(request), inputs, std::move(future));
}

std::uint64_t PyClient::submit_with(const std::string& kernel, const py::sequence& inputs, const py::handle& params,
                                    py::object future, const std::string& tenant, const std::string& actor_id,
                                    int priority, const std::string& placement, std::optional<double> timeout,
                                    const Stages& stages, const std::vector<std::string>& resident_inputs,
                                    const std::vector<std::string>& keep_outputs) {
  bridge::JobRequest request{.kernel = kernel,
                             .params = params_of(params),
                             .tenant = tenant,
                             .actor_id = actor_id,
                             .priority = priority_of(priority),
                             .placement = placement_of(placement),
                             .timeout = to_ms(timeout, "timeout"),
                             .resident_inputs = resident_inputs,
                             .keep_outputs = keep_outputs};
  for (const auto& [name, stage_params] : stages) request.stages.push_back({name, params_of(stage_params)});
  return send(std::move(request), inputs, std::move(future));
}

// The job's tensors are converted with the GIL held (they reference Python arrays); the encoding
// and the hand-off to the I/O thread run without it.
std::uint64_t PyClient::send(bridge::JobRequest request, const py::sequence& inputs, py::object future) {
  std::shared_ptr<Connection> conn = live();
  request.inputs = tensors_of(inputs, request.resident_inputs);
  release_deferred();
  Delivery* delivery = conn->delivery.get();  // outlives every callback: the client goes first
  PyObject* handle = future.release().ptr();  // a strong reference, dropped by the delivery thread
  py::gil_scoped_release unlocked;
  return conn->client->submit(
      std::move(request), [delivery, handle](bridge::JobResult result) { delivery->post(handle, std::move(result)); });
}

void PyClient::cancel(std::uint64_t job_id) { live()->client->cancel(job_id); }

py::dict PyClient::status() {
  bridge::FleetStatus out;
  raise_unless_ok(blocking(*this, [&](bridge::Client& c) { return c.status(out); }));
  return to_python(out);
}

py::dict PyClient::quotas(const std::string& tenant) {
  bridge::QuotaReport out;
  raise_unless_ok(blocking(*this, [&](bridge::Client& c) { return c.quotas(tenant, out); }));
  return to_python(out);
}

py::dict PyClient::actor_info(const std::string& tenant, const std::string& actor_id) {
  bridge::ActorInfo out;
  raise_unless_ok(blocking(*this, [&](bridge::Client& c) { return c.actor_info(tenant, actor_id, out); }));
  return to_python(out);
}

py::dict PyClient::actor_reset(const std::string& tenant, const std::string& actor_id) {
  bridge::ActorInfo out;
  raise_unless_ok(blocking(*this, [&](bridge::Client& c) { return c.actor_reset(tenant, actor_id, out); }));
  return to_python(out);
}

std::uint64_t PyClient::resent_after_restart() { return live()->client->resent_after_restart(); }

std::string PyClient::tenant() { return live()->client->options().tenant; }

void PyClient::close() {
  if (forked_ || !conn_) return;
  std::shared_ptr<Connection> conn = conn_;
  conn->closed = true;
  {
    std::optional<py::gil_scoped_release> unlocked;
    if (PyGILState_Check()) unlocked.emplace();
    conn->client->close();  // answers what is pending and tells the broker; later calls: CANCELLED
    // Their futures completed before this returns, unless this is a done-callback on that very thread.
    if (!conn->delivery->is_current()) conn->delivery->flush();
  }
  conn_.reset();  // the last holder (perhaps a call still in progress, or a stream) frees it
}

void PyClient::abandon_after_fork() {
  forked_ = true;
  // Leaked on purpose: freeing it would join threads that do not exist in this process.
  new std::shared_ptr<Connection>(std::move(conn_));
}

PyStream::PyStream(const PyClient& client, const std::string& kernel, const py::handle& params, std::size_t window,
                   bool block_when_full, const std::string& tenant, const std::string& placement,
                   std::optional<double> timeout)
    : conn_(client.live()),
      stream_(std::make_unique<bridge::Stream>(bridge::Stream::open(*conn_->client, kernel,
                                                                    {.tenant = tenant,
                                                                     .params = params_of(params),
                                                                     .window = window,
                                                                     .block_when_full = block_when_full,
                                                                     .placement = placement_of(placement),
                                                                     .timeout = to_ms(timeout, "timeout")}))) {}

void PyStream::write(const py::sequence& inputs) {
  std::vector<bridge::Tensor> tensors = tensors_of(inputs, {});
  bridge::Status status;
  {
    py::gil_scoped_release unlocked;
    status = stream_->write(std::move(tensors));
  }
  raise_unless_ok(status);
}

py::object PyStream::read() {
  std::optional<bridge::JobResult> result;
  {
    py::gil_scoped_release unlocked;
    result = stream_->read();
  }
  release_deferred();
  if (!result) return py::none();
  const bool ok = result->ok();
  py::object shown = py::cast(Result(std::move(*result)));
  if (!ok) raise(make_error(shown.cast<Result&>().job(), shown));
  return shown;
}

void PySendBatch::enter() {
  if (held_) throw py::value_error("this batched_sends() block is already entered");
  held_.emplace(*conn_->client);
}

void PySendBatch::exit() { held_.reset(); }

void PySendBatch::send_now() {
  if (held_) held_->send_now();
}

}  // namespace gpubridge
