#include "bridge/core/args.hpp"

#include <algorithm>

#include "bridge/core/config_map.hpp"

namespace bridge::core {

Args::Args(int argc, char** argv, std::vector<std::string> boolean_flags) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    const auto equals = name.find('=');
    if (equals != std::string::npos) {
      values_[name.substr(0, equals)].push_back(name.substr(equals + 1));
    } else if (std::find(boolean_flags.begin(), boolean_flags.end(), name) != boolean_flags.end()) {
      values_[name].push_back("true");
    } else {
      if (i + 1 >= argc) throw ConfigError("flag --" + name + " needs a value");
      values_[name].push_back(argv[++i]);
    }
  }
}

std::string Args::get(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : it->second.back();
}

std::uint32_t Args::get_uint(const std::string& flag, std::uint32_t fallback) const {
  if (!has(flag)) return fallback;
  const std::string value = get(flag);
  if (value.empty() || value.size() > 9 || value.find_first_not_of("0123456789") != std::string::npos)
    throw ConfigError("--" + flag + ": expected a non-negative integer, got '" + value + "'");
  return static_cast<std::uint32_t>(std::stoul(value));
}

std::vector<std::string> Args::all(const std::string& flag) const {
  auto it = values_.find(flag);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

void Args::reject_unknown(const std::vector<std::string>& known) const {
  for (const auto& [name, values] : values_)
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw ConfigError("unknown flag --" + name + " (see --help)");
}

}  // namespace bridge::core
