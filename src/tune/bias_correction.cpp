// Bias correction of a quantized model by the mean output shift of each layer (bias_correction.h).
#include "tune/bias_correction.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "whittle/ir/match.h"
#include "whittle/quant/quant_math.h"

namespace whittle::tune {
namespace {

bool isInt(ir::DataType t) {
  return t == ir::DataType::kInt8 || t == ir::DataType::kUint8 || t == ir::DataType::kInt32;
}

double elementAsDouble(const ir::Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case ir::DataType::kInt8: return t.data<int8_t>()[i];
    case ir::DataType::kUint8: return t.data<uint8_t>()[i];
    case ir::DataType::kInt32: return t.data<int32_t>()[i];
    case ir::DataType::kFloat: return t.data<float>()[i];
    default: return 0;
  }
}

/// The DequantizeLinear behind `v` with a constant integer input, or nullptr.
const ir::Node* constantDq(const ir::Value* v) {
  const ir::Node* dq = v != nullptr ? v->producer() : nullptr;
  if (dq == nullptr || dq->opType() != "DequantizeLinear" || !dq->domain().empty() || dq->numInputs() < 2) return nullptr;
  const ir::Tensor* q = ir::constantOf(dq->input(0));
  const ir::Tensor* s = ir::constantOf(dq->input(1));
  if (q == nullptr || s == nullptr || !isInt(q->dtype()) || s->dtype() != ir::DataType::kFloat) return nullptr;
  if (dq->numInputs() > 2 && dq->input(2) != nullptr && ir::constantOf(dq->input(2)) == nullptr) return nullptr;
  return dq;
}

/// A constant DequantizeLinear's output as floats (per-tensor or per-axis scales).
std::vector<double> dequantized(const ir::Node& dq) {
  const ir::Tensor& q = *ir::constantOf(dq.input(0));
  const ir::Tensor& s = *ir::constantOf(dq.input(1));
  const ir::Tensor* zp = dq.numInputs() > 2 && dq.input(2) != nullptr ? ir::constantOf(dq.input(2)) : nullptr;
  const int64_t n = q.numel(), rank = q.rank();
  int64_t axis = dq.attrInt("axis", 1);
  if (axis < 0) axis += rank;
  int64_t inner = 1, dim = 1;
  if (s.numel() > 1 && axis >= 0 && axis < rank) {
    dim = q.dims()[static_cast<size_t>(axis)];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= q.dims()[static_cast<size_t>(d)];
  }
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = s.numel() > 1 ? (i / inner) % dim : 0;
    const double z = zp != nullptr ? elementAsDouble(*zp, zp->numel() > 1 ? c : 0) : 0.0;
    out[static_cast<size_t>(i)] = (elementAsDouble(q, i) - z) * s.data<float>()[c];
  }
  return out;
}

/// Where the weight element (o, i, k) of a layer with `out` outputs sits, and which input
/// channel it reads: the layer's geometry.
struct Geometry {
  int64_t outs = 0, groups = 1, inPerGroup = 0, kernel = 1;
  bool transposedGemm = false;  ///< Gemm transB = 0: W is [K, N]
  int64_t index(int64_t o, int64_t j, int64_t k) const {
    if (transposedGemm) return j * outs + o;
    return (o * inPerGroup + j) * kernel + k;
  }
  int64_t inputChannel(int64_t o, int64_t j) const { return (o / (outs / groups)) * inPerGroup + j; }
};

std::optional<Geometry> geometryOf(const ir::Node& n, const ir::Tensor& w) {
  Geometry g;
  if (n.opType() == "Conv") {
    if (w.rank() < 3) return std::nullopt;
    g.outs = w.dims()[0];
    g.groups = n.attrInt("group", 1);
    g.inPerGroup = w.dims()[1];
    for (int64_t d = 2; d < w.rank(); ++d) g.kernel *= w.dims()[static_cast<size_t>(d)];
    if (g.groups <= 0 || g.outs % g.groups != 0) return std::nullopt;
    return g;
  }
  if (n.opType() == "Gemm") {
    if (w.rank() != 2 || n.attrInt("transA", 0) != 0 || n.attrFloat("alpha", 1.0f) != 1.0f ||
        n.attrFloat("beta", 1.0f) != 1.0f) {
      return std::nullopt;
    }
    const bool transB = n.attrInt("transB", 0) != 0;
    g.outs = transB ? w.dims()[0] : w.dims()[1];
    g.inPerGroup = transB ? w.dims()[1] : w.dims()[0];
    g.transposedGemm = !transB;
    return g;
  }
  return std::nullopt;
}

}  // namespace

