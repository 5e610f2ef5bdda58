#pragma once
/// @file ConfigMap: typed, strict reading of one YAML mapping. Every error names the file, the line
/// and the key, and a key nobody reads is refused (a typo must not silently fall back to a default).

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bridge::core {

/// Start-up configuration error; the message is meant for the operator as is.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Not thread-safe; used once at start (and on reload) by one thread.
class ConfigMap {
 public:
  /// Parses a file whose top level must be a mapping (or empty). Throws ConfigError.
  static ConfigMap load_file(const std::string& path);
  /// Parses text; `origin` names it in errors (e.g. a file name).
  static ConfigMap parse(const std::string& text, const std::string& origin);

  ~ConfigMap();
  ConfigMap(ConfigMap&&) noexcept;
  ConfigMap& operator=(ConfigMap&&) noexcept;

  bool has(const std::string& key) const;
  /// Keys of this mapping, in file order.
  std::vector<std::string> keys() const;

  /// Each `get` leaves `out` unchanged when the key is absent and throws ConfigError when the value
  /// has the wrong type or range for `out`.
  void get(const std::string& key, std::string& out) const;
  void get(const std::string& key, bool& out) const;
  void get(const std::string& key, double& out) const;
  void get(const std::string& key, std::int64_t& out) const;
  void get(const std::string& key, std::uint64_t& out) const;
  void get(const std::string& key, std::uint32_t& out) const;
  void get(const std::string& key, int& out) const;
  void get(const std::string& key, std::vector<std::string>& out) const;

  /// The mapping under `key`; an absent key gives an empty mapping.
  ConfigMap child(const std::string& key) const;

  /// Throws ConfigError naming the first key that no get()/child()/has-then-read touched.
  void reject_unknown_keys() const;

  /// Throws ConfigError "origin:line: path.key: problem".
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

  /// "origin" of this map (file name), for messages.
  const std::string& origin() const;
  /// Throws ConfigError if any key, at any depth, is not a plain name (YAML allows lists and
  /// mappings as keys). parse() calls it, so that lookups never meet such a key.
  void check_keys() const;

  struct Impl;  // opaque; keeps yaml-cpp out of this header

 private:
  explicit ConfigMap(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Resolves `path` relative to the directory of `relative_to_file` unless it is absolute.
std::string resolve_path(const std::string& path, const std::string& relative_to_file);

}  // namespace bridge::core
