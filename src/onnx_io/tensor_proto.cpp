#include "whittle/onnx_io/tensor_proto.h"

#include <onnx/onnx_pb.h>

#include <cstring>

#include "whittle/common/file_util.h"

namespace whittle::onnx_io {
namespace {

using ir::DataType;

std::string label(const onnx::TensorProto& proto) {
  return proto.name().empty() ? std::string("tensor") : "tensor '" + proto.name() + "'";
}

std::string dimsText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// Copies a repeated proto field element by element into the buffer, narrowing to `Dst`.
template <typename Dst, typename Field>
void copyNarrowed(const Field& field, std::byte* out) {
  auto* dst = reinterpret_cast<Dst*>(out);
  for (int i = 0; i < field.size(); ++i) dst[i] = static_cast<Dst>(field.Get(i));
}

}  // namespace

Expected<ir::Tensor> tensorFromProto(onnx::TensorProto& proto, const ExternalResolver& resolver) {
  if (!ir::isKnownDataType(proto.data_type())) {
    return Status(ir::isNewerOnnxDataType(proto.data_type()) ? StatusCode::kUnimplemented : StatusCode::kInvalidInput,
                  label(proto) + ": " + ir::unsupportedDataTypeText(proto.data_type()));
  }
  auto dtype = static_cast<DataType>(proto.data_type());
  std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  int64_t numel = 1;
  for (int64_t d : dims) {
    if (d < 0) return invalidInput(label(proto) + ": negative dimension in " + dimsText(dims));
    if (d > 0 && numel > (int64_t{1} << 48) / d) return invalidInput(label(proto) + ": dims " + dimsText(dims) + " are too large");
    numel *= d;
  }
  if (proto.has_segment()) return unimplemented(label(proto) + ": segmented tensors are not supported");

  if (dtype == DataType::kString) {
    if (proto.string_data_size() != numel) {
      return invalidInput(label(proto) + ": has " + std::to_string(proto.string_data_size()) + " strings, dims " +
                          dimsText(dims) + " need " + std::to_string(numel));
    }
    return ir::Tensor::strings(std::move(dims), {proto.string_data().begin(), proto.string_data().end()});
  }

  const size_t expected = ir::storageBytes(dtype, numel);
  auto sizeError = [&](size_t have) {
    return invalidInput(label(proto) + ": has " + std::to_string(have) + " bytes of data, dims " + dimsText(dims) +
                        " of " + std::string(ir::dataTypeName(dtype)) + " need " + std::to_string(expected));
  };

  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    ir::ExternalDataRef ref;
    ref.length = -1;
    for (const auto& entry : proto.external_data()) {
      try {
        if (entry.key() == "location") ref.location = entry.value();
        if (entry.key() == "offset") ref.offset = std::stoll(entry.value());
        if (entry.key() == "length") ref.length = std::stoll(entry.value());
      } catch (const std::exception&) {
        return invalidInput(label(proto) + ": external data " + entry.key() + " '" + entry.value() + "' is not a number");
      }
    }
    if (ref.location.empty()) return invalidInput(label(proto) + ": external data without a location");
    if (ref.length < 0) ref.length = static_cast<int64_t>(expected);
    if (static_cast<size_t>(ref.length) != expected) return sizeError(static_cast<size_t>(ref.length));
    if (!resolver) return invalidInput(label(proto) + ": external data is not allowed here");
    auto buffer = resolver(ref);
    if (!buffer.isOk()) return buffer.status().withContext(label(proto));
    ir::Tensor tensor(dtype, std::move(dims), std::move(buffer).value());
    tensor.setExternalSource(std::move(ref));
    return tensor;
  }

  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != expected) return sizeError(proto.raw_data().size());
    return ir::Tensor(dtype, std::move(dims), ir::Buffer::fromString(std::move(*proto.mutable_raw_data())));
  }

  // The buffer is allocated once the values are counted: the dims come from the file, and a
  // tensor that carries no data must not allocate what its dims claim (up to 2**48 elements).
  ir::Tensor tensor;
  std::byte* out = nullptr;
  auto allocate = [&] {
    tensor = ir::Tensor(dtype, dims);
    out = tensor.mutableRawData();
  };
  auto checkCount = [&](int count, int64_t perElement) -> Status {
    // An empty typed field with numel > 0 is a tensor that carries no data at all.
    if (count != numel * perElement) {
      return invalidInput(label(proto) + ": has " + std::to_string(count) + " values, dims " + dimsText(dims) +
                          " need " + std::to_string(numel * perElement));
    }
    allocate();
    return Status::ok();
  };
  switch (dtype) {
    case DataType::kFloat:
      WH_RETURN_IF_ERROR(checkCount(proto.float_data_size(), 1));
      if (numel) std::memcpy(out, proto.float_data().data(), expected);
      break;
    case DataType::kComplex64:
      WH_RETURN_IF_ERROR(checkCount(proto.float_data_size(), 2));
      if (numel) std::memcpy(out, proto.float_data().data(), expected);
      break;
    case DataType::kDouble:
      WH_RETURN_IF_ERROR(checkCount(proto.double_data_size(), 1));
      if (numel) std::memcpy(out, proto.double_data().data(), expected);
      break;
    case DataType::kComplex128:
      WH_RETURN_IF_ERROR(checkCount(proto.double_data_size(), 2));
      if (numel) std::memcpy(out, proto.double_data().data(), expected);
      break;
    case DataType::kInt64:
      WH_RETURN_IF_ERROR(checkCount(proto.int64_data_size(), 1));
      if (numel) std::memcpy(out, proto.int64_data().data(), expected);
      break;
    case DataType::kUint32:
      WH_RETURN_IF_ERROR(checkCount(proto.uint64_data_size(), 1));
      copyNarrowed<uint32_t>(proto.uint64_data(), out);
      break;
    case DataType::kUint64:
      WH_RETURN_IF_ERROR(checkCount(proto.uint64_data_size(), 1));
      if (numel) std::memcpy(out, proto.uint64_data().data(), expected);
      break;
    case DataType::kInt32:
      WH_RETURN_IF_ERROR(checkCount(proto.int32_data_size(), 1));
      if (numel) std::memcpy(out, proto.int32_data().data(), expected);
      break;
    case DataType::kInt16:
    case DataType::kUint16:
    case DataType::kFloat16:
    case DataType::kBFloat16:
      WH_RETURN_IF_ERROR(checkCount(proto.int32_data_size(), 1));
      copyNarrowed<uint16_t>(proto.int32_data(), out);
      break;
    case DataType::kInt4:
    case DataType::kUint4:
    case DataType::kFloat4E2M1:
      // Two 4-bit values per int32 entry, low nibble first.
      if (static_cast<size_t>(proto.int32_data_size()) != expected) return sizeError(proto.int32_data_size());
      allocate();
      copyNarrowed<uint8_t>(proto.int32_data(), out);
      break;
    default:  // int8, uint8, bool and the 8-bit float types: one value per int32 entry
      WH_RETURN_IF_ERROR(checkCount(proto.int32_data_size(), 1));
      copyNarrowed<uint8_t>(proto.int32_data(), out);
      break;
  }
  return tensor;
}

