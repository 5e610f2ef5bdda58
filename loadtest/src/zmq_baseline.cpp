// bridge-zmq-baseline: the ceiling for the fleet's per-job overhead. The same path as a job, with
// nothing but ZeroMQ on it: client DEALER -> relay ROUTER (front) -> relay ROUTER (back) -> worker
// DEALER, and back; the same hop count, payload size and closed loop as bridge-loadtest. The relay
// hands requests to workers round-robin with credits, as the broker does; workers echo. Used by
// scripts/bench. With --curve-dir, every connection is encrypted with CURVE as the fleet's are (the
// relay's key DIR/broker.key, the others' DIR/client.key and DIR/broker.pub, made by bridgectl
// keygen); the relay has no ZAP handler, which checks keys once per connection, not per message.
//   bridge-zmq-baseline relay --front EP --back EP [--curve-dir DIR]
//   bridge-zmq-baseline echo --connect EP [--id ID] [--credits N] [--curve-dir DIR]
//   bridge-zmq-baseline client --connect EP [--bytes N] [--concurrency N] [--duration S] [--warmup S] [--json FILE]
//                              [--curve-dir DIR]
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <nlohmann/json.hpp>

#include "bridge/core/cli.hpp"
#include "bridge/core/curve.hpp"
#include "histogram.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Frames = std::vector<zmq::message_t>;

struct RelayArgs {
  std::string front, back, curve_dir;
};
struct EchoArgs {
  std::string connect, id, credits = "4", curve_dir;
};
struct ClientArgs {
  std::string connect, json, curve_dir;
  std::size_t bytes = 16;
  unsigned concurrency = 64;
  double warmup_s = 2, duration_s = 10;
};

// A socket that connects: CURVE with DIR/client.key and DIR/broker.pub when `curve_dir` is set.
void connect_as_client(zmq::socket_t& socket, const std::string& endpoint, const std::string& curve_dir) {
  if (!curve_dir.empty())
    bridge::core::apply_curve_client(
        socket, bridge::core::read_client_keys(curve_dir + "/client.key", curve_dir + "/broker.pub", false));
  socket.connect(endpoint);
}

int relay(const RelayArgs& args) {
  zmq::context_t context(1);
  zmq::socket_t front(context, zmq::socket_type::router), back(context, zmq::socket_type::router);
  for (auto* s : {&front, &back}) {
    s->set(zmq::sockopt::sndhwm, 100000);
    s->set(zmq::sockopt::rcvhwm, 100000);
    if (args.curve_dir.empty()) continue;
    s->set(zmq::sockopt::curve_server, 1);  // and no ZAP domain: no handler to ask
    s->set(zmq::sockopt::curve_secretkey, bridge::core::read_key_file(args.curve_dir + "/broker.key", true).secret_key);
  }
  front.bind(args.front);
  back.bind(args.back);
  std::map<std::string, int> credits;    // worker -> free credits
  std::deque<std::string> ready;         // one entry per free credit, round-robin
  std::deque<Frames> waiting;            // requests with no free worker
  auto dispatch = [&](Frames request) {  // request: [client][payload...]
    const std::string worker = ready.front();
    ready.pop_front();
    --credits[worker];
    request.insert(request.begin(), zmq::message_t(worker.data(), worker.size()));
    zmq::send_multipart(back, request);
  };
  while (true) {
    zmq::pollitem_t items[] = {{back.handle(), 0, ZMQ_POLLIN, 0}, {front.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(-1));
    if (items[0].revents & ZMQ_POLLIN) {
      for (int i = 0; i < 512; ++i) {
        Frames reply;  // [worker][client][payload] or [worker]["READY" credits]
        if (!zmq::recv_multipart(back, std::back_inserter(reply), zmq::recv_flags::dontwait)) break;
        const std::string worker = reply[0].to_string();
        if (reply.size() == 2) {  // hello: its credits
          const int n = std::stoi(reply[1].to_string());
          credits[worker] = n;
          for (int c = 0; c < n; ++c) ready.push_back(worker);
        } else {
          ++credits[worker];
          ready.push_back(worker);
          Frames out(std::make_move_iterator(reply.begin() + 1), std::make_move_iterator(reply.end()));
          zmq::send_multipart(front, out);
        }
        while (!waiting.empty() && !ready.empty()) {
          dispatch(std::move(waiting.front()));
          waiting.pop_front();
        }
      }
    }
    if (items[1].revents & ZMQ_POLLIN) {
      for (int i = 0; i < 512; ++i) {
        Frames request;
        if (!zmq::recv_multipart(front, std::back_inserter(request), zmq::recv_flags::dontwait)) break;
        if (ready.empty())
          waiting.push_back(std::move(request));
        else
          dispatch(std::move(request));
      }
    }
  }
}

int echo(const EchoArgs& args) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  if (!args.id.empty()) socket.set(zmq::sockopt::routing_id, args.id);
  connect_as_client(socket, args.connect, args.curve_dir);
  std::array<zmq::const_buffer, 1> hello{zmq::buffer(args.credits)};
  zmq::send_multipart(socket, hello);
  while (true) {
    Frames request;  // [client][payload]
    if (!zmq::recv_multipart(socket, std::back_inserter(request))) continue;
    zmq::send_multipart(socket, request);
  }
}

