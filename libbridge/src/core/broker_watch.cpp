#include "bridge/core/broker_watch.hpp"

#include <utility>

#include "bridge/core/config_map.hpp"

namespace bridge::core {

std::vector<std::string> parse_broker_list(std::string_view list) {
  const std::string whole(list);
  std::vector<std::string> brokers;
  while (true) {
    const auto comma = list.find(',');
    std::string_view entry = list.substr(0, comma);
    while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) entry.remove_prefix(1);
    while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
    if (entry.empty())
      throw ConfigError("broker: '" + whole +
                        "' has an empty entry; give one endpoint, or several separated by commas "
                        "(tcp://HOST:PORT,tcp://HOST2:PORT)");
    brokers.emplace_back(entry);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return brokers;
}

BrokerWatch::BrokerWatch(std::vector<std::string> brokers, std::chrono::milliseconds check, std::size_t first,
                         Clock::time_point now)
    : brokers_(std::move(brokers)), check_(check), current_(first % brokers_.size()), last_heard_(now) {}

BrokerWatch::Action BrokerWatch::due(Clock::time_point now, bool work_pending) {
  if (ping_soon_) {
    // A new connection to the same broker: its first message tells the broker it is this client
    // again, and its pending results are sent here from then on (docs/security.md).
    ping_soon_ = false;
    return Action::kPing;
  }
  if (check_.count() <= 0) return Action::kNone;
  // Silent for two checks, and a Ping unanswered for one, while something waits: gone, or cut off
  // from here. (A client idle for long first asks: a quiet broker is not a dead one.)
  if (brokers_.size() > 1 && work_pending && asking_ && now - asked_since_ >= check_ && now - last_heard_ >= 2 * check_)
    return Action::kMove;
  if (now < next_ping_) return Action::kNone;
  // Cheap checks first: this runs on every wake-up of the I/O thread, and a busy broker is heard
  // from all the time; only a silent one is worth asking. Or one that has not said who it is for a
  // while: results alone do not say it is the same process (one restarted at the same address
  // answers the requests this client's socket held for it during the outage, and knows nothing of
  // those the old one lost; its Pong's new incarnation makes the client send those again).
  if (known_ && (now - last_heard_ < check_ || !work_pending) &&
      (!work_pending || now - confirmed_ < kReconfirmChecks * check_))
    return Action::kNone;
  return Action::kPing;
}

const std::string& BrokerWatch::move(Clock::time_point now) {
  current_ = (current_ + 1) % brokers_.size();
  last_heard_ = now;  // the next one gets two checks of its own
  asking_ = known_ = false;
  ping_soon_ = true;  // its Pong says who it is, and the pending jobs go to it
  return brokers_[current_];
}

}  // namespace bridge::core
