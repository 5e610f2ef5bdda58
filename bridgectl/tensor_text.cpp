#include "tensor_text.hpp"

#include <cmath>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "bridge/core/config_map.hpp"

namespace bridgectl {
namespace {

using bridge::DType;
using bridge::Tensor;
using bridge::core::ConfigError;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) parts.push_back(part);
  return parts;
}

double value_at(const Tensor& t, std::size_t i) {
  switch (t.dtype()) {
    case DType::kF32: return t.values<float>()[i];
    case DType::kF64: return t.values<double>()[i];
    case DType::kI32: return t.values<std::int32_t>()[i];
    case DType::kI64: return static_cast<double>(t.values<std::int64_t>()[i]);
    case DType::kU8: return t.values<std::uint8_t>()[i];
  }
  return 0;
}

bool is_integer(DType dtype) { return dtype == DType::kI32 || dtype == DType::kI64 || dtype == DType::kU8; }

const char* non_finite(double v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

}  // namespace

std::string shape_text(const bridge::Shape& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string value_text(const Tensor& t, std::size_t i) {
  switch (t.dtype()) {  // integers exactly, whatever their size
    case DType::kI32: return std::to_string(t.values<std::int32_t>()[i]);
    case DType::kI64: return std::to_string(t.values<std::int64_t>()[i]);
    case DType::kU8: return std::to_string(t.values<std::uint8_t>()[i]);
    case DType::kF32:
    case DType::kF64: break;
  }
  const double v = value_at(t, i);
  if (!std::isfinite(v)) return non_finite(v);
  std::ostringstream o;
  o.precision(9);
  o << v;
  return o.str();
}

nlohmann::ordered_json value_json(const Tensor& t, std::size_t i) {
  if (t.dtype() == DType::kI64) return t.values<std::int64_t>()[i];
  const double v = value_at(t, i);
  if (is_integer(t.dtype())) return static_cast<std::int64_t>(v);
  if (!std::isfinite(v)) return non_finite(v);
  // Through the printed text, so that an f32 prints as the number it was written as (0.1, not 0.100000001).
  return std::stod(value_text(t, i));
}

Tensor parse_input(const std::string& spec, DType dtype) {
  std::string name, rest = spec;
  if (auto eq = rest.find('='); eq != std::string::npos) {
    name = rest.substr(0, eq);
    rest = rest.substr(eq + 1);
  }
  std::string shape_spec;
  if (auto colon = rest.find(':'); colon != std::string::npos) {
    shape_spec = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  std::vector<double> values;
  for (const auto& v : split(rest, ',')) {
    if (v.empty()) continue;
    try {
      std::size_t used = 0;
      values.push_back(std::stod(v, &used));
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      throw ConfigError("--input " + spec + ": '" + v + "' is not a number");
    }
  }
  bridge::Shape shape{static_cast<std::int64_t>(values.size())};
  if (!shape_spec.empty()) {
    shape.clear();
    for (const auto& d : split(shape_spec, 'x')) {
      try {
        std::size_t used = 0;
        shape.push_back(std::stoll(d, &used));
        if (used != d.size()) throw std::invalid_argument(d);
      } catch (const std::exception&) {
        throw ConfigError("--input " + spec + ": shape '" + shape_spec + "' must look like 2x3");
      }
    }
  }
  Tensor t;
  try {
    t = Tensor::zeros(dtype, shape, name);
  } catch (const std::exception& e) {
    throw ConfigError("--input " + spec + ": " + e.what());
  }
  if (static_cast<std::size_t>(t.element_count()) != values.size())
    throw ConfigError("--input " + spec + ": shape " + shape_text(shape) + " needs " +
                      std::to_string(t.element_count()) + " values, got " + std::to_string(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::kF32: t.mutable_values<float>()[i] = static_cast<float>(values[i]); break;
      case DType::kF64: t.mutable_values<double>()[i] = values[i]; break;
      case DType::kI32: t.mutable_values<std::int32_t>()[i] = static_cast<std::int32_t>(values[i]); break;
      case DType::kI64: t.mutable_values<std::int64_t>()[i] = static_cast<std::int64_t>(values[i]); break;
      case DType::kU8: t.mutable_values<std::uint8_t>()[i] = static_cast<std::uint8_t>(values[i]); break;
    }
  }
  return t;
}

}  // namespace bridgectl