std::vector<BiasSite> biasSites(const ir::Model& quantized, const ir::Model& floatModel) {
  std::unordered_map<std::string, const ir::Node*> twins;
  for (const ir::Node* n : floatModel.graph->nodes()) {
    if (!n->name().empty()) twins[n->name()] = n;
  }
  std::vector<BiasSite> sites;
  for (const ir::Node* n : quantized.graph->nodes()) {
    if ((n->opType() != "Conv" && n->opType() != "Gemm") || !n->domain().empty() || n->numInputs() < 3) continue;
    auto twin = twins.find(n->name());
    if (twin == twins.end() || twin->second->opType() != n->opType() || twin->second->numInputs() < 3) continue;
    const ir::Node& f = *twin->second;
    const ir::Tensor* w = ir::constantOf(f.input(1));
    const ir::Tensor* b = ir::constantOf(f.input(2));
    if (w == nullptr || b == nullptr || w->dtype() != ir::DataType::kFloat || f.input(0) == nullptr) continue;
    if (constantDq(n->input(1)) == nullptr) continue;  // weights not int8 here
    const ir::Node* bdq = constantDq(n->input(2));
    const ir::Tensor* fb = ir::constantOf(n->input(2));
    if (bdq == nullptr && (fb == nullptr || fb->dtype() != ir::DataType::kFloat)) continue;
    auto g = geometryOf(f, *w);
    if (!g || b->numel() != g->outs) continue;
    BiasSite s;
    s.node = n->name();
    s.floatInput = f.input(0)->name();
    s.channels = g->groups * g->inPerGroup;
    // The input's activation pair: DequantizeLinear(QuantizeLinear(x)) with scalar parameters.
    const ir::Node* dq = n->input(0) != nullptr ? n->input(0)->producer() : nullptr;
    if (dq != nullptr && dq->opType() == "DequantizeLinear" && dq->numInputs() >= 2) {
      auto scale = ir::scalarConstant(dq->input(1));
      const ir::Tensor* zp = dq->numInputs() > 2 && dq->input(2) != nullptr ? ir::constantOf(dq->input(2)) : nullptr;
      if (scale && *scale > 0 && (zp == nullptr || zp->numel() == 1)) {
        const ir::DataType t = zp != nullptr ? zp->dtype() : ir::DataType::kUint8;
        if (t == ir::DataType::kUint8 || t == ir::DataType::kInt8) {
          s.inputQuantized = true;
          s.scale = static_cast<float>(*scale);
          s.zeroPoint = zp != nullptr ? static_cast<int32_t>(elementAsDouble(*zp, 0)) : 0;
          s.qmin = quant::qmin(t);
          s.qmax = quant::qmax(t);
        }
      }
    }
    sites.push_back(s);
  }
  return sites;
}

ChannelMeanCollector::ChannelMeanCollector(const BiasSite& site)
    : site_(site), sum_(static_cast<size_t>(site.channels), 0.0), roundSum_(static_cast<size_t>(site.channels), 0.0) {}

