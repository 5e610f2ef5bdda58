#include "bridge/metrics/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string_view>

namespace bridge::metrics {
namespace {

// Appends `{k="v",...,extra}` (nothing for no labels and no extra), label values escaped as the
// text format wants: backslash, double quote and newline. Appends in place: it runs for every
// counter bump, a few per job, and made several temporary strings each before.
template <typename LabelList>
void append_labels(std::string& out, const LabelList& labels, std::string_view extra = {}) {
  if (labels.size() == 0 && extra.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    for (char c : v) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  if (!extra.empty()) {
    if (!first) out += ',';
    out += extra;
  }
  out += '}';
}

template <typename LabelList>
std::string render_labels(const LabelList& labels, std::string_view extra = {}) {
  std::string out;
  append_labels(out, labels, extra);
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

const char* type_name(Registry::Type type) {
  switch (type) {
    case Registry::Type::kCounter: return "counter";
    case Registry::Type::kGauge: return "gauge";
    case Registry::Type::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

void Registry::describe(std::string_view name, Type type, std::string help, std::vector<double> buckets) {
  std::lock_guard lock(mutex_);
  Family& f = family(name);
  f.type = type;
  f.help = std::move(help);
  f.bounds = std::move(buckets);
}

Registry::Family& Registry::family(std::string_view name) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), Family{}).first;
  return it->second;
}

Registry::Series& Registry::series(Family& f, LabelRefs labels, Type type) {
  if (f.series.empty() && f.help.empty()) f.type = type;  // used without describe(): still valid output
  // The key is rendered into a buffer kept from call to call (under the mutex): a series that
  // exists is found without allocating.
  key_.clear();
  append_labels(key_, labels);
  auto it = f.series.find(key_);
  if (it == f.series.end()) {
    it = f.series.emplace(key_, Series{}).first;
    for (const auto& [k, v] : labels) it->second.labels.emplace_back(k, v);
  }
  Series& s = it->second;
  if (f.type == Type::kHistogram && s.buckets.size() != f.bounds.size()) s.buckets.assign(f.bounds.size(), 0);
  return s;
}

void Registry::observe(Series& s, const std::vector<double>& bounds, double value) {
  const auto at = std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
  if (static_cast<std::size_t>(at) < s.buckets.size()) ++s.buckets[static_cast<std::size_t>(at)];
  ++s.count;
  s.sum += value;
}

void Registry::add(std::string_view name, LabelRefs labels, double delta) {
  std::lock_guard lock(mutex_);
  series(family(name), labels, Type::kCounter).value += delta;
}

void Registry::set(std::string_view name, LabelRefs labels, double value) {
  std::lock_guard lock(mutex_);
  series(family(name), labels, Type::kGauge).value = value;
}

void Registry::observe(std::string_view name, LabelRefs labels, double value) {
  std::lock_guard lock(mutex_);
  Family& f = family(name);
  observe(series(f, labels, Type::kHistogram), f.bounds, value);
}

Registry::Handle Registry::handle(std::string_view name, LabelRefs labels, Type type) {
  std::lock_guard lock(mutex_);
  Family& f = family(name);
  Handle h;
  h.registry_ = this;
  h.series_ = &series(f, labels, type);  // a map node: it stays where it is
  h.series_->held = true;
  h.bounds_ = &f.bounds;  // describe() replaces the vector's contents, never the vector
  return h;
}

void Registry::Handle::add(double delta) {
  std::lock_guard lock(registry_->mutex_);
  series_->value += delta;
}

void Registry::Handle::observe(double value) {
  std::lock_guard lock(registry_->mutex_);
  // A histogram described after the handle was taken: its buckets follow the bounds, as series() does.
  if (series_->buckets.size() != bounds_->size()) series_->buckets.assign(bounds_->size(), 0);
  Registry::observe(*series_, *bounds_, value);
}

void Registry::remove(std::string_view name, const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex_);
  auto f = families_.find(name);
  if (f == families_.end()) return;
  for (auto it = f->second.series.begin(); it != f->second.series.end();) {
    const auto& labels = it->second.labels;
    const bool match =
        std::any_of(labels.begin(), labels.end(), [&](const auto& l) { return l.first == key && l.second == value; });
    it = match && !it->second.held ? f->second.series.erase(it) : std::next(it);
  }
}

double Registry::value(std::string_view name, LabelRefs labels) const {
  std::lock_guard lock(mutex_);
  auto f = families_.find(name);
  if (f == families_.end()) return 0;
  auto s = f->second.series.find(render_labels(labels));
  return s == f->second.series.end() ? 0 : s->second.value;
}

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + type_name(f.type) + "\n";
    for (const auto& [key, s] : f.series) {
      if (f.type != Type::kHistogram) {
        out += name + key + " " + number(s.value) + "\n";
        continue;
      }
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < f.bounds.size(); ++i) {
        cumulative += s.buckets[i];
        out += name + "_bucket" + render_labels(s.labels, "le=\"" + number(f.bounds[i]) + "\"") + " " +
               std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket" + render_labels(s.labels, "le=\"+Inf\"") + " " + std::to_string(s.count) + "\n";
      out += name + "_sum" + key + " " + number(s.sum) + "\n";
      out += name + "_count" + key + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace bridge::metrics
