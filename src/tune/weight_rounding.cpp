// Adaptive rounding of depthwise Conv weights by their output error (weight_rounding.h).
#include "tune/weight_rounding.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "tune/bias_correction.h"
#include "whittle/ir/match.h"

namespace whittle::tune {
namespace {

constexpr int64_t kExhaustive = 16;  // free choices up to which every combination is tried

/// The weight's quadratic form d^T H d.
double quadratic(const std::vector<double>& d, const double* h) {
  const size_t k = d.size();
  double f = 0;
  for (size_t a = 0; a < k; ++a) {
    double row = 0;
    for (size_t b = 0; b < k; ++b) row += h[a * k + b] * d[b];
    f += d[a] * row;
  }
  return f;
}

/// The pads of one spatial axis: explicit, or SAME_* from the input size.
std::pair<int64_t, int64_t> padsOf(const RoundingSite& s, bool rows, int64_t in) {
  const int64_t k = rows ? s.kh : s.kw, st = rows ? s.sh : s.sw, dil = rows ? s.dh : s.dw;
  if (s.autoPad == "SAME_UPPER" || s.autoPad == "SAME_LOWER") {
    const int64_t out = (in + st - 1) / st;
    const int64_t total = std::max<int64_t>((out - 1) * st + (k - 1) * dil + 1 - in, 0);
    const int64_t small = total / 2;
    return s.autoPad == "SAME_UPPER" ? std::pair{small, total - small} : std::pair{total - small, small};
  }
  return rows ? std::pair{s.padTop, s.padBottom} : std::pair{s.padLeft, s.padRight};
}

}  // namespace

std::vector<RoundingSite> roundingSites(const ir::Model& quantized, const ir::Model& floatModel) {
  std::unordered_map<std::string, const ir::Node*> twins;
  for (const ir::Node* n : floatModel.graph->nodes()) {
    if (!n->name().empty()) twins[n->name()] = n;
  }
  std::vector<RoundingSite> sites;
  for (const ir::Node* n : quantized.graph->nodes()) {
    if (n->opType() != "Conv" || !n->domain().empty() || n->numInputs() < 2) continue;
    auto twin = twins.find(n->name());
    if (twin == twins.end() || twin->second->opType() != "Conv" || twin->second->input(0) == nullptr) continue;
    const ir::Node& f = *twin->second;
    const ir::Tensor* w = ir::constantOf(f.input(1));
    if (w == nullptr || w->dtype() != ir::DataType::kFloat || w->rank() != 4 || w->dims()[1] != 1) continue;
    const int64_t groups = f.attrInt("group", 1);
    if (groups <= 1 || w->dims()[0] % groups != 0) continue;
    const ir::Node* dq = constantDq(n->input(1));
    if (dq == nullptr || ir::constantOf(dq->input(0))->dtype() != ir::DataType::kInt8 ||
        ir::constantOf(dq->input(0))->numel() != w->numel()) {
      continue;
    }
    RoundingSite s;
    s.node = n->name();
    s.floatInput = f.input(0)->name();
    s.channels = groups;
    s.kh = w->dims()[2];
    s.kw = w->dims()[3];
    const auto strides = f.attrInts("strides", {1, 1});
    const auto dilations = f.attrInts("dilations", {1, 1});
    const auto pads = f.attrInts("pads", {0, 0, 0, 0});
    if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4) continue;
    s.sh = strides[0];
    s.sw = strides[1];
    s.dh = dilations[0];
    s.dw = dilations[1];
    s.padTop = pads[0];
    s.padLeft = pads[1];
    s.padBottom = pads[2];
    s.padRight = pads[3];
    s.autoPad = f.attrString("auto_pad", "NOTSET");
    if (s.autoPad != "NOTSET" && s.autoPad != "VALID" && s.autoPad != "SAME_UPPER" && s.autoPad != "SAME_LOWER") continue;
    if (s.autoPad == "VALID") s.padTop = s.padLeft = s.padBottom = s.padRight = 0;
    sites.push_back(s);
  }
  return sites;
}

PatchMomentCollector::PatchMomentCollector(const RoundingSite& site, int64_t maxSamples)
    : site_(site), maxSamples_(maxSamples),
      sum_(static_cast<size_t>(site.channels * site.taps() * site.taps()), 0.0) {}

