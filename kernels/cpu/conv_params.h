#pragma once
// Attributes and output geometry of Conv and ConvTranspose (ONNX semantics: auto_pad,
// pads, strides, dilations, group, output_padding, output_shape). Shared by the oneDNN
// kernels, the scalar references and the tests.

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"

namespace whittle::runtime::cpu {

/// ONNX auto_pad.
enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };

/// Parses an auto_pad attribute value; an unknown value is an error naming the node.
Expected<AutoPad> parseAutoPad(const ir::Node& node);

/// The attributes of a Conv or ConvTranspose node as written; empty lists mean "default".
struct ConvAttrs {
  AutoPad autoPad = AutoPad::kNotSet;
  std::vector<int64_t> kernelShape;
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pads;  ///< [begin..., end...]
  std::vector<int64_t> outputPadding;
  std::vector<int64_t> outputShape;
  int64_t group = 1;
};

Expected<ConvAttrs> readConvAttrs(const ir::Node& node);

/// Everything needed to run one convolution: logical (channels-first) dims and the
/// resolved per-spatial-dim parameters.
struct ConvGeometry {
  std::vector<int64_t> src;  ///< [N, C, D...]
  std::vector<int64_t> wei;  ///< As in ONNX: Conv [M, C/G, k...]; ConvTranspose [C, M/G, k...]
  std::vector<int64_t> dst;  ///< [N, M, O...]
  std::vector<int64_t> kernel;
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;  ///< ONNX convention: 1 = dense
  std::vector<int64_t> padBegin;
  std::vector<int64_t> padEnd;  ///< For ConvTranspose: may be negative (output_padding).
  int64_t group = 1;
  bool operator==(const ConvGeometry&) const = default;
};

/// Checks the shapes of X and W against the attributes and computes the output of a Conv.
/// `what` names the node in messages.
Expected<ConvGeometry> resolveConv(const ConvAttrs& attrs, const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                   const std::string& what);
/// The same for ConvTranspose.
Expected<ConvGeometry> resolveConvTranspose(const ConvAttrs& attrs, const std::vector<int64_t>& x,
                                            const std::vector<int64_t>& w, const std::string& what);

/// Fills a per-spatial-dim list: `values` when it has `rank` entries, `fallback` when empty;
/// nullopt otherwise.
std::optional<std::vector<int64_t>> spatialList(const std::vector<int64_t>& values, size_t rank, int64_t fallback);

}  // namespace whittle::runtime::cpu
