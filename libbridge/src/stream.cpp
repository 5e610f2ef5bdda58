#include "bridge/stream.hpp"

namespace bridge {

Stream::Stream(Client& client, std::string kernel, StreamOptions options)
    : client_(&client), kernel_(std::move(kernel)), options_(std::move(options)), state_(std::make_shared<State>()) {
  if (options_.window == 0) options_.window = 1;
}

Stream Stream::open(Client& client, std::string kernel, StreamOptions options) {
  return Stream(client, std::move(kernel), std::move(options));
}

Status Stream::write(std::vector<Tensor> inputs) {
  std::uint64_t seq = 0;
  {
    std::unique_lock lock(state_->mutex);
    if (state_->closed) return {StatusCode::kInvalidArgument, "the stream is closed; open a new one to send more"};
    auto has_room = [&] { return state_->written - state_->next_read < options_.window; };
    if (!has_room()) {
      if (!options_.block_when_full)
        return {StatusCode::kResourceExhausted, std::to_string(options_.window) +
                                                    " items are unread (the stream's window); read results first"};
      state_->changed.wait(lock, [&] { return has_room() || state_->closed; });
      if (state_->closed) return {StatusCode::kInvalidArgument, "the stream was closed while this write waited"};
    }
    seq = state_->written++;
  }
  JobRequest request{.kernel = kernel_, .inputs = std::move(inputs), .params = options_.params,
                     .tenant = options_.tenant, .placement = options_.placement, .timeout = options_.timeout};
  client_->submit(std::move(request), [state = state_, seq](JobResult result) {
    {
      std::lock_guard lock(state->mutex);
      state->done.emplace(seq, std::move(result));
    }
    state->changed.notify_all();
  });
  // Never held by a BatchedSends of this thread: the stream's reader waits for it.
  Client::BatchedSends(*client_).send_now();
  return {};
}

std::optional<JobResult> Stream::read() {
  std::unique_lock lock(state_->mutex);
  state_->changed.wait(lock, [&] {
    return state_->done.count(state_->next_read) > 0 || (state_->closed && state_->next_read == state_->written);
  });
  auto it = state_->done.find(state_->next_read);
  if (it == state_->done.end()) return std::nullopt;  // closed and drained
  JobResult result = std::move(it->second);
  state_->done.erase(it);
  ++state_->next_read;
  lock.unlock();
  state_->changed.notify_all();  // a writer may be waiting for room
  return result;
}

void Stream::close() {
  {
    std::lock_guard lock(state_->mutex);
    state_->closed = true;
  }
  state_->changed.notify_all();
}

std::size_t Stream::outstanding() const {
  std::lock_guard lock(state_->mutex);
  return static_cast<std::size_t>(state_->written - state_->next_read);
}

}  // namespace bridge
