#pragma once

#include <functional>
#include <string>

#include "whittle/common/status.h"
#include "whittle/ir/tensor.h"

namespace onnx {
class TensorProto;
}  // namespace onnx

namespace whittle::onnx_io {

/// Resolves an external-data reference to the bytes it names (memory-mapped).
using ExternalResolver = std::function<Expected<std::shared_ptr<ir::Buffer>>(const ir::ExternalDataRef&)>;

/// Converts a TensorProto into a Tensor. Inline raw_data is moved out of `proto`, not copied.
/// `resolver` may be empty when external data is not expected.
Expected<ir::Tensor> tensorFromProto(onnx::TensorProto& proto, const ExternalResolver& resolver);

/// Writes `tensor` into `proto` as raw_data (strings as string_data), naming it `name`.
void tensorToProto(const ir::Tensor& tensor, const std::string& name, onnx::TensorProto* proto);

/// Reads one serialized TensorProto file (the ONNX test-data `.pb` layout).
Expected<ir::Tensor> readTensorFile(const std::string& path, std::string* name = nullptr);
/// Writes a tensor as a serialized TensorProto file.
Status writeTensorFile(const ir::Tensor& tensor, const std::string& name, const std::string& path);

}  // namespace whittle::onnx_io
