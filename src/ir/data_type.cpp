#include "whittle/ir/data_type.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace whittle::ir {
namespace {

struct TypeInfo {
  DataType type;
  std::string_view name;
  std::string_view onnxName;
  size_t size;
};

constexpr std::array kTypes = {
    TypeInfo{DataType::kUndefined, "undefined", "UNDEFINED", 0},
    TypeInfo{DataType::kFloat, "float32", "FLOAT", 4},
    TypeInfo{DataType::kUint8, "uint8", "UINT8", 1},
    TypeInfo{DataType::kInt8, "int8", "INT8", 1},
    TypeInfo{DataType::kUint16, "uint16", "UINT16", 2},
    TypeInfo{DataType::kInt16, "int16", "INT16", 2},
    TypeInfo{DataType::kInt32, "int32", "INT32", 4},
    TypeInfo{DataType::kInt64, "int64", "INT64", 8},
    TypeInfo{DataType::kString, "string", "STRING", 0},
    TypeInfo{DataType::kBool, "bool", "BOOL", 1},
    TypeInfo{DataType::kFloat16, "float16", "FLOAT16", 2},
    TypeInfo{DataType::kDouble, "float64", "DOUBLE", 8},
    TypeInfo{DataType::kUint32, "uint32", "UINT32", 4},
    TypeInfo{DataType::kUint64, "uint64", "UINT64", 8},
    TypeInfo{DataType::kComplex64, "complex64", "COMPLEX64", 8},
    TypeInfo{DataType::kComplex128, "complex128", "COMPLEX128", 16},
    TypeInfo{DataType::kBFloat16, "bfloat16", "BFLOAT16", 2},
    TypeInfo{DataType::kFloat8E4M3FN, "float8e4m3fn", "FLOAT8E4M3FN", 1},
    TypeInfo{DataType::kFloat8E4M3FNUZ, "float8e4m3fnuz", "FLOAT8E4M3FNUZ", 1},
    TypeInfo{DataType::kFloat8E5M2, "float8e5m2", "FLOAT8E5M2", 1},
    TypeInfo{DataType::kFloat8E5M2FNUZ, "float8e5m2fnuz", "FLOAT8E5M2FNUZ", 1},
    TypeInfo{DataType::kUint4, "uint4", "UINT4", 0},
    TypeInfo{DataType::kInt4, "int4", "INT4", 0},
    TypeInfo{DataType::kFloat4E2M1, "float4e2m1", "FLOAT4E2M1", 0},
};

const TypeInfo* find(DataType type) {
  auto code = static_cast<size_t>(type);
  return code < kTypes.size() ? &kTypes[code] : nullptr;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

bool isKnownDataType(int32_t code) { return code > 0 && static_cast<size_t>(code) < kTypes.size(); }

bool isNewerOnnxDataType(int32_t code) { return code >= 24 && code <= 28; }

std::string unsupportedDataTypeText(int32_t code) {
  struct Newer {
    int32_t code;
    const char* name;
    int irVersion;
  };
  static constexpr Newer kNewer[] = {
      {24, "FLOAT8E8M0", 12}, {25, "UINT2", 13}, {26, "INT2", 13}, {27, "FLOAT6E2M3", 14}, {28, "FLOAT6E3M2", 14}};
  for (const Newer& t : kNewer) {
    if (t.code == code) {
      return "data type " + std::string(t.name) + " (" + std::to_string(code) + ", from IR version " +
             std::to_string(t.irVersion) + ") is not supported by whittle";
    }
  }
  return "unknown data type " + std::to_string(code);
}

size_t elementSize(DataType type) {
  const TypeInfo* info = find(type);
  return info ? info->size : 0;
}

size_t storageBytes(DataType type, int64_t count) {
  if (type == DataType::kUint4 || type == DataType::kInt4 || type == DataType::kFloat4E2M1) {
    return static_cast<size_t>((count + 1) / 2);
  }
  return elementSize(type) * static_cast<size_t>(count);
}

std::string_view dataTypeName(DataType type) {
  const TypeInfo* info = find(type);
  return info ? info->name : "unknown";
}

std::optional<DataType> parseDataType(std::string_view name) {
  for (const TypeInfo& info : kTypes) {
    if (equalsIgnoreCase(name, info.name) || equalsIgnoreCase(name, info.onnxName)) return info.type;
  }
  if (equalsIgnoreCase(name, "fp32") || equalsIgnoreCase(name, "f32")) return DataType::kFloat;
  if (equalsIgnoreCase(name, "fp16") || equalsIgnoreCase(name, "f16") || equalsIgnoreCase(name, "half")) {
    return DataType::kFloat16;
  }
  if (equalsIgnoreCase(name, "bf16")) return DataType::kBFloat16;
  return std::nullopt;
}

bool isFloatingPoint(DataType type) {
  switch (type) {
    case DataType::kFloat:
    case DataType::kFloat16:
    case DataType::kDouble:
    case DataType::kBFloat16:
    case DataType::kFloat8E4M3FN:
    case DataType::kFloat8E4M3FNUZ:
    case DataType::kFloat8E5M2:
    case DataType::kFloat8E5M2FNUZ:
    case DataType::kFloat4E2M1: return true;
    default: return false;
  }
}

bool isInteger(DataType type) {
  switch (type) {
    case DataType::kUint8:
    case DataType::kInt8:
    case DataType::kUint16:
    case DataType::kInt16:
    case DataType::kInt32:
    case DataType::kInt64:
    case DataType::kUint32:
    case DataType::kUint64:
    case DataType::kUint4:
    case DataType::kInt4: return true;
    default: return false;
  }
}

}  // namespace whittle::ir
