#pragma once
// The references of the quantized-kernel tests: integer ranges, ONNX's round-half-to-even
// quantize, MLAS's requantize, a naive integer convolution in int64, and a model run node by
// node. Tensors, random values, running and the integer checks come from
// tests/support/kernel_harness.h and tests/support/tolerance.h.

#include <algorithm>
#include <catch2/catch.hpp>
#include <climits>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "support/graph_builder.h"
#include "support/kernel_harness.h"
#include "support/tolerance.h"

namespace whittle::testing::quant {

using ir::DataType;
using testing::checkInts;
using testing::intTensor;
using testing::numel;
using testing::randomFloats;
using testing::randomInts;
using testing::runOutputs;

/// The names these tests used before tests/support/: runOutputs and intValues.
inline std::vector<ir::Tensor> run(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds,
                                   int threads = 1) {
  return runOutputs(model, feeds, threads);
}
inline std::vector<int32_t> intsOf(const ir::Tensor& t) { return testing::intValues(t); }

inline int32_t typeMin(DataType t) {
  switch (t) {
    case DataType::kUint8:
    case DataType::kUint16: return 0;
    case DataType::kInt8: return -128;
    case DataType::kInt16: return -32768;
    default: return INT32_MIN;
  }
}

inline int32_t typeMax(DataType t) {
  switch (t) {
    case DataType::kUint8: return 255;
    case DataType::kInt8: return 127;
    case DataType::kUint16: return 65535;
    case DataType::kInt16: return 32767;
    default: return INT32_MAX;
  }
}

inline ir::Tensor floatTensor(std::vector<int64_t> dims, const std::vector<float>& values) {
  return ir::Tensor::fromVector(DataType::kFloat, std::move(dims), values);
}

/// A rank-0 float32 tensor.
inline ir::Tensor scalar(float v) { return floatTensor({}, {v}); }
/// A rank-0 tensor of `type`.
inline ir::Tensor scalar(DataType type, int32_t v) { return intTensor(type, {}, {v}); }

/// Builds QDQ graphs: QuantizeLinear / DequantizeLinear with constant per-tensor parameters,
/// each node and constant with a fresh name.
struct QdqGraphBuilder {
  GraphBuilder gb{5};
  int counter = 0;

  std::string fresh(const std::string& base) { return base + std::to_string(counter++); }
  ir::Value* q(ir::Value* x, float scale, int32_t zp, DataType type = DataType::kUint8) {
    std::string n = fresh("q");
    return gb.node("QuantizeLinear", {x, gb.constant(n + "_s", scalar(scale)), gb.constant(n + "_z", scalar(type, zp))},
                   {}, n);
  }
  ir::Value* dq(ir::Value* xq, float scale, int32_t zp, DataType type = DataType::kUint8) {
    std::string n = fresh("dq");
    return gb.node("DequantizeLinear",
                   {xq, gb.constant(n + "_s", scalar(scale)), gb.constant(n + "_z", scalar(type, zp))}, {}, n);
  }
  /// Q then DQ with the same parameters: a quantized activation as QDQ models carry it.
  ir::Value* qdq(ir::Value* x, float scale, int32_t zp) { return dq(q(x, scale, zp), scale, zp); }
};

/// ONNX QuantizeLinear of one value: saturate(round_half_even(v / scale) + zp).
inline int32_t refQuantize(float v, float scale, int32_t zp, DataType type) {
  const double r = std::nearbyint(static_cast<double>(v / scale)) + zp;
  return static_cast<int32_t>(std::min<double>(std::max<double>(r, typeMin(type)), typeMax(type)));
}

/// MLAS requantisation of an int32 accumulator: saturate(round_half_even(float(acc) * scale) + zp).
inline int32_t refRequantize(int64_t acc, float scale, int32_t zp, DataType type) {
  const double r = std::nearbyint(static_cast<double>(static_cast<float>(acc) * scale)) + zp;
  return static_cast<int32_t>(std::min<double>(std::max<double>(r, typeMin(type)), typeMax(type)));
}

/// A naive N-d integer convolution: acc[n, m, o] = sum (x - xZp) * (w - wZp[m]), NCHW.
struct RefConv {
  std::vector<int64_t> x, w;  // dims
  std::vector<int64_t> strides, pads, dilations;  // pads: begin..., end...
  int64_t group = 1;

  std::vector<int64_t> outDims() const {
    std::vector<int64_t> o{x[0], w[0]};
    const size_t s = x.size() - 2;
    for (size_t i = 0; i < s; ++i) {
      o.push_back((x[i + 2] + pads[i] + pads[i + s] - ((w[i + 2] - 1) * dilations[i] + 1)) / strides[i] + 1);
    }
    return o;
  }

