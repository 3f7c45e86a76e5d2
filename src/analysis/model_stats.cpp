// computeStats(): the model's interface, op histogram, parameters, MACs, sparsity,
// quantization form and file figures. The counting lives in parameters.cpp, weight_stats.cpp
// and macs.cpp; the shapes behind the MACs come from shape inference (ir/shape_inference.h).
#include "whittle/analysis/model_stats.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "analysis/stats_internal.h"
#include "whittle/common/file_util.h"
#include "whittle/ir/shape_inference.h"

namespace whittle::analysis {
namespace detail {

bool isDefaultDomain(const ir::Node& n) {
  return n.domain().empty() || n.domain() == "ai.onnx";
}

int64_t mulSaturated(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? kOverflow : r;
}

int64_t product(const Dims& dims, size_t from, size_t to) {
  auto first = dims.begin() + static_cast<std::ptrdiff_t>(std::min(from, dims.size()));
  auto last = dims.begin() + static_cast<std::ptrdiff_t>(std::min(to, dims.size()));
  return first < last ? std::accumulate(first, last, int64_t{1}, mulSaturated) : 1;
}

int64_t product(std::initializer_list<int64_t> factors) {
  return product(Dims(factors));
}

const ir::Tensor* constantTensor(const ir::Value* v) {
  if (v == nullptr) return nullptr;
  if (v->constant() != nullptr) return v->constant();
  const ir::Node* p = v->producer();
  if (p == nullptr || p->opType() != "Constant" || !isDefaultDomain(*p)) return nullptr;
  const ir::Attribute* a = p->findAttribute("value");
  return a != nullptr && a->kind == ir::Attribute::Kind::kTensor ? &a->t : nullptr;
}

std::string nodeLabel(const ir::Node& n) {
  return n.name().empty() ? n.describe() : n.name();
}

}  // namespace detail

namespace {

using detail::graphConstants;
using detail::isDefaultDomain;

FileStats fileStats(const ir::Graph& g, const std::string& path) {
  FileStats f;
  if (!path.empty()) f.sizeBytes = fileSize(path);
  std::set<std::tuple<std::string, int64_t, int64_t>> seen;
  for (const auto& [v, t] : graphConstants(g)) {
    const ir::ExternalDataRef* ref = t->externalSource();
    if (ref == nullptr || !seen.insert({ref->location, ref->offset, ref->length}).second) continue;
    f.externalDataBytes += ref->length;
    if (std::find(f.externalDataFiles.begin(), f.externalDataFiles.end(), ref->location) == f.externalDataFiles.end()) {
      f.externalDataFiles.push_back(ref->location);
    }
  }
  return f;
}

TensorInfo tensorInfo(const ir::Value& v) {
  return {v.name(), v.dtype(), v.type().shape};
}

}  // namespace

int64_t convOutputSize(int64_t input, int64_t kernel, int64_t stride, int64_t dilation, int64_t padBegin,
                       int64_t padEnd, std::string_view autoPad, bool ceilMode) {
  return ir::convOutputSize(input, kernel, stride, dilation, padBegin, padEnd, autoPad, ceilMode);
}

std::string qualifiedOpType(const ir::Node& node) {
  return isDefaultDomain(node) ? node.opType() : node.domain() + "." + node.opType();
}

std::string_view quantFormName(QuantForm form) {
  switch (form) {
    case QuantForm::kNone:
      return "none";
    case QuantForm::kQdq:
      return "qdq";
    case QuantForm::kQOperator:
      return "qoperator";
    case QuantForm::kDynamic:
      return "dynamic";
    case QuantForm::kWeightOnly:
      return "weight-only";
  }
  return "none";
}

std::string QuantStats::weightDtype() const {
  if (weightDtypes.empty()) return "";
  return weightDtypes.size() == 1 ? weightDtypes.begin()->first : "mixed";
}

std::string QuantStats::granularity() const {
  if (perChannelWeights == 0 && perTensorWeights == 0) return "";
  if (perTensorWeights == 0) return "per-channel";
  return perChannelWeights == 0 ? "per-tensor" : "mixed";
}

Expected<ModelStats> computeStats(const ir::Model& model, const std::string& path, const StatsOptions& options) {
  ModelStats s;
  const ir::Graph& g = *model.graph;
  s.path = path;
  s.irVersion = model.irVersion;
  s.producerName = model.producerName;
  s.producerVersion = model.producerVersion;
  for (const ir::OpsetImport& op : model.opsetImports) s.opsets[op.domain.empty() ? "ai.onnx" : op.domain] = op.version;
  for (const ir::Value* v : g.inputs()) {
    if (!v->isInitializer()) s.inputs.push_back(tensorInfo(*v));
  }
  for (const ir::Value* v : g.outputs()) s.outputs.push_back(tensorInfo(*v));

  std::map<std::string, int64_t> histogram;
  for (const ir::Node* n : g.nodes()) {
    ++histogram[qualifiedOpType(*n)];
    if (n->hasSubgraphs()) ++s.nodesWithSubgraphs;
  }
  s.nodeCount = static_cast<int64_t>(g.numNodes());
  s.opHistogram.assign(histogram.begin(), histogram.end());
  std::stable_sort(s.opHistogram.begin(), s.opHistogram.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });

  s.parameters = detail::countParameters(g);
  s.macs = detail::computeMacs(model, options.valueShapes ? &s.valueShapes : nullptr);
  s.sparsity = detail::computeSparsity(g);
  s.quantization = detail::computeQuantization(g);
  s.file = fileStats(g, path);
  return s;
}

}  // namespace whittle::analysis