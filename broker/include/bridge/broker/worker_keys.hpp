#pragma once
/// @file WorkerKeys: the workers enrolled to serve the broker, by public key (workers_file).

#include <set>
#include <string>

namespace bridge::broker {

/// The public keys of workers_file (config/workers.yaml): a worker connects only with one of them
/// (the broker's ZAP handler refuses others), and a key removed from the file is refused at its
/// next message. The broker re-reads the file as it does tenants.yaml. Immutable after load.
class WorkerKeys {
 public:
  /// Reads a workers.yaml (`keys:` a list of Z85 public keys). Throws core::ConfigError naming the
  /// file, line and key.
  static WorkerKeys load_file(const std::string& path);
  static WorkerKeys parse(const std::string& text, const std::string& origin);

  bool enrolled(const std::string& key) const { return keys_.contains(key); }
  std::size_t size() const { return keys_.size(); }
  bool operator==(const WorkerKeys&) const = default;

 private:
  std::set<std::string> keys_;
};

}  // namespace bridge::broker