  std::vector<int64_t> run(const std::vector<int32_t>& xv, int32_t xZp, const std::vector<int32_t>& wv,
                           const std::vector<int32_t>& wZp) const {
    const std::vector<int64_t> od = outDims();
    const size_t s = x.size() - 2;
    const int64_t cg = x[1] / group, mg = w[0] / group;
    std::vector<int64_t> acc(static_cast<size_t>(numel(od)), 0);
    std::vector<int64_t> oIdx(s), kIdx(s);
    int64_t outSpatial = numel(std::vector<int64_t>(od.begin() + 2, od.end()));
    int64_t kSpatial = numel(std::vector<int64_t>(w.begin() + 2, w.end()));
    int64_t inSpatial = numel(std::vector<int64_t>(x.begin() + 2, x.end()));
    for (int64_t n = 0; n < x[0]; ++n) {
      for (int64_t m = 0; m < w[0]; ++m) {
        const int64_t g = m / mg;
        const int32_t wz = wZp.size() == 1 ? wZp[0] : wZp[static_cast<size_t>(m)];
        for (int64_t o = 0; o < outSpatial; ++o) {
          int64_t rem = o;
          for (size_t d = s; d-- > 0;) {
            oIdx[d] = rem % od[d + 2];
            rem /= od[d + 2];
          }
          int64_t sum = 0;
          for (int64_t c = 0; c < cg; ++c) {
            for (int64_t k = 0; k < kSpatial; ++k) {
              int64_t krem = k, inOff = 0;
              bool inside = true;
              for (size_t d = s; d-- > 0;) {
                kIdx[d] = krem % w[d + 2];
                krem /= w[d + 2];
              }
              int64_t stride = 1;
              for (size_t d = s; d-- > 0;) {
                const int64_t i = oIdx[d] * strides[d] + kIdx[d] * dilations[d] - pads[d];
                inside = inside && i >= 0 && i < x[d + 2];
                inOff += i * stride;
                stride *= x[d + 2];
              }
              if (!inside) continue;
              const int64_t xi = (n * x[1] + g * cg + c) * inSpatial + inOff;
              const int64_t wi = (m * cg + c) * kSpatial + k;
              sum += static_cast<int64_t>(xv[static_cast<size_t>(xi)] - xZp) * (wv[static_cast<size_t>(wi)] - wz);
            }
          }
          acc[static_cast<size_t>((n * w[0] + m) * outSpatial + o)] = sum;
        }
      }
    }
    return acc;
  }
};

/// Runs `model` as whittle's runtime lowers it, on `threads` threads, with `extra` as extra
/// outputs; returns the session's outputs (the graph outputs, then the extra ones not already
/// among them), to set beside runNodeByNode's.
inline std::vector<runtime::NamedTensor> runLowered(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds,
                                                    const std::vector<std::string>& extra, int threads = 1) {
  runtime::SessionOptions options;
  options.threads = threads;
  options.extraOutputs = extra;
  auto session = runtime::Session::create(model, options);
  REQUIRE(session.isOk());
  auto out = (*session)->run(feeds);
  REQUIRE(out.isOk());
  return std::move(*out);
}

/// Runs every node of `model` as a one-node model of its own (so every value is a graph output,
/// stored NCHW), feeding it the values computed so far; returns the values of the graph outputs,
/// then those named in `extra`.
inline std::vector<ir::Tensor> runNodeByNode(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds,
                                      const std::vector<std::string>& extra = {}) {
  std::map<std::string, ir::Tensor> values(feeds.begin(), feeds.end());
  for (const ir::Node* node : model.graph->nodes()) {
    ir::Model one;
    one.opsetImports = model.opsetImports;
    std::vector<ir::Value*> ins;
    std::vector<runtime::NamedTensor> nodeFeeds;
    for (const ir::Value* in : node->inputs()) {
      if (in == nullptr) {
        ins.push_back(nullptr);
      } else if (in->constant() != nullptr) {
        ins.push_back(one.graph->addInitializer(in->name(), *in->constant()));
      } else if (ir::Value* existing = one.graph->findValue(in->name())) {
        ins.push_back(existing);
      } else {
        const ir::Tensor& t = values.at(in->name());
        ir::ValueType type;
        type.dtype = t.dtype();
        ins.push_back(one.graph->addInput(in->name(), type));
        nodeFeeds.emplace_back(in->name(), t);
      }
    }
    std::vector<std::string> outNames;
    for (const ir::Value* o : node->outputs()) outNames.push_back(o->name());
    ir::Node* copy = one.graph->addNode(node->opType(), ins, outNames, node->name(), node->domain());
    for (const ir::Attribute& a : node->attributes()) copy->setAttribute(a);
    for (ir::Value* o : copy->outputs()) one.graph->addOutput(o);
    auto outs = runOutputs(one, nodeFeeds);
    for (size_t i = 0; i < outs.size(); ++i) values[outNames[i]] = outs[i];
  }
  std::vector<ir::Tensor> result;
  for (const ir::Value* o : model.graph->outputs()) result.push_back(values.at(o->name()));
  for (const std::string& name : extra) result.push_back(values.at(name));
  return result;
}

}  // namespace whittle::testing::quant