int client(const ClientArgs& args) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::sndhwm, 100000);
  socket.set(zmq::sockopt::rcvhwm, 100000);
  connect_as_client(socket, args.connect, args.curve_dir);
  const std::size_t bytes = std::max<std::size_t>(8, args.bytes);
  const unsigned concurrency = args.concurrency;
  const auto warmup = std::chrono::duration<double>(args.warmup_s);
  const auto duration = std::chrono::duration<double>(args.duration_s);
  const auto start = Clock::now();
  const auto window = start + std::chrono::duration_cast<Clock::duration>(warmup);
  const auto end = window + std::chrono::duration_cast<Clock::duration>(duration);
  auto send = [&] {  // payload: the send time, then padding to `bytes`
    zmq::message_t m(bytes);
    std::memset(m.data(), 0, bytes);
    const auto now = Clock::now().time_since_epoch().count();
    std::memcpy(m.data(), &now, sizeof now);
    socket.send(m, zmq::send_flags::none);
  };
  for (unsigned i = 0; i < concurrency; ++i) send();
  bridge::loadtest::LatencyHistogram latency;
  std::uint64_t ok = 0;
  while (Clock::now() < end) {
    zmq::message_t m;
    if (!socket.recv(m, zmq::recv_flags::none)) continue;
    Clock::rep sent = 0;
    std::memcpy(&sent, m.data(), sizeof sent);
    const auto now = Clock::now();
    const Clock::time_point at{Clock::duration(sent)};
    if (at >= window) {
      latency.record(
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - at).count()));
      ++ok;
    }
    send();
  }
  const double seconds = duration.count();
  std::printf("zmq relay baseline: %llu round trips in %.1f s = %.1f/s, p50 %.3f ms, p99 %.3f ms\n",
              static_cast<unsigned long long>(ok), seconds, static_cast<double>(ok) / seconds,
              static_cast<double>(latency.percentile(50)) / 1000, static_cast<double>(latency.percentile(99)) / 1000);
  if (!args.json.empty()) {
    const nlohmann::ordered_json report = {{"ok", ok},
                                           {"ok_per_s", static_cast<double>(ok) / seconds},
                                           {"p50_ms", static_cast<double>(latency.percentile(50)) / 1000},
                                           {"p99_ms", static_cast<double>(latency.percentile(99)) / 1000}};
    std::ofstream(args.json) << report.dump() << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("The bare-ZeroMQ ceiling scripts/bench compares the fleet with: client -> relay -> echo workers.",
               "bridge-zmq-baseline");
  app.require_subcommand(1);
  RelayArgs relay_args;
  EchoArgs echo_args;
  ClientArgs client_args;
  CLI::App* relay_cmd = app.add_subcommand("relay", "two ROUTERs, jobs to workers round-robin with credits");
  relay_cmd->add_option("--front", relay_args.front, "endpoint clients connect to")->required();
  relay_cmd->add_option("--back", relay_args.back, "endpoint workers connect to")->required();
  const char* curve_help = "CURVE on every connection: DIR/broker.key (relay), DIR/client.key and DIR/broker.pub";
  relay_cmd->add_option("--curve-dir", relay_args.curve_dir, curve_help);
  CLI::App* echo_cmd = app.add_subcommand("echo", "a worker that sends every request back");
  echo_cmd->add_option("--connect", echo_args.connect, "the relay's back endpoint")->required();
  echo_cmd->add_option("--id", echo_args.id, "routing id");
  echo_cmd->add_option("--credits", echo_args.credits, "requests it takes at once")->capture_default_str();
  echo_cmd->add_option("--curve-dir", echo_args.curve_dir, curve_help);
  CLI::App* client_cmd = app.add_subcommand("client", "a closed loop of round trips, timed");
  client_cmd->add_option("--connect", client_args.connect, "the relay's front endpoint")->required();
  client_cmd->add_option("--bytes", client_args.bytes, "payload bytes (at least 8)")->capture_default_str();
  client_cmd->add_option("--concurrency", client_args.concurrency, "round trips in flight")->capture_default_str();
  client_cmd->add_option("--warmup", client_args.warmup_s, "seconds not counted")->capture_default_str();
  client_cmd->add_option("--duration", client_args.duration_s, "seconds counted")->capture_default_str();
  client_cmd->add_option("--json", client_args.json, "also write the figures as JSON to FILE");
  client_cmd->add_option("--curve-dir", client_args.curve_dir, curve_help);
  return bridge::core::run_cli(app, argc, argv, [&] {
    if (relay_cmd->parsed()) return relay(relay_args);
    if (echo_cmd->parsed()) return echo(echo_args);
    return client(client_args);
  });
}
