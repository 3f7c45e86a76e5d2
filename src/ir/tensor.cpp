#include "whittle/ir/tensor.h"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "whittle/common/status.h"

namespace whittle::ir {

std::shared_ptr<Buffer> Buffer::allocate(size_t bytes) {
  auto buffer = allocateUninitialized(bytes);
  std::memset(buffer->data_, 0, bytes);
  return buffer;
}

std::shared_ptr<Buffer> Buffer::allocateUninitialized(size_t bytes) {
  constexpr size_t kAlign = 64;
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  void* memory = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
  WH_CHECK(memory != nullptr, "out of memory allocating " + std::to_string(bytes) + " bytes");
  std::shared_ptr<Buffer> buffer(new Buffer());
  buffer->data_ = static_cast<std::byte*>(memory);
  buffer->size_ = bytes;
  buffer->writable_ = true;
  buffer->owner_ = std::shared_ptr<void>(memory, [](void* p) { std::free(p); });
  return buffer;
}

std::shared_ptr<Buffer> Buffer::fromString(std::string&& bytes) {
  auto owned = std::make_shared<std::string>(std::move(bytes));
  std::shared_ptr<Buffer> buffer(new Buffer());
  buffer->data_ = reinterpret_cast<std::byte*>(owned->data());
  buffer->size_ = owned->size();
  buffer->writable_ = true;
  buffer->owner_ = owned;
  return buffer;
}

std::shared_ptr<Buffer> Buffer::view(const void* data, size_t size, std::shared_ptr<const void> owner) {
  std::shared_ptr<Buffer> buffer(new Buffer());
  buffer->data_ = const_cast<std::byte*>(static_cast<const std::byte*>(data));
  buffer->size_ = size;
  buffer->writable_ = false;
  buffer->owner_ = std::move(owner);
  return buffer;
}

std::byte* Buffer::mutableData() {
  WH_CHECK(writable_, "write to a read-only buffer");
  return data_;
}

Tensor::Tensor(DataType dtype, std::vector<int64_t> dims) : dtype_(dtype), dims_(std::move(dims)) {
  buffer_ = Buffer::allocate(storageBytes(dtype_, numel()));
  if (dtype_ == DataType::kString) strings_.resize(static_cast<size_t>(numel()));
}

Tensor::Tensor(DataType dtype, std::vector<int64_t> dims, std::shared_ptr<Buffer> buffer)
    : dtype_(dtype), dims_(std::move(dims)), buffer_(std::move(buffer)) {}

Tensor Tensor::strings(std::vector<int64_t> dims, std::vector<std::string> values) {
  Tensor t;
  t.dtype_ = DataType::kString;
  t.dims_ = std::move(dims);
  t.strings_ = std::move(values);
  t.buffer_ = Buffer::allocate(0);
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

std::byte* Tensor::mutableRawData() {
  if (!buffer_) buffer_ = Buffer::allocate(storageBytes(dtype_, numel()));
  if (!buffer_->writable() || buffer_.use_count() > 1) {
    auto copy = Buffer::allocate(buffer_->size());
    if (buffer_->size() != 0) std::memcpy(copy->mutableData(), buffer_->data(), buffer_->size());
    buffer_ = std::move(copy);
    external_.reset();
  }
  return buffer_->mutableData();
}

namespace {

/// A minifloat with `expBits` exponent and `mantBits` mantissa bits (no infinities, no NaN
/// handling: callers check their NaN patterns first).
double minifloat(uint32_t bits, int expBits, int mantBits, int bias) {
  const bool negative = (bits >> (expBits + mantBits)) & 1u;
  const uint32_t e = (bits >> mantBits) & ((1u << expBits) - 1);
  const uint32_t m = bits & ((1u << mantBits) - 1);
  double v = e == 0 ? std::ldexp(static_cast<double>(m), 1 - bias - mantBits)
                    : std::ldexp(1.0 + static_cast<double>(m) / static_cast<double>(1u << mantBits), static_cast<int>(e) - bias);
  return negative ? -v : v;
}

/// The 8-bit float types of ONNX (opset 19): E4M3FN (bias 7, NaN S.1111.111), E4M3FNUZ (bias 8),
/// E5M2 (bias 15, IEEE infinities and NaNs), E5M2FNUZ (bias 16); the FNUZ types' NaN is 0x80.
double float8ToDouble(uint8_t b, DataType type) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  switch (type) {
    case DataType::kFloat8E4M3FN: return (b & 0x7f) == 0x7f ? nan : minifloat(b, 4, 3, 7);
    case DataType::kFloat8E4M3FNUZ: return b == 0x80 ? nan : minifloat(b, 4, 3, 8);
    case DataType::kFloat8E5M2:
      if ((b & 0x7c) == 0x7c) {
        if ((b & 0x03) != 0) return nan;
        return (b & 0x80) ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
      }
      return minifloat(b, 5, 2, 15);
    default: return b == 0x80 ? nan : minifloat(b, 5, 2, 16);  // kFloat8E5M2FNUZ
  }
}

/// Element i of packed 4-bit data: two per byte, the first in the low nibble.
uint32_t nibble(const std::byte* data, int64_t i) {
  const auto byte = static_cast<uint32_t>(data[i / 2]);
  return (i % 2 == 0 ? byte : byte >> 4) & 0x0fu;
}

}  // namespace

double Tensor::valueAsDouble(int64_t i) const {
  switch (dtype_) {
    case DataType::kFloat8E4M3FN:
    case DataType::kFloat8E4M3FNUZ:
    case DataType::kFloat8E5M2:
    case DataType::kFloat8E5M2FNUZ: return float8ToDouble(data<uint8_t>()[i], dtype_);
    case DataType::kUint4: return nibble(rawData(), i);
    case DataType::kInt4: {
      const uint32_t v = nibble(rawData(), i);
      return v >= 8 ? static_cast<double>(v) - 16.0 : static_cast<double>(v);
    }
    case DataType::kFloat4E2M1: return minifloat(nibble(rawData(), i), 2, 1, 1);
    case DataType::kFloat: return data<float>()[i];
    case DataType::kDouble: return data<double>()[i];
    case DataType::kFloat16: return halfToFloat(data<uint16_t>()[i]);
    case DataType::kBFloat16: return bfloat16ToFloat(data<uint16_t>()[i]);
    case DataType::kUint8: return data<uint8_t>()[i];
    case DataType::kInt8: return data<int8_t>()[i];
    case DataType::kUint16: return data<uint16_t>()[i];
    case DataType::kInt16: return data<int16_t>()[i];
    case DataType::kInt32: return data<int32_t>()[i];
    case DataType::kInt64: return static_cast<double>(data<int64_t>()[i]);
    case DataType::kUint32: return data<uint32_t>()[i];
    case DataType::kUint64: return static_cast<double>(data<uint64_t>()[i]);
    case DataType::kBool: return data<uint8_t>()[i] != 0 ? 1.0 : 0.0;
    default: WH_CHECK(false, "valueAsDouble on " + std::string(dataTypeName(dtype_)));
  }
}

bool Tensor::bitwiseEqual(const Tensor& other) const {
  if (dtype_ != other.dtype_ || dims_ != other.dims_) return false;
  if (dtype_ == DataType::kString) return strings_ == other.strings_;
  if (byteSize() != other.byteSize()) return false;
  return byteSize() == 0 || std::memcmp(rawData(), other.rawData(), byteSize()) == 0;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int shift = 0;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        ++shift;
      }
      mantissa &= 0x3ffu;
      bits = sign | static_cast<uint32_t>(127 - 15 - shift + 1) << 23 | mantissa << 13;
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | mantissa << 13;
  } else {
    bits = sign | (exponent + 127 - 15) << 23 | mantissa << 13;
  }
  return std::bit_cast<float>(bits);
}

uint16_t floatToHalf(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t absBits = bits & 0x7fffffffu;
  if (absBits >= 0x7f800000u) {  // inf or nan
    return static_cast<uint16_t>(sign | 0x7c00u | (absBits > 0x7f800000u ? 0x200u : 0u));
  }
  if (absBits >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (absBits < 0x38800000u) {                                               // subnormal or zero
    float magnitude = std::bit_cast<float>(absBits);
    // Scale so that one half-subnormal ulp (2^-24) becomes 1, then round to nearest even.
    auto sub = static_cast<uint32_t>(std::nearbyint(magnitude * 16777216.0f));
    return static_cast<uint16_t>(sign | sub);
  }
  uint32_t mantissaOdd = (absBits >> 13) & 1u;
  absBits += 0xc8000fffu + mantissaOdd;  // rebias exponent (-112 << 23) and round half to even
  return static_cast<uint16_t>(sign | (absBits >> 13));
}

float bfloat16ToFloat(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t floatToBfloat16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet nan
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

}  // namespace whittle::ir
