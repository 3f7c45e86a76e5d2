#include "cpu/conv_params.h"

#include <optional>

#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

Expected<AutoPad> parseAutoPad(const ir::Node& node) {
  std::string s = node.attrString("auto_pad", "NOTSET");
  if (s == "NOTSET" || s.empty()) return AutoPad::kNotSet;
  if (s == "SAME_UPPER") return AutoPad::kSameUpper;
  if (s == "SAME_LOWER") return AutoPad::kSameLower;
  if (s == "VALID") return AutoPad::kValid;
  return invalidInput(node.describe() + ": auto_pad '" + s + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
}

Expected<ConvAttrs> readConvAttrs(const ir::Node& node) {
  ConvAttrs a;
  WH_ASSIGN_OR_RETURN(a.autoPad, parseAutoPad(node));
  a.kernelShape = node.attrInts("kernel_shape");
  a.strides = node.attrInts("strides");
  a.dilations = node.attrInts("dilations");
  a.pads = node.attrInts("pads");
  a.outputPadding = node.attrInts("output_padding");
  a.outputShape = node.attrInts("output_shape");
  a.group = node.attrInt("group", 1);
  if (a.group < 1) return invalidInput(node.describe() + ": group must be at least 1, got " + std::to_string(a.group));
  for (int64_t s : a.strides) {
    if (s < 1) return invalidInput(node.describe() + ": strides must be positive");
  }
  for (int64_t d : a.dilations) {
    if (d < 1) return invalidInput(node.describe() + ": dilations must be positive");
  }
  for (int64_t p : a.pads) {
    if (p < 0) return invalidInput(node.describe() + ": pads must not be negative");
  }
  return a;
}

std::optional<std::vector<int64_t>> spatialList(const std::vector<int64_t>& values, size_t rank, int64_t fallback) {
  if (values.empty()) return std::vector<int64_t>(rank, fallback);
  if (values.size() != rank) return std::nullopt;
  return values;
}

namespace {

/// Checks the common parts and fills kernel, strides, dilations and explicit pads.
Status fillCommon(const ConvAttrs& attrs, const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                  const std::string& what, ConvGeometry& g) {
  if (x.size() < 3) return invalidInput(what + ": input X must have rank 3 or more, got " + shapeToString(x));
  if (w.size() != x.size()) {
    return invalidInput(what + ": W " + shapeToString(w) + " must have the rank of X " + shapeToString(x));
  }
  size_t n = x.size() - 2;
  g.src = x;
  g.wei = w;
  g.group = attrs.group;
  g.kernel.assign(w.begin() + 2, w.end());
  if (!attrs.kernelShape.empty() && attrs.kernelShape != g.kernel) {
    return invalidInput(what + ": kernel_shape " + shapeToString(attrs.kernelShape) + " does not match W " +
                        shapeToString(w));
  }
  auto strides = spatialList(attrs.strides, n, 1);
  auto dilations = spatialList(attrs.dilations, n, 1);
  if (!strides || !dilations) return invalidInput(what + ": strides and dilations need one value per spatial dim");
  g.strides = *strides;
  g.dilations = *dilations;
  if (!attrs.pads.empty() && attrs.pads.size() != 2 * n) {
    return invalidInput(what + ": pads needs " + std::to_string(2 * n) + " values, got " +
                        std::to_string(attrs.pads.size()));
  }
  g.padBegin.assign(n, 0);
  g.padEnd.assign(n, 0);
  if (attrs.autoPad == AutoPad::kNotSet && !attrs.pads.empty()) {
    for (size_t i = 0; i < n; ++i) {
      g.padBegin[i] = attrs.pads[i];
      g.padEnd[i] = attrs.pads[n + i];
    }
  }
  return Status::ok();
}

}  // namespace

Expected<ConvGeometry> resolveConv(const ConvAttrs& attrs, const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                   const std::string& what) {
  ConvGeometry g;
  WH_RETURN_IF_ERROR(fillCommon(attrs, x, w, what, g));
  size_t n = x.size() - 2;
  if (x[1] != w[1] * attrs.group) {
    return invalidInput(what + ": X has " + std::to_string(x[1]) + " channels but W " + shapeToString(w) +
                        " with group " + std::to_string(attrs.group) + " expects " +
                        std::to_string(w[1] * attrs.group));
  }
  if (w[0] % attrs.group != 0) {
    return invalidInput(what + ": W has " + std::to_string(w[0]) + " output channels, not a multiple of group " +
                        std::to_string(attrs.group));
  }
  g.dst = {x[0], w[0]};
  for (size_t i = 0; i < n; ++i) {
    int64_t in = x[i + 2];
    int64_t extent = (g.kernel[i] - 1) * g.dilations[i] + 1;
    int64_t s = g.strides[i];
    int64_t out = 0;
    switch (attrs.autoPad) {
      case AutoPad::kNotSet:
        out = (in + g.padBegin[i] + g.padEnd[i] - extent) / s + 1;
        break;
      case AutoPad::kValid:
        out = (in - extent) / s + 1;
        break;
      case AutoPad::kSameUpper:
      case AutoPad::kSameLower: {
        out = (in + s - 1) / s;
        int64_t total = std::max<int64_t>(0, (out - 1) * s + extent - in);
        int64_t small = total / 2;
        g.padBegin[i] = attrs.autoPad == AutoPad::kSameUpper ? small : total - small;
        g.padEnd[i] = total - g.padBegin[i];
        break;
      }
    }
    if (in + g.padBegin[i] + g.padEnd[i] < extent || out < 1) {
      if (in == 0) {
        out = 0;
      } else {
        return invalidInput(what + ": the kernel " + shapeToString(g.kernel) + " (dilated) does not fit input " +
                            shapeToString(x) + " with its padding");
      }
    }
    g.dst.push_back(out);
  }
  return g;
}

Expected<ConvGeometry> resolveConvTranspose(const ConvAttrs& attrs, const std::vector<int64_t>& x,
                                            const std::vector<int64_t>& w, const std::string& what) {
  ConvGeometry g;
  WH_RETURN_IF_ERROR(fillCommon(attrs, x, w, what, g));
  size_t n = x.size() - 2;
  if (x[1] != w[0]) {
    return invalidInput(what + ": X has " + std::to_string(x[1]) + " channels but W " + shapeToString(w) + " expects " +
                        std::to_string(w[0]));
  }
  if (w[0] % attrs.group != 0) {
    return invalidInput(what + ": W has " + std::to_string(w[0]) + " input channels, not a multiple of group " +
                        std::to_string(attrs.group));
  }
  auto outPad = spatialList(attrs.outputPadding, n, 0);
  if (!outPad) return invalidInput(what + ": output_padding needs one value per spatial dim");
  std::vector<int64_t> outShape = attrs.outputShape;
  if (outShape.size() == n + 2) outShape.erase(outShape.begin(), outShape.begin() + 2);
  if (!outShape.empty() && outShape.size() != n)
    return invalidInput(what + ": output_shape needs one value per spatial dim");
  bool autoPads = attrs.autoPad == AutoPad::kSameUpper || attrs.autoPad == AutoPad::kSameLower;
  g.dst = {x[0], w[1] * attrs.group};
  for (size_t i = 0; i < n; ++i) {
    int64_t in = x[i + 2];
    int64_t extent = (g.kernel[i] - 1) * g.dilations[i] + 1;
    // Output size with no padding: out = base - padBegin - padEnd, where padEnd may go
    // negative to hold output_padding or an output_shape larger than the input covers.
    int64_t base = g.strides[i] * (in - 1) + extent;
    int64_t out = 0;
    if (autoPads) {
      out = !outShape.empty() ? outShape[i] : in * g.strides[i];
      int64_t total = base + (*outPad)[i] - out;
      int64_t small = total / 2;
      g.padBegin[i] = attrs.autoPad == AutoPad::kSameUpper ? small : total - small;
    } else if (!outShape.empty()) {
      out = outShape[i];  // pads (default 0) place the window; the output is cut to size
    } else {
      out = base + (*outPad)[i] - g.padBegin[i] - g.padEnd[i];
    }
    g.padEnd[i] = base - g.padBegin[i] - out;
    if (out < 0) return invalidInput(what + ": the output would have negative size");
    g.dst.push_back(out);
  }
  return g;
}

}  // namespace whittle::runtime::cpu