Status PatchMomentCollector::collect(const std::string& name, const ir::Tensor& value, int64_t samples) {
  if (value.rank() != 4 || value.dims()[1] != site_.channels || value.dtype() != ir::DataType::kFloat) {
    return invalidInput("weight rounding: tensor '" + name + "' is not [N, " + std::to_string(site_.channels) +
                        ", H, W] float32 (input of '" + site_.node + "')");
  }
  const int64_t rows = std::min({samples, value.dims()[0], maxSamples_ - samples_});
  if (rows <= 0) return Status::ok();
  const int64_t height = value.dims()[2], width = value.dims()[3];
  const auto [pt, pb] = padsOf(site_, true, height);
  const auto [pl, pr] = padsOf(site_, false, width);
  const int64_t outH = (height + pt + pb - ((site_.kh - 1) * site_.dh + 1)) / site_.sh + 1;
  const int64_t outW = (width + pl + pr - ((site_.kw - 1) * site_.dw + 1)) / site_.sw + 1;
  if (outH <= 0 || outW <= 0) return Status::ok();
  const int64_t k = site_.taps();
  std::vector<float> patch(static_cast<size_t>(k));
  std::vector<double> acc(static_cast<size_t>(k * k));
  const float* x = value.data<float>();
  for (int64_t c = 0; c < site_.channels; ++c) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const float* plane = x + (r * site_.channels + c) * height * width;
      for (int64_t oy = 0; oy < outH; ++oy) {
        for (int64_t ox = 0; ox < outW; ++ox) {
          for (int64_t i = 0; i < site_.kh; ++i) {
            const int64_t y = oy * site_.sh - pt + i * site_.dh;
            for (int64_t j = 0; j < site_.kw; ++j) {
              const int64_t xx = ox * site_.sw - pl + j * site_.dw;
              patch[static_cast<size_t>(i * site_.kw + j)] =
                  y >= 0 && y < height && xx >= 0 && xx < width ? plane[y * width + xx] : 0.0f;
            }
          }
          for (int64_t a = 0; a < k; ++a) {
            const double pa = patch[static_cast<size_t>(a)];
            if (pa == 0) continue;
            for (int64_t b = a; b < k; ++b) acc[static_cast<size_t>(a * k + b)] += pa * patch[static_cast<size_t>(b)];
          }
        }
      }
    }
    double* dst = sum_.data() + c * k * k;
    for (int64_t a = 0; a < k; ++a) {
      for (int64_t b = a; b < k; ++b) {
        dst[a * k + b] += acc[static_cast<size_t>(a * k + b)];
        if (b != a) dst[b * k + a] += acc[static_cast<size_t>(a * k + b)];
      }
    }
  }
  samples_ += rows;
  positions_ += rows * outH * outW;
  return Status::ok();
}

std::vector<double> PatchMomentCollector::moments() const {
  std::vector<double> m = sum_;
  if (positions_ > 0) {
    for (double& v : m) v /= static_cast<double>(positions_);
  }
  return m;
}

Expected<std::map<std::string, PatchMoments>> measurePatchMoments(const ir::Model& floatModel,
                                                                  const std::vector<RoundingSite>& sites,
                                                                  quant::CalibrationProvider& provider,
                                                                  int64_t maxSamples) {
  // One collector per (input tensor, geometry): two layers reading one tensor with the same
  // kernel geometry share it.
  std::map<std::string, PatchMomentCollector> collectors;
  std::map<std::string, quant::TensorCollector*> byTensor;
  std::map<std::string, PatchMoments> out;
  for (const RoundingSite& s : sites) {
    if (collectors.contains(s.floatInput)) continue;
    auto [it, fresh] = collectors.emplace(s.floatInput, PatchMomentCollector(s, maxSamples));
    byTensor[s.floatInput] = &it->second;
  }
  if (byTensor.empty()) return out;
  WH_ASSIGN_OR_RETURN(int64_t samples, provider.collect(floatModel, byTensor));
  if (samples <= 0) return invalidInput("weight rounding: the calibration data has no samples");
  for (const RoundingSite& s : sites) {
    const PatchMomentCollector& c = collectors.at(s.floatInput);
    const RoundingSite& measured = c.site();
    // A second reader with another geometry is left at nearest rounding.
    if (measured.node != s.node && (measured.kh != s.kh || measured.kw != s.kw || measured.sh != s.sh ||
                                    measured.sw != s.sw || measured.dh != s.dh || measured.dw != s.dw ||
                                    measured.padTop != s.padTop || measured.padLeft != s.padLeft ||
                                    measured.autoPad != s.autoPad)) {
      continue;
    }
    out.emplace(s.node, PatchMoments{s, c.moments()});
  }
  return out;
}

