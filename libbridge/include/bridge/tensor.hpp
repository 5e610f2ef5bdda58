#pragma once
/// @file Tensor: a typed, shaped, immutable-once-shared block of bytes, as carried in jobs and results.

#include <cstddef>
#include <cstring>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>
#include <string_view>
#include <string>
#include <type_traits>
#include <vector>
#include "bridge/export.hpp"

namespace bridge {

/// Element types; values match `bridge.wire.DType`.
enum class DType : std::uint8_t { kF32 = 0, kF64 = 1, kI32 = 2, kI64 = 3, kU8 = 4 };

/// Bytes per element.
BRIDGE_API std::size_t dtype_size(DType dtype);
/// "f32", "f64", "i32", "i64", "u8".
BRIDGE_API const char* dtype_name(DType dtype);
/// Parses a name from dtype_name(); false if unknown.
BRIDGE_API bool parse_dtype(std::string_view name, DType& out);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kF32; }
template <> constexpr DType dtype_of<double>() { return DType::kF64; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::kI32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::kI64; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::kU8; }

using Shape = std::vector<std::int64_t>;

/// Number of elements of a shape (1 for rank 0). Throws std::invalid_argument on a negative dimension
/// or overflow; the wire decoder checks shapes before a Tensor is ever built from received bytes.
BRIDGE_API std::int64_t element_count(const Shape& shape);

/// A tensor owns (or shares) its bytes. Copies of a Tensor share the same bytes; the bytes are only
/// written through `mutable_bytes()` by whoever created the tensor, before it is shared.
/// Data is always aligned for its dtype. Thread-safety: const methods are safe from any thread.
class BRIDGE_API Tensor {
 public:
  Tensor() = default;

  /// A zero-filled tensor.
  static Tensor zeros(DType dtype, Shape shape, std::string name = {});
  /// A tensor whose bytes are not initialised, for a creator that writes every byte before it
  /// shares the tensor (a kernel's output, say): it saves the pass that zeroes them.
  static Tensor uninitialized(DType dtype, Shape shape, std::string name = {});

  /// Copies `values` into a new tensor of the given shape (element count must match).
  template <class T>
  static Tensor from(std::span<const T> values, Shape shape, std::string name = {}) {
    Tensor t = zeros(dtype_of<T>(), std::move(shape), std::move(name));
    if (static_cast<std::size_t>(t.element_count()) != values.size())
      throw std::invalid_argument("Tensor::from: shape holds " + std::to_string(t.element_count()) +
                                  " elements but " + std::to_string(values.size()) + " values were given");
    if (!values.empty()) std::memcpy(t.mutable_bytes().data(), values.data(), values.size_bytes());
    return t;
  }
  /// A 1-D tensor from a list, e.g. `Tensor::vector<float>({1, 2, 3})`.
  template <class T>
  static Tensor vector(std::initializer_list<T> values, std::string name = {}) {
    return from<T>(std::span<const T>(values.begin(), values.size()),
                   Shape{static_cast<std::int64_t>(values.size())}, std::move(name));
  }

  /// Wraps bytes owned by `owner` (kept alive as long as any copy of this Tensor). Used by the
  /// transport to hand out received frames without copying. `data` must be aligned for `dtype`
  /// and hold exactly element_count(shape) * dtype_size(dtype) bytes.
  static Tensor adopt(DType dtype, Shape shape, std::string name, std::shared_ptr<const void> owner,
                      const std::byte* data, std::size_t size);

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  std::int64_t element_count() const { return bridge::element_count(shape_); }
  std::size_t byte_size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  /// Writable bytes; only for the creator of a fresh tensor (see class comment).
  std::span<std::byte> mutable_bytes() { return {const_cast<std::byte*>(data_), size_}; }

  /// Typed view; throws std::logic_error if T does not match dtype().
  template <class T>
  std::span<const T> values() const {
    check_type(dtype_of<T>());
    return {reinterpret_cast<const T*>(data_), size_ / sizeof(T)};
  }
  template <class T>
  std::span<T> mutable_values() {
    check_type(dtype_of<T>());
    return {reinterpret_cast<T*>(const_cast<std::byte*>(data_)), size_ / sizeof(T)};
  }

 private:
  void check_type(DType wanted) const;

  std::string name_;
  DType dtype_ = DType::kF32;
  Shape shape_;
  std::shared_ptr<const void> owner_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace bridge
