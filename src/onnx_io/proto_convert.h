#pragma once
// Private to onnx_io: conversions between the IR and ONNX protobuf messages.

#include <onnx/onnx_pb.h>

#include <functional>

#include "whittle/ir/graph.h"
#include "whittle/onnx_io/tensor_proto.h"

namespace whittle::onnx_io::detail {

/// Decides, per initializer, whether to write it inline or to external data. Returns true
/// when it filled in `proto`'s external reference itself.
using TensorWriter = std::function<bool(const ir::Tensor&, const std::string& name, onnx::TensorProto*)>;

/// Fills `proto` from `model`. `writer` may be empty: every tensor is then written inline.
/// With `stripLargeData`, float tensors over 1 KiB carry dims and type but no data (enough
/// for shape inference and the checker, and cheap).
void modelToProto(const ir::Model& model, onnx::ModelProto* proto, const TensorWriter& writer = {},
                  bool stripLargeData = false);

void valueTypeToProto(const ir::ValueType& type, onnx::TypeProto* proto);
Expected<ir::ValueType> valueTypeFromProto(const onnx::TypeProto& proto, const std::string& valueName);

}  // namespace whittle::onnx_io::detail