std::vector<int32_t> roundChannel(const float* w, int64_t k, float scale, int32_t lo, int32_t hi, const double* h) {
  std::vector<int32_t> q(static_cast<size_t>(k));
  std::vector<double> d(static_cast<size_t>(k));
  std::vector<int64_t> free;  // taps with two choices; q starts at the lower one for them
  for (int64_t i = 0; i < k; ++i) {
    const double u = static_cast<double>(w[i]) / scale;
    const double nearest = std::clamp(std::nearbyint(u), static_cast<double>(lo), static_cast<double>(hi));
    const double down = std::clamp(std::floor(u), static_cast<double>(lo), static_cast<double>(hi));
    const double up = std::clamp(std::ceil(u), static_cast<double>(lo), static_cast<double>(hi));
    q[static_cast<size_t>(i)] = static_cast<int32_t>(nearest);
    if (up != down) free.push_back(i);
  }
  for (int64_t i = 0; i < k; ++i) d[static_cast<size_t>(i)] = static_cast<double>(scale) * q[static_cast<size_t>(i)] - w[i];
  if (free.empty() || scale <= 0) return q;
  const double step = scale;
  // g = H d, f = d^T H d; moving tap i by t changes f by 2 t g_i + t^2 H_ii.
  std::vector<double> g(static_cast<size_t>(k), 0.0);
  auto refresh = [&] {
    for (int64_t a = 0; a < k; ++a) {
      double row = 0;
      for (int64_t b = 0; b < k; ++b) row += h[a * k + b] * d[static_cast<size_t>(b)];
      g[static_cast<size_t>(a)] = row;
    }
  };
  auto move = [&](int64_t i, int32_t t) {
    const double dt = step * t;
    q[static_cast<size_t>(i)] += t;
    d[static_cast<size_t>(i)] += dt;
    for (int64_t a = 0; a < k; ++a) g[static_cast<size_t>(a)] += h[a * k + i] * dt;
  };
  refresh();
  double f = quadratic(d, h);
  if (static_cast<int64_t>(free.size()) <= kExhaustive) {
    // Start every free tap at floor, then walk the Gray code: one tap flips per step.
    for (int64_t i : free) {
      const int32_t down = static_cast<int32_t>(std::floor(static_cast<double>(w[i]) / scale));
      const int32_t t = down - q[static_cast<size_t>(i)];
      if (t != 0) {
        f += 2 * step * t * g[static_cast<size_t>(i)] + step * step * t * t * h[i * k + i];
        move(i, t);
      }
    }
    std::vector<int32_t> best = q;
    double bestF = f;
    const uint32_t count = uint32_t{1} << free.size();
    for (uint32_t code = 1; code < count; ++code) {
      const int bit = __builtin_ctz(code);
      const int64_t i = free[static_cast<size_t>(bit)];
      const uint32_t gray = code ^ (code >> 1);
      const int32_t t = (gray >> bit) & 1u ? 1 : -1;
      f += 2 * step * t * g[static_cast<size_t>(i)] + step * step * h[i * k + i];
      move(i, t);
      if (f < bestF - 1e-15 * std::abs(bestF)) {
        bestF = f;
        best = q;
      }
    }
    return best;
  }
  // Many free taps: coordinate descent from nearest, a tap at a time, while f falls.
  for (int pass = 0; pass < 8; ++pass) {
    bool moved = false;
    for (int64_t i : free) {
      const int32_t down = static_cast<int32_t>(std::floor(static_cast<double>(w[i]) / scale));
      const int32_t t = q[static_cast<size_t>(i)] == down ? 1 : -1;
      const double change = 2 * step * t * g[static_cast<size_t>(i)] + step * step * h[i * k + i];
      if (change < 0) {
        f += change;
        move(i, t);
        moved = true;
      }
    }
    if (!moved) break;
  }
  return q;
}

