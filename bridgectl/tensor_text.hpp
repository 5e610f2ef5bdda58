#pragma once
/// @file Tensors on bridgectl's command line and in its output: `--input [NAME=]V1,V2,...[:SHAPE]`
/// in, values and shapes out, as text for people and as JSON.

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "bridge/tensor.hpp"

namespace bridgectl {

/// Parses one --input: values separated by commas, an optional name before `=`, an optional shape
/// after `:` like 2x3 (default: a vector of the values). Throws ConfigError saying what is wrong.
bridge::Tensor parse_input(const std::string& spec, bridge::DType dtype);

/// A shape as bridgectl prints it everywhere: [2,3]; [] for a scalar.
std::string shape_text(const bridge::Shape& shape);

/// Element i as text: up to 9 significant digits; nan, inf, -inf.
std::string value_text(const bridge::Tensor& t, std::size_t i);

/// Element i as JSON: a number, or "nan", "inf", "-inf" (JSON has no such numbers).
nlohmann::ordered_json value_json(const bridge::Tensor& t, std::size_t i);

}  // namespace bridgectl
