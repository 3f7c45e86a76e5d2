// Cross-layer equalization of depthwise -> pointwise Conv pairs (equalize.h).
#include "tune/equalize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "whittle/ir/match.h"

namespace whittle::tune {
namespace {

/// The one reader of `v`, or nullptr (several readers, or a graph output).
ir::Node* onlyReader(const ir::Value* v) {
  if (v == nullptr || v->isGraphOutput() || v->uses().size() != 1) return nullptr;
  return v->uses()[0].user;
}

/// A float constant weight read by this node alone.
const ir::Tensor* ownWeight(const ir::Value* v) {
  if (v == nullptr || v->uses().size() != 1 || v->isGraphOutput()) return nullptr;
  const ir::Tensor* t = ir::constantOf(v);
  return t != nullptr && t->dtype() == ir::DataType::kFloat ? t : nullptr;
}

/// Clip(x, 0, c)'s c; nullopt unless the lower bound is 0 and the upper one a finite constant.
std::optional<double> reluClipMax(const ir::Node& n) {
  double lo = n.attrFloat("min", -std::numeric_limits<float>::max());
  double hi = n.attrFloat("max", std::numeric_limits<float>::max());
  if (n.numInputs() > 1 && n.input(1) != nullptr) {
    auto v = ir::scalarConstant(n.input(1));
    if (!v) return std::nullopt;
    lo = *v;
  }
  if (n.numInputs() > 2 && n.input(2) != nullptr) {
    auto v = ir::scalarConstant(n.input(2));
    if (!v) return std::nullopt;
    hi = *v;
  }
  if (lo != 0.0 || !(hi > 0) || hi >= std::numeric_limits<float>::max()) return std::nullopt;
  return hi;
}

/// Per channel (axis 1) maximum of a tensor.
class ChannelMaxCollector final : public quant::TensorCollector {
 public:
  explicit ChannelMaxCollector(int64_t channels) : max_(static_cast<size_t>(channels), -std::numeric_limits<float>::infinity()) {}
  Status collect(const std::string& name, const ir::Tensor& value, int64_t samples) override {
    const int64_t c = static_cast<int64_t>(max_.size());
    if (value.rank() < 2 || value.dims()[1] != c || value.dtype() != ir::DataType::kFloat) {
      return invalidInput("equalization: tensor '" + name + "' is not [N, " + std::to_string(c) + ", ...] float32");
    }
    int64_t inner = 1;
    for (int64_t d = 2; d < value.rank(); ++d) inner *= value.dims()[static_cast<size_t>(d)];
    const float* x = value.data<float>();
    for (int64_t r = 0; r < std::min(samples, value.dims()[0]); ++r) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* p = x + (r * c + ch) * inner;
        float& m = max_[static_cast<size_t>(ch)];
        for (int64_t i = 0; i < inner; ++i) m = std::max(m, p[i]);
      }
    }
    return Status::ok();
  }
  const std::vector<float>& max() const { return max_; }

 private:
  std::vector<float> max_;
};

}  // namespace

std::vector<EqualizePair> equalizePairs(const ir::Model& model) {
  std::vector<EqualizePair> pairs;
  for (const ir::Node* a : model.graph->nodes()) {
    if (a->opType() != "Conv" || !a->domain().empty() || a->numInputs() < 2 || a->numOutputs() < 1) continue;
    const ir::Tensor* wa = ownWeight(a->input(1));
    if (wa == nullptr || wa->rank() < 3) continue;
    const int64_t channels = wa->dims()[0];
    if (a->attrInt("group", 1) != channels || wa->dims()[1] != 1 || channels < 2) continue;  // depthwise, multiplier 1
    if (a->numInputs() > 2 && a->input(2) != nullptr && ownWeight(a->input(2)) == nullptr) continue;
    EqualizePair p;
    p.depthwise = a->name();
    p.depthwiseOutput = a->output(0)->name();
    p.rescaled.push_back(p.depthwiseOutput);
    ir::Node* next = onlyReader(a->output(0));
    if (next == nullptr || !next->domain().empty()) continue;
    if (next->opType() == "Relu" || next->opType() == "Clip") {
      if (next->opType() == "Clip") {
        auto c = reluClipMax(*next);
        if (!c) continue;
        p.clipMax = *c;
      }
      p.activation = next->opType();
      p.rescaled.push_back(next->output(0)->name());
      next = onlyReader(next->output(0));
      if (next == nullptr || !next->domain().empty()) continue;
    }
    if (next->opType() != "Conv" || next->attrInt("group", 1) != 1 || next->numInputs() < 2) continue;
    const ir::Tensor* wb = ownWeight(next->input(1));
    if (wb == nullptr || wb->rank() < 3 || wb->dims()[1] != channels) continue;
    bool pointwise = true;
    for (int64_t d = 2; d < wb->rank(); ++d) pointwise = pointwise && wb->dims()[static_cast<size_t>(d)] == 1;
    if (!pointwise || a->name().empty() || next->name().empty()) continue;
    p.pointwise = next->name();
    pairs.push_back(std::move(p));
  }
  return pairs;
}

