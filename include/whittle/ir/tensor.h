#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "whittle/ir/data_type.h"

namespace whittle::ir {

/// A contiguous, reference-counted block of bytes. It either owns its memory (64-byte
/// aligned, so kernels can use it directly) or views memory kept alive by an owner, such as
/// a memory-mapped external-data file or a protobuf string moved out of a parsed model.
class Buffer {
 public:
  /// A zero-filled, 64-byte aligned buffer of `bytes` bytes.
  static std::shared_ptr<Buffer> allocate(size_t bytes);
  /// A 64-byte aligned buffer whose contents are left uninitialised (for kernel outputs).
  static std::shared_ptr<Buffer> allocateUninitialized(size_t bytes);
  /// A buffer that takes over the bytes of `bytes` without copying them.
  static std::shared_ptr<Buffer> fromString(std::string&& bytes);
  /// A read-only view of `size` bytes at `data`; `owner` keeps them alive.
  static std::shared_ptr<Buffer> view(const void* data, size_t size, std::shared_ptr<const void> owner);

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  /// Whether the bytes may be written in place (owned, not a read-only view).
  bool writable() const { return writable_; }
  std::byte* mutableData();

 private:
  Buffer() = default;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool writable_ = false;
  std::shared_ptr<const void> owner_;
};

/// Where a tensor's bytes came from when they were stored outside the model file.
struct ExternalDataRef {
  std::string location;  ///< Path relative to the model's folder, as written in the model.
  int64_t offset = 0;
  int64_t length = 0;
};

/// An n-dimensional array: element type, dimensions and a shared buffer. Copies share the
/// buffer; mutableData() copies it first when someone else holds it (copy on write).
class Tensor {
 public:
  Tensor() = default;
  /// A zero-filled tensor.
  Tensor(DataType dtype, std::vector<int64_t> dims);
  /// A tensor over an existing buffer, which must hold storageBytes(dtype, numel) bytes.
  Tensor(DataType dtype, std::vector<int64_t> dims, std::shared_ptr<Buffer> buffer);

  /// A string tensor.
  static Tensor strings(std::vector<int64_t> dims, std::vector<std::string> values);
  /// A tensor holding a copy of `values`.
  template <typename T>
  static Tensor fromVector(DataType dtype, std::vector<int64_t> dims, const std::vector<T>& values);

  DataType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  int64_t rank() const { return static_cast<int64_t>(dims_.size()); }
  int64_t numel() const;
  /// Bytes of the elements (storageBytes(dtype, numel)); the buffer may be larger (pooled).
  size_t byteSize() const { return buffer_ ? std::min(buffer_->size(), storageBytes(dtype_, numel())) : 0; }
  bool empty() const { return numel() == 0; }

  const std::byte* rawData() const { return buffer_ ? buffer_->data() : nullptr; }
  std::byte* mutableRawData();
  template <typename T>
  const T* data() const { return reinterpret_cast<const T*>(rawData()); }
  template <typename T>
  T* mutableData() { return reinterpret_cast<T*>(mutableRawData()); }
  template <typename T>
  std::span<const T> values() const { return {data<T>(), static_cast<size_t>(numel())}; }

  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }
  const std::vector<std::string>& stringValues() const { return strings_; }

  /// Set when the tensor was loaded from an external-data file; kept for reporting.
  const ExternalDataRef* externalSource() const { return external_.get(); }
  void setExternalSource(ExternalDataRef ref) { external_ = std::make_shared<ExternalDataRef>(std::move(ref)); }

  /// Element `i` converted to double (float, integer, bool and float16/bfloat16 types).
  double valueAsDouble(int64_t i) const;
  /// Whether both tensors have the same type, dims and bytes.
  bool bitwiseEqual(const Tensor& other) const;

 private:
  DataType dtype_ = DataType::kUndefined;
  std::vector<int64_t> dims_;
  std::shared_ptr<Buffer> buffer_;
  std::vector<std::string> strings_;
  std::shared_ptr<const ExternalDataRef> external_;
};

/// float16 and bfloat16 conversions, round to nearest even.
float halfToFloat(uint16_t bits);
uint16_t floatToHalf(float value);
float bfloat16ToFloat(uint16_t bits);
uint16_t floatToBfloat16(float value);

template <typename T>
Tensor Tensor::fromVector(DataType dtype, std::vector<int64_t> dims, const std::vector<T>& values) {
  Tensor t(dtype, std::move(dims));
  std::byte* dst = t.mutableRawData();
  if (!values.empty()) std::memcpy(dst, values.data(), std::min(t.byteSize(), values.size() * sizeof(T)));
  return t;
}

}  // namespace whittle::ir
