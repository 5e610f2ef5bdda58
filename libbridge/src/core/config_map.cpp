#include "bridge/core/config_map.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include <yaml-cpp/yaml.h>

namespace bridge::core {

struct ConfigMap::Impl {
  YAML::Node node;
  std::string origin;
  std::string path;  // dotted path of this mapping, "" at top level
  mutable std::set<std::string> used;

  std::string where(const YAML::Node& at, const std::string& key) const {
    const auto mark = at.Mark();
    std::string line = mark.line >= 0 ? ":" + std::to_string(mark.line + 1) : "";
    return origin + line + ": " + (path.empty() ? key : path + "." + key);
  }
  YAML::Node lookup(const std::string& key) const {
    used.insert(key);
    return node[key];
  }
};

namespace {
std::unique_ptr<ConfigMap::Impl> make_impl(YAML::Node node, std::string origin, std::string path) {
  auto impl = std::make_unique<ConfigMap::Impl>();
  impl->node = std::move(node);
  impl->origin = std::move(origin);
  impl->path = std::move(path);
  return impl;
}

// A mapping key as text. YAML allows any node as a key (`? [a, b]: 1`); configuration keys are names.
std::string key_text(const YAML::Node& key, const std::string& origin) {
  if (!key.IsScalar()) {
    const auto mark = key.Mark();
    throw ConfigError(origin + (mark.line >= 0 ? ":" + std::to_string(mark.line + 1) : "") +
                      ": a key must be a plain name, not a list or mapping");
  }
  return key.Scalar();
}

template <class T>
T scalar_as(const ConfigMap& map, const YAML::Node& value, const std::string& key, const char* expected) {
  if (!value.IsScalar()) map.fail(key, std::string("expected ") + expected);
  try {
    return value.as<T>();
  } catch (const YAML::Exception&) {
    map.fail(key, std::string("expected ") + expected + ", got '" + value.Scalar() + "'");
  }
}
}  // namespace

ConfigMap::ConfigMap(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConfigMap::~ConfigMap() = default;
ConfigMap::ConfigMap(ConfigMap&&) noexcept = default;
ConfigMap& ConfigMap::operator=(ConfigMap&&) noexcept = default;

ConfigMap ConfigMap::parse(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw ConfigError(origin + ": the top level must be a mapping of keys to values");
  ConfigMap map(make_impl(root, origin, ""));
  map.check_keys();
  return map;
}

ConfigMap ConfigMap::load_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) text.append(buffer, n);
  std::fclose(f);
  return parse(text, path);
}

bool ConfigMap::has(const std::string& key) const { return impl_->node[key].IsDefined(); }

std::vector<std::string> ConfigMap::keys() const {
  std::vector<std::string> out;
  for (const auto& entry : impl_->node) out.push_back(key_text(entry.first, impl_->origin));
  return out;
}

void ConfigMap::check_keys() const {
  for (const auto& entry : impl_->node) {
    (void)key_text(entry.first, impl_->origin);
    if (entry.second.IsMap()) ConfigMap(make_impl(entry.second, impl_->origin, "")).check_keys();
  }
}

void ConfigMap::get(const std::string& key, std::string& out) const {
  auto value = impl_->lookup(key);
  if (!value.IsDefined() || value.IsNull()) return;
  out = scalar_as<std::string>(*this, value, key, "a string");
}

void ConfigMap::get(const std::string& key, bool& out) const {
  auto value = impl_->lookup(key);
  if (!value.IsDefined() || value.IsNull()) return;
  out = scalar_as<bool>(*this, value, key, "true or false");
}

void ConfigMap::get(const std::string& key, double& out) const {
  auto value = impl_->lookup(key);
  if (!value.IsDefined() || value.IsNull()) return;
  out = scalar_as<double>(*this, value, key, "a number");
}

void ConfigMap::get(const std::string& key, std::int64_t& out) const {
  auto value = impl_->lookup(key);
  if (!value.IsDefined() || value.IsNull()) return;
  out = scalar_as<std::int64_t>(*this, value, key, "an integer");
}

void ConfigMap::get(const std::string& key, std::uint64_t& out) const {
  std::int64_t v = 0;
  auto value = impl_->lookup(key);
  if (!value.IsDefined() || value.IsNull()) return;
  v = scalar_as<std::int64_t>(*this, value, key, "a non-negative integer");
  if (v < 0) fail(key, "expected a non-negative integer, got " + std::to_string(v));
  out = static_cast<std::uint64_t>(v);
}

void ConfigMap::get(const std::string& key, std::uint32_t& out) const {
  std::uint64_t v = out;
  get(key, v);
  if (v > std::numeric_limits<std::uint32_t>::max()) fail(key, "value " + std::to_string(v) + " is too large");
  out = static_cast<std::uint32_t>(v);
}

void ConfigMap::get(const std::string& key, int& out) const {
  std::int64_t v = out;
  get(key, v);
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
    fail(key, "value " + std::to_string(v) + " is out of range");
  out = static_cast<int>(v);
}

void ConfigMap::get(const std::string& key, std::vector<std::string>& out) const {
  auto value = impl_->lookup(key);
  if (!value.IsDefined() || value.IsNull()) return;
  if (!value.IsSequence()) fail(key, "expected a list of strings");
  out.clear();
  for (const auto& item : value) out.push_back(scalar_as<std::string>(*this, item, key, "a list of strings"));
}

ConfigMap ConfigMap::child(const std::string& key) const {
  auto value = impl_->lookup(key);
  std::string path = impl_->path.empty() ? key : impl_->path + "." + key;
  if (!value.IsDefined() || value.IsNull())
    return ConfigMap(make_impl(YAML::Node(YAML::NodeType::Map), impl_->origin, path));
  if (!value.IsMap()) fail(key, "expected a mapping of keys to values");
  return ConfigMap(make_impl(value, impl_->origin, path));
}

void ConfigMap::reject_unknown_keys() const {
  for (const auto& entry : impl_->node) {
    const auto key = key_text(entry.first, impl_->origin);
    if (!impl_->used.count(key))
      throw ConfigError(impl_->where(entry.first, key) + ": unknown key (misspelt? see the comments in config/)");
  }
}

void ConfigMap::fail(const std::string& key, const std::string& problem) const {
  auto value = impl_->node[key];
  const YAML::Node& at = value.IsDefined() ? value : impl_->node;
  throw ConfigError(impl_->where(at, key) + ": " + problem);
}

const std::string& ConfigMap::origin() const { return impl_->origin; }

std::string resolve_path(const std::string& path, const std::string& relative_to_file) {
  std::filesystem::path p(path);
  if (p.is_absolute() || relative_to_file.empty()) return path;
  return (std::filesystem::path(relative_to_file).parent_path() / p).lexically_normal().string();
}

}  // namespace bridge::core