Expected<RoundingStats> roundWeights(ir::Model& quantized, const ir::Model& floatModel,
                                     const std::map<std::string, PatchMoments>& moments) {
  RoundingStats stats;
  if (moments.empty()) return stats;
  std::unordered_map<std::string, const ir::Node*> twins;
  for (const ir::Node* n : floatModel.graph->nodes()) {
    if (moments.contains(n->name())) twins[n->name()] = n;
  }
  ir::Graph& graph = *quantized.graph;
  std::vector<ir::Value*> replaced;
  for (ir::Node* n : graph.nodes()) {
    auto m = moments.find(n->name());
    if (m == moments.end() || !twins.contains(n->name()) || n->opType() != "Conv" || n->numInputs() < 2) continue;
    const ir::Node* dq = constantDq(n->input(1));
    if (dq == nullptr) continue;
    const ir::Tensor& q = *ir::constantOf(dq->input(0));
    const ir::Tensor& s = *ir::constantOf(dq->input(1));
    const ir::Tensor& w = *ir::constantOf(twins.at(n->name())->input(1));
    const RoundingSite& site = m->second.site;
    const int64_t k = site.taps(), outs = w.dims()[0];
    if (q.dtype() != ir::DataType::kInt8 || q.numel() != w.numel() || outs * k != w.numel() ||
        (s.numel() != 1 && s.numel() != outs) || m->second.moments.size() != static_cast<size_t>(site.channels * k * k)) {
      continue;
    }
    // A zero point other than 0 (not what quantize-int8 writes for weights) is left alone.
    const ir::Tensor* zp = dq->numInputs() > 2 && dq->input(2) != nullptr ? ir::constantOf(dq->input(2)) : nullptr;
    if (zp != nullptr && (zp->dtype() != ir::DataType::kInt8 ||
                          std::any_of(zp->data<int8_t>(), zp->data<int8_t>() + zp->numel(), [](int8_t z) { return z != 0; }))) {
      continue;
    }
    // The integer range of the weights as written (reduce-range stays within [-63, 63]).
    int32_t top = 0;
    for (int64_t i = 0; i < q.numel(); ++i) top = std::max(top, std::abs(static_cast<int32_t>(q.data<int8_t>()[i])));
    top = top <= 63 ? 63 : 127;
    ir::Tensor t(ir::DataType::kInt8, q.dims());
    const int64_t perGroup = outs / site.channels;
    for (int64_t o = 0; o < outs; ++o) {
      const float scale = s.data<float>()[s.numel() > 1 ? o : 0];
      const double* h = m->second.moments.data() + (o / perGroup) * k * k;
      const float* wf = w.data<float>() + o * k;
      std::vector<int32_t> rounded = roundChannel(wf, k, scale, -top, top, h);
      std::vector<double> before(static_cast<size_t>(k)), after(static_cast<size_t>(k));
      for (int64_t i = 0; i < k; ++i) {
        const int32_t old = q.data<int8_t>()[o * k + i];
        before[static_cast<size_t>(i)] = static_cast<double>(scale) * old - wf[i];
        after[static_cast<size_t>(i)] = static_cast<double>(scale) * rounded[static_cast<size_t>(i)] - wf[i];
        stats.weightsChanged += rounded[static_cast<size_t>(i)] != old;
        t.mutableData<int8_t>()[o * k + i] = static_cast<int8_t>(rounded[static_cast<size_t>(i)]);
      }
      stats.errorBefore += quadratic(before, h);
      stats.errorAfter += quadratic(after, h);
    }
    stats.channels += outs;
    ++stats.layers;
    replaced.push_back(dq->input(0));
    ir::Value* qv = graph.addInitializer(graph.uniqueValueName(dq->input(0)->name() + "_rounded"), std::move(t));
    const_cast<ir::Node*>(dq)->setInput(0, qv);
  }
  std::vector<ir::Value*> unused;
  for (ir::Value* v : replaced) {
    if (v->uses().empty() && v->producer() == nullptr && !v->isGraphOutput() && !v->isGraphInput()) unused.push_back(v);
  }
  graph.eraseValues(unused);
  return stats;
}

}  // namespace whittle::tune
