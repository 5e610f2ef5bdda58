// How ActorStore describes a resident tensor in its actor's hash (`m:<name>`): "<dtype> <d0>,<d1>,...".
#include <charconv>
#include <string>
#include <string_view>

#include "bridge/broker/actor_store.hpp"

namespace bridge::broker {

std::string encode_tensor_meta(DType dtype, const Shape& shape) {
  std::string out = dtype_name(dtype);
  out += ' ';
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out;
}

bool decode_tensor_meta(std::string_view text, DType& dtype, Shape& shape) {
  const auto space = text.find(' ');
  if (space == std::string_view::npos || !parse_dtype(text.substr(0, space), dtype)) return false;
  shape.clear();
  std::string_view dims = text.substr(space + 1);
  while (!dims.empty()) {
    const auto comma = dims.find(',');
    const std::string_view dim = dims.substr(0, comma);
    std::int64_t value = -1;
    if (std::from_chars(dim.data(), dim.data() + dim.size(), value).ec != std::errc() || value < 0) return false;
    shape.push_back(value);
    dims = comma == std::string_view::npos ? std::string_view() : dims.substr(comma + 1);
  }
  return true;
}

}  // namespace bridge::broker
