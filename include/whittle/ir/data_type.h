#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace whittle::ir {

/// Element types, numbered as ONNX's TensorProto.DataType so that conversion is a cast.
enum class DataType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUint32 = 12,
  kUint64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
  kUint4 = 21,
  kInt4 = 22,
  kFloat4E2M1 = 23,
};

/// Whether `code` is a TensorProto.DataType that whittle knows.
bool isKnownDataType(int32_t code);
/// Why an ONNX element type code is not one whittle holds: "data type FLOAT8E8M0 (24, from
/// IR version 12) is not supported by whittle", or "unknown data type 99".
std::string unsupportedDataTypeText(int32_t code);
/// Whether `code` is an element type of a newer ONNX than whittle holds (as opposed to no type).
bool isNewerOnnxDataType(int32_t code);

/// Size of one element in bytes; 0 for strings and undefined. Sub-byte types (int4, uint4,
/// float4) report 0 as well: use storageBytes() for buffers.
size_t elementSize(DataType type);

/// Bytes needed to store `count` elements, packing sub-byte types two to a byte.
size_t storageBytes(DataType type, int64_t count);

/// Short lower-case name used in messages and reports: "float32", "int8", "float16", ...
std::string_view dataTypeName(DataType type);

/// Inverse of dataTypeName(); also accepts ONNX spellings such as "float" and "FLOAT16".
std::optional<DataType> parseDataType(std::string_view name);

bool isFloatingPoint(DataType type);
bool isInteger(DataType type);

}  // namespace whittle::ir
