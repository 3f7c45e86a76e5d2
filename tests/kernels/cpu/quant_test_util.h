#pragma once
// Helpers of the quantized-kernel tests: tensors of quantized values, one-node models, and plain
// scalar references (integer convolution/matmul in int64, ONNX's round-half-to-even quantize).

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "support/graph_builder.h"
#include "whittle/ir/graph.h"
#include "whittle/runtime/session.h"

namespace whittle::testing::quant {

using ir::DataType;

inline int64_t numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

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

/// A tensor of `type` (uint8, int8, uint16, int16, int32) holding `values`.
inline ir::Tensor intTensor(DataType type, std::vector<int64_t> dims, const std::vector<int32_t>& values) {
  ir::Tensor t(type, std::move(dims));
  for (size_t i = 0; i < values.size(); ++i) {
    switch (type) {
      case DataType::kUint8: t.mutableData<uint8_t>()[i] = static_cast<uint8_t>(values[i]); break;
      case DataType::kInt8: t.mutableData<int8_t>()[i] = static_cast<int8_t>(values[i]); break;
      case DataType::kUint16: t.mutableData<uint16_t>()[i] = static_cast<uint16_t>(values[i]); break;
      case DataType::kInt16: t.mutableData<int16_t>()[i] = static_cast<int16_t>(values[i]); break;
      default: t.mutableData<int32_t>()[i] = values[i]; break;
    }
  }
  return t;
}

/// Seeded uniform integers in [lo, hi].
inline std::vector<int32_t> randomInts(std::mt19937_64& rng, int64_t n, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<float> randomFloats(std::mt19937_64& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

inline ir::Tensor floatTensor(std::vector<int64_t> dims, const std::vector<float>& values) {
  return ir::Tensor::fromVector(DataType::kFloat, std::move(dims), values);
}

/// A rank-0 float32 tensor.
inline ir::Tensor scalar(float v) { return floatTensor({}, {v}); }
/// A rank-0 tensor of `type`.
inline ir::Tensor scalar(DataType type, int32_t v) { return intTensor(type, {}, {v}); }

/// The values of an integer tensor as int32.
inline std::vector<int32_t> intsOf(const ir::Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<int32_t>(t.valueAsDouble(i));
  return v;
}

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

/// Runs `model` at `threads` threads; REQUIREs success and returns the outputs.
inline std::vector<ir::Tensor> run(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds, int threads = 1) {
  runtime::SessionOptions options;
  options.threads = threads;
  auto session = runtime::Session::create(model, options);
  INFO((session.isOk() ? std::string() : session.status().message()));
  REQUIRE(session.isOk());
  auto outputs = (*session)->run(feeds);
  INFO((outputs.isOk() ? std::string() : outputs.status().message()));
  REQUIRE(outputs.isOk());
  std::vector<ir::Tensor> out;
  for (auto& [name, t] : *outputs) out.push_back(t);
  return out;
}

/// Checks that `actual` holds exactly `expected` (as integers), naming the first difference.
// Runs every node of `model` as a one-node model of its own (so every value is a graph output,
// stored NCHW), feeding it the values computed so far; returns the values of the graph outputs,
// then those named in `extra`.
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
    auto outs = run(one, nodeFeeds);
    for (size_t i = 0; i < outs.size(); ++i) values[outNames[i]] = outs[i];
  }
  std::vector<ir::Tensor> result;
  for (const ir::Value* o : model.graph->outputs()) result.push_back(values.at(o->name()));
  for (const std::string& name : extra) result.push_back(values.at(name));
  return result;
}

inline void checkInts(const ir::Tensor& actual, const std::vector<int32_t>& expected, int32_t tolerance = 0) {
  REQUIRE(static_cast<size_t>(actual.numel()) == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto a = static_cast<int64_t>(actual.valueAsDouble(static_cast<int64_t>(i)));
    if (std::llabs(a - expected[i]) > tolerance) FAIL("element " << i << ": got " << a << ", expected " << expected[i]);
  }
}

}  // namespace whittle::testing::quant