Expected<EqualizeStats> equalize(ir::Model& model, quant::CalibrationProvider* provider) {
  EqualizeStats stats;
  std::vector<EqualizePair> pairs = equalizePairs(model);
  if (pairs.empty()) return stats;
  std::map<std::string, const ir::Node*> byName;
  for (const ir::Node* n : model.graph->nodes()) byName[n->name()] = n;
  // The depthwise outputs before a Clip: their per-channel maxima decide what may scale.
  std::map<std::string, ChannelMaxCollector> maxima;
  std::map<std::string, quant::TensorCollector*> collectors;
  for (const EqualizePair& p : pairs) {
    if (p.activation != "Clip") continue;
    const int64_t c = ir::constantOf(byName.at(p.depthwise)->input(1))->dims()[0];
    auto [it, fresh] = maxima.emplace(p.depthwiseOutput, ChannelMaxCollector(c));
    collectors[p.depthwiseOutput] = &it->second;
  }
  if (!collectors.empty()) {
    if (provider == nullptr) return invalidInput("equalization: a Clip between depthwise and pointwise Conv needs calibration data");
    WH_ASSIGN_OR_RETURN(int64_t samples, provider->collect(model, collectors));
    if (samples <= 0) return invalidInput("equalization: the calibration data has no samples");
  }
  ir::Graph& graph = *model.graph;
  for (const EqualizePair& p : pairs) {
    ir::Node* a = const_cast<ir::Node*>(byName.at(p.depthwise));
    ir::Node* b = const_cast<ir::Node*>(byName.at(p.pointwise));
    ir::Tensor wa = *ir::constantOf(a->input(1));
    ir::Tensor wb = *ir::constantOf(b->input(1));
    const int64_t channels = wa.dims()[0], perA = wa.numel() / channels, outs = wb.dims()[0];
    int64_t perB = 1;
    for (int64_t d = 2; d < wb.rank(); ++d) perB *= wb.dims()[static_cast<size_t>(d)];
    std::vector<double> s(static_cast<size_t>(channels), 1.0);
    int64_t scaled = 0;
    for (int64_t i = 0; i < channels; ++i) {
      double r1 = 0, r2 = 0;
      for (int64_t k = 0; k < perA; ++k) r1 = std::max(r1, static_cast<double>(std::abs(wa.data<float>()[i * perA + k])));
      for (int64_t o = 0; o < outs; ++o) {
        for (int64_t k = 0; k < perB; ++k) {
          r2 = std::max(r2, static_cast<double>(std::abs(wb.data<float>()[(o * channels + i) * perB + k])));
        }
      }
      if (!(r1 > 0) || !(r2 > 0)) continue;
      double si = std::sqrt(r1 / r2);
      if (p.activation == "Clip") {
        const double m = maxima.at(p.depthwiseOutput).max()[static_cast<size_t>(i)];
        if (m > p.clipMax) {
          ++stats.channelsPinned;  // the channel reaches the clip: the clip would move
          continue;
        }
        si = std::max(si, m / p.clipMax);
      }
      if (!std::isfinite(si) || si <= 0 || std::abs(si - 1.0) < 1e-6) continue;
      s[static_cast<size_t>(i)] = si;
      ++scaled;
    }
    if (scaled == 0) continue;
    for (int64_t i = 0; i < channels; ++i) {
      const float inv = static_cast<float>(1.0 / s[static_cast<size_t>(i)]);
      for (int64_t k = 0; k < perA; ++k) wa.mutableData<float>()[i * perA + k] *= inv;
    }
    for (int64_t o = 0; o < outs; ++o) {
      for (int64_t i = 0; i < channels; ++i) {
        for (int64_t k = 0; k < perB; ++k) wb.mutableData<float>()[(o * channels + i) * perB + k] *= static_cast<float>(s[static_cast<size_t>(i)]);
      }
    }
    // Copies: the tensors may share buffers with the originals (the caller's other models).
    auto replace = [&](ir::Node* n, size_t input, const ir::Tensor& t) {
      ir::Tensor copy(t.dtype(), t.dims());
      std::copy(t.data<float>(), t.data<float>() + t.numel(), copy.mutableData<float>());
      ir::Value* old = n->input(input);
      n->setInput(input, graph.addInitializer(graph.uniqueValueName(old->name() + "_equalized"), std::move(copy)));
      if (old->uses().empty() && old->producer() == nullptr && !old->isGraphOutput() && !old->isGraphInput()) graph.eraseValue(old);
    };
    replace(a, 1, wa);
    replace(b, 1, wb);
    if (a->numInputs() > 2 && a->input(2) != nullptr) {
      ir::Tensor ba = *ir::constantOf(a->input(2));
      ir::Tensor nb(ir::DataType::kFloat, ba.dims());
      for (int64_t i = 0; i < ba.numel(); ++i) {
        nb.mutableData<float>()[i] = static_cast<float>(ba.data<float>()[i] / s[static_cast<size_t>(i % channels)]);
      }
      replace(a, 2, nb);
    }
    ++stats.pairs;
    stats.channelsScaled += scaled;
    stats.rescaled.insert(stats.rescaled.end(), p.rescaled.begin(), p.rescaled.end());
  }
  return stats;
}

}  // namespace whittle::tune