void tensorToProto(const ir::Tensor& tensor, const std::string& name, onnx::TensorProto* proto) {
  proto->set_name(name);
  proto->set_data_type(static_cast<int32_t>(tensor.dtype()));
  for (int64_t d : tensor.dims()) proto->add_dims(d);
  if (tensor.dtype() == DataType::kString) {
    for (const std::string& s : tensor.stringValues()) proto->add_string_data(s);
    return;
  }
  proto->set_raw_data(reinterpret_cast<const char*>(tensor.rawData()), tensor.byteSize());
}

Expected<ir::Tensor> readTensorFile(const std::string& path, std::string* name) {
  WH_ASSIGN_OR_RETURN(std::string bytes, readFile(path));
  onnx::TensorProto proto;
  if (!proto.ParseFromString(bytes)) return invalidInput(path + ": not a serialized ONNX TensorProto");
  if (name != nullptr) *name = proto.name();
  auto tensor = tensorFromProto(proto, {});
  if (!tensor.isOk()) return tensor.status().withContext(path);
  return tensor;
}

Status writeTensorFile(const ir::Tensor& tensor, const std::string& name, const std::string& path) {
  onnx::TensorProto proto;
  tensorToProto(tensor, name, &proto);
  return writeFileAtomic(path, proto.SerializeAsString());
}

}  // namespace whittle::onnx_io