Status ChannelMeanCollector::collect(const std::string& name, const ir::Tensor& value, int64_t samples) {
  if (value.rank() < 2 || value.dims()[1] != site_.channels || value.dtype() != ir::DataType::kFloat) {
    return invalidInput("bias correction: tensor '" + name + "' is not [N, " + std::to_string(site_.channels) +
                        ", ...] float32 (input of '" + site_.node + "')");
  }
  int64_t inner = 1;
  for (int64_t d = 2; d < value.rank(); ++d) inner *= value.dims()[static_cast<size_t>(d)];
  const int64_t rows = std::min(samples, value.dims()[0]);
  const float* x = value.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < site_.channels; ++c) {
      const float* p = x + (r * site_.channels + c) * inner;
      double sum = 0, round = 0;
      for (int64_t i = 0; i < inner; ++i) {
        sum += p[i];
        if (site_.inputQuantized) {
          const int32_t q = quant::quantizeValue(p[i], site_.scale, site_.zeroPoint, site_.qmin, site_.qmax);
          round += static_cast<double>(q - site_.zeroPoint) * site_.scale - p[i];
        }
      }
      sum_[static_cast<size_t>(c)] += sum;
      roundSum_[static_cast<size_t>(c)] += round;
    }
  }
  count_ += rows * inner;
  return Status::ok();
}

std::vector<double> ChannelMeanCollector::mean() const {
  std::vector<double> m(sum_.size(), 0.0);
  for (size_t c = 0; c < m.size() && count_ > 0; ++c) m[c] = sum_[c] / static_cast<double>(count_);
  return m;
}

std::vector<double> ChannelMeanCollector::roundingMean() const {
  std::vector<double> m(roundSum_.size(), 0.0);
  for (size_t c = 0; c < m.size() && count_ > 0; ++c) m[c] = roundSum_[c] / static_cast<double>(count_);
  return m;
}

Expected<std::map<std::string, SiteMoments>> measureSites(const ir::Model& floatModel, const std::vector<BiasSite>& sites,
                                                          quant::CalibrationProvider& provider) {
  // One collector per input tensor: two layers reading one tensor share its quantization
  // (one Q/DQ pair), so the first one's parameters serve both.
  std::map<std::string, ChannelMeanCollector> collectors;
  std::map<std::string, quant::TensorCollector*> byTensor;
  for (const BiasSite& s : sites) {
    if (collectors.contains(s.floatInput)) continue;
    auto [it, fresh] = collectors.emplace(s.floatInput, ChannelMeanCollector(s));
    byTensor[s.floatInput] = &it->second;
  }
  std::map<std::string, SiteMoments> out;
  if (byTensor.empty()) return out;
  WH_ASSIGN_OR_RETURN(int64_t samples, provider.collect(floatModel, byTensor));
  if (samples <= 0) return invalidInput("bias correction: the calibration data has no samples");
  for (const BiasSite& s : sites) {
    const ChannelMeanCollector& c = collectors.at(s.floatInput);
    SiteMoments m;
    m.site = s;
    m.mean = c.mean();
    m.roundingMean = c.roundingMean();
    out.emplace(s.node, std::move(m));
  }
  // A site that shares its tensor with another measured under other parameters keeps the
  // weight term only (its rounding term was measured for the other quantization).
  for (auto& [node, m] : out) {
    const BiasSite& first = collectors.at(m.site.floatInput).site();
    if (first.node != node && (first.scale != m.site.scale || first.zeroPoint != m.site.zeroPoint ||
                               first.inputQuantized != m.site.inputQuantized)) {
      std::fill(m.roundingMean.begin(), m.roundingMean.end(), 0.0);
      m.site.inputQuantized = false;
    }
  }
  return out;
}

