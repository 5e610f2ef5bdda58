#pragma once
/// @file Args: the small command-line parser the fleet's programs share ("--key value" or "--key=value").

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bridge::core {

/// Parses argv into flags and positional arguments. Flags named in `boolean_flags` take no value.
/// Throws ConfigError on a flag without its value. Not thread-safe.
class Args {
 public:
  Args(int argc, char** argv, std::vector<std::string> boolean_flags = {});

  bool has(const std::string& flag) const { return values_.count(flag) > 0; }
  /// Last value given for a flag, or `fallback`.
  std::string get(const std::string& flag, const std::string& fallback = {}) const;
  /// The flag's value as an unsigned integer, or `fallback`; throws ConfigError naming the flag on
  /// anything else.
  std::uint32_t get_uint(const std::string& flag, std::uint32_t fallback) const;
  /// Every value given for a repeatable flag, in order.
  std::vector<std::string> all(const std::string& flag) const;
  const std::vector<std::string>& positional() const { return positional_; }
  /// Throws ConfigError naming the first flag not in `known`.
  void reject_unknown(const std::vector<std::string>& known) const;

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

}  // namespace bridge::core
