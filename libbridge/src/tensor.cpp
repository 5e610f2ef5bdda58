#include "bridge/tensor.hpp"

#include <cstdlib>
#include <limits>

namespace bridge {
namespace {
// Cache-line alignment: enough for any dtype and for vector loads in the CPU kernels.
constexpr std::size_t kTensorAlignment = 64;
}  // namespace

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF64: return 8;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
  }
  throw std::invalid_argument("dtype_size: unknown dtype " + std::to_string(static_cast<int>(dtype)));
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kU8: return "u8";
  }
  return "unknown";
}

bool parse_dtype(std::string_view name, DType& out) {
  for (DType d : {DType::kF32, DType::kF64, DType::kI32, DType::kI64, DType::kU8}) {
    if (name == dtype_name(d)) {
      out = d;
      return true;
    }
  }
  return false;
}

std::int64_t element_count(const Shape& shape) {
  std::int64_t count = 1;
  for (std::int64_t dim : shape) {
    if (dim < 0) throw std::invalid_argument("negative dimension " + std::to_string(dim));
    if (dim != 0 && count > std::numeric_limits<std::int64_t>::max() / dim)
      throw std::invalid_argument("shape element count overflows 64 bits");
    count *= dim;
  }
  return count;
}

Tensor Tensor::zeros(DType dtype, Shape shape, std::string name) {
  Tensor t = uninitialized(dtype, std::move(shape), std::move(name));
  if (t.size_ > 0) std::memset(const_cast<std::byte*>(t.data_), 0, t.size_);
  return t;
}

Tensor Tensor::uninitialized(DType dtype, Shape shape, std::string name) {
  const auto count = static_cast<std::size_t>(bridge::element_count(shape));
  const std::size_t size = count * dtype_size(dtype);
  // aligned_alloc wants a multiple of the alignment; a zero-size tensor still gets a valid pointer.
  const std::size_t padded = ((size + kTensorAlignment - 1) / kTensorAlignment + 1) * kTensorAlignment;
  void* raw = std::aligned_alloc(kTensorAlignment, padded);
  if (raw == nullptr) throw std::bad_alloc();
  Tensor t;
  t.name_ = std::move(name);
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.owner_ = std::shared_ptr<const void>(raw, [](const void* p) { std::free(const_cast<void*>(p)); });
  t.data_ = static_cast<const std::byte*>(raw);
  t.size_ = size;
  return t;
}

Tensor Tensor::adopt(DType dtype, Shape shape, std::string name, std::shared_ptr<const void> owner,
                     const std::byte* data, std::size_t size) {
  Tensor t;
  t.name_ = std::move(name);
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.owner_ = std::move(owner);
  t.data_ = data;
  t.size_ = size;
  return t;
}

void Tensor::check_type(DType wanted) const {
  if (wanted != dtype_)
    throw std::logic_error(std::string("tensor '") + name_ + "' holds " + dtype_name(dtype_) + ", read as " +
                           dtype_name(wanted));
}

}  // namespace bridge