Expected<BiasCorrectionStats> correctBiases(ir::Model& quantized, const ir::Model& floatModel,
                                            const std::map<std::string, SiteMoments>& moments) {
  BiasCorrectionStats stats;
  if (moments.empty()) return stats;
  std::unordered_map<std::string, const ir::Node*> twins;
  for (const ir::Node* n : floatModel.graph->nodes()) {
    if (moments.contains(n->name())) twins[n->name()] = n;
  }
  // The sites of the model as it is now (which inputs are quantized, and how).
  std::map<std::string, BiasSite> now;
  for (BiasSite& s : biasSites(quantized, floatModel)) now.emplace(s.node, s);
  ir::Graph& graph = *quantized.graph;
  double shiftSum = 0;
  int64_t shiftCount = 0;
  std::vector<ir::Value*> replaced;
  for (ir::Node* n : graph.nodes()) {
    auto m = moments.find(n->name());
    auto site = now.find(n->name());
    if (m == moments.end() || site == now.end() || !twins.contains(n->name())) continue;
    const ir::Node& f = *twins.at(n->name());
    const ir::Tensor& w = *ir::constantOf(f.input(1));
    auto g = geometryOf(f, w);
    if (!g || m->second.mean.size() != static_cast<size_t>(g->groups * g->inPerGroup)) continue;
    const ir::Node* wdq = constantDq(n->input(1));
    std::vector<double> wq = dequantized(*wdq);
    if (static_cast<int64_t>(wq.size()) != w.numel()) continue;
    const BiasSite& measured = m->second.site;
    const BiasSite& current = site->second;
    const bool inputTerm = current.inputQuantized && measured.inputQuantized && current.scale == measured.scale &&
                           current.zeroPoint == measured.zeroPoint && current.qmin == measured.qmin;
    const float* wf = w.data<float>();
    std::vector<double> delta(static_cast<size_t>(g->outs), 0.0);
    for (int64_t o = 0; o < g->outs; ++o) {
      double d = 0;
      for (int64_t j = 0; j < g->inPerGroup; ++j) {
        const int64_t ic = g->inputChannel(o, j);
        const double mu = m->second.mean[static_cast<size_t>(ic)];
        const double eps = inputTerm ? m->second.roundingMean[static_cast<size_t>(ic)] : 0.0;
        for (int64_t k = 0; k < g->kernel; ++k) {
          const int64_t e = g->index(o, j, k);
          d += (wq[static_cast<size_t>(e)] - wf[e]) * mu + wq[static_cast<size_t>(e)] * eps;
        }
      }
      delta[static_cast<size_t>(o)] = d;
    }
    // Rewrite the bias where it is.
    if (const ir::Node* bdq = constantDq(n->input(2)); bdq != nullptr) {
      const ir::Tensor& q = *ir::constantOf(bdq->input(0));
      const ir::Tensor& s = *ir::constantOf(bdq->input(1));
      if (q.dtype() != ir::DataType::kInt32 || q.numel() != g->outs) continue;
      ir::Tensor t(ir::DataType::kInt32, q.dims());
      for (int64_t o = 0; o < g->outs; ++o) {
        const double scale = s.data<float>()[s.numel() > 1 ? o : 0];
        const double v = std::nearbyint(static_cast<double>(q.data<int32_t>()[o]) - delta[static_cast<size_t>(o)] / scale);
        t.mutableData<int32_t>()[o] = static_cast<int32_t>(std::clamp(v, -2147483648.0, 2147483647.0));
      }
      replaced.push_back(bdq->input(0));
      ir::Value* qv = graph.addInitializer(graph.uniqueValueName(bdq->input(0)->name() + "_corrected"), std::move(t));
      const_cast<ir::Node*>(bdq)->setInput(0, qv);
    } else {
      const ir::Tensor* b = ir::constantOf(n->input(2));
      if (b == nullptr || b->dtype() != ir::DataType::kFloat || b->numel() != g->outs) continue;
      ir::Tensor t(ir::DataType::kFloat, b->dims());
      for (int64_t o = 0; o < g->outs; ++o) {
        t.mutableData<float>()[o] = static_cast<float>(b->data<float>()[o] - delta[static_cast<size_t>(o)]);
      }
      replaced.push_back(n->input(2));
      n->setInput(2, graph.addInitializer(graph.uniqueValueName(n->input(2)->name() + "_corrected"), std::move(t)));
    }
    for (double d : delta) shiftSum += std::abs(d);
    shiftCount += g->outs;
    ++stats.corrected;
    stats.weightOnly += !inputTerm;
  }
  stats.meanAbsShift = shiftCount > 0 ? shiftSum / static_cast<double>(shiftCount) : 0.0;
  // The replaced bias constants nothing else reads are dropped.
  std::vector<ir::Value*> unused;
  for (ir::Value* v : replaced) {
    if (v->uses().empty() && v->producer() == nullptr && !v->isGraphOutput() && !v->isGraphInput()) unused.push_back(v);
  }
  graph.eraseValues(unused);
  return stats;
}

}  // namespace whittle::tune
