#include "whittle/analysis/sparsity.h"

namespace whittle::analysis {

std::optional<PrunableWeight> prunableWeight(ir::Node& node) {
  if (!node.domain().empty() && node.domain() != "ai.onnx") return std::nullopt;
  const std::string& op = node.opType();
  if (op != "Conv" && op != "Gemm" && op != "MatMul") return std::nullopt;
  ir::Value* w = node.input(1);
  if (w == nullptr) return std::nullopt;
  const ir::Tensor* t = nullptr;
  if (w->isInitializer()) {
    if (w->isGraphInput()) return std::nullopt;
    t = w->constant();
  } else if (w->producer() != nullptr && w->producer()->opType() == "Constant") {
    const ir::Attribute* a = w->producer()->findAttribute("value");
    if (a != nullptr && a->kind == ir::Attribute::Kind::kTensor) t = &a->t;
  }
  if (t == nullptr || t->dtype() != ir::DataType::kFloat) return std::nullopt;
  if (op == "Conv" && t->rank() < 3) return std::nullopt;
  if (op != "Conv" && t->rank() != 2) return std::nullopt;
  return PrunableWeight{&node, w, t};
}

std::vector<PrunableWeight> prunableWeights(ir::Graph& graph) {
  std::vector<PrunableWeight> out;
  for (ir::Node* n : graph.nodes()) {
    if (auto w = prunableWeight(*n)) out.push_back(*w);
  }
  return out;
}

std::optional<std::vector<int64_t>> reductionGroups(const ir::Node& node, const std::vector<int64_t>& dims, int64_t m) {
  if (m <= 0 || dims.size() < 2) return std::nullopt;
  std::vector<int64_t> offsets;
  if (node.opType() == "Conv") {
    const int64_t outC = dims[0], inC = dims[1];
    int64_t kernel = 1;
    for (size_t i = 2; i < dims.size(); ++i) kernel *= dims[i];
    if (inC % m != 0) return std::nullopt;
    offsets.reserve(static_cast<size_t>(outC * inC * kernel));
    for (int64_t o = 0; o < outC; ++o) {
      for (int64_t s = 0; s < kernel; ++s) {
        for (int64_t c = 0; c < inC; ++c) offsets.push_back((o * inC + c) * kernel + s);
      }
    }
    return offsets;
  }
  const bool transposed = node.opType() == "Gemm" && node.attrInt("transB", 0) != 0;
  const int64_t k = transposed ? dims[1] : dims[0];
  const int64_t cols = transposed ? dims[0] : dims[1];
  if (k % m != 0) return std::nullopt;
  offsets.reserve(static_cast<size_t>(k * cols));
  for (int64_t c = 0; c < cols; ++c) {
    for (int64_t r = 0; r < k; ++r) offsets.push_back(transposed ? c * k + r : r * cols + c);
  }
  return offsets;
}

namespace {

const ir::Tensor* constantTensor(const ir::Value* v) {
  if (v == nullptr) return nullptr;
  if (v->isInitializer()) return v->isGraphInput() ? nullptr : v->constant();
  const ir::Node* p = v->producer();
  if (p != nullptr && p->opType() == "Constant") {
    const ir::Attribute* a = p->findAttribute("value");
    if (a != nullptr && a->kind == ir::Attribute::Kind::kTensor) return &a->t;
  }
  return nullptr;
}

// Which elements of a layer's weight are zero: float weights directly; integer weights behind
// DequantizeLinear (after quantize-int8) where they equal their zero point.
std::optional<std::vector<bool>> zeroMask(ir::Node& node, std::vector<int64_t>& dims, std::string& weightName) {
  if (auto pw = prunableWeight(node)) {
    dims = pw->tensor->dims();
    weightName = pw->value->name();
    std::vector<bool> mask(static_cast<size_t>(pw->tensor->numel()));
    const float* w = pw->tensor->data<float>();
    for (size_t i = 0; i < mask.size(); ++i) mask[i] = w[i] == 0.0f;
    return mask;
  }
  const std::string& op = node.opType();
  if ((op != "Conv" && op != "Gemm" && op != "MatMul") || node.input(1) == nullptr) return std::nullopt;
  const ir::Node* dq = node.input(1)->producer();
  if (dq == nullptr || dq->opType() != "DequantizeLinear") return std::nullopt;
  const ir::Tensor* q = constantTensor(dq->input(0));
  if (q == nullptr || (q->dtype() != ir::DataType::kInt8 && q->dtype() != ir::DataType::kUint8)) return std::nullopt;
  if ((op == "Conv" && q->rank() < 3) || (op != "Conv" && q->rank() != 2)) return std::nullopt;
  const ir::Tensor* zp = constantTensor(dq->input(2));
  dims = q->dims();
  weightName = dq->input(0)->name();
  const int64_t rank = q->rank();
  int64_t axis = dq->attrInt("axis", 1);
  if (axis < 0) axis += rank;
  int64_t inner = 1;
  for (int64_t i = axis + 1; i < rank; ++i) inner *= dims[static_cast<size_t>(i)];
  const int64_t zpCount = zp != nullptr ? zp->numel() : 1;
  std::vector<bool> mask(static_cast<size_t>(q->numel()));
  for (int64_t i = 0; i < q->numel(); ++i) {
    int64_t c = zpCount > 1 ? (i / inner) % dims[static_cast<size_t>(axis)] : 0;
    double z = zp != nullptr ? zp->valueAsDouble(c) : 0.0;
    mask[static_cast<size_t>(i)] = q->valueAsDouble(i) == z;
  }
  return mask;
}

}  // namespace

std::vector<NmLayer> nmStructure(ir::Graph& graph, int64_t n, int64_t m) {
  std::vector<NmLayer> out;
  for (ir::Node* node : graph.nodes()) {
    if (!node->domain().empty() && node->domain() != "ai.onnx") continue;
    std::vector<int64_t> dims;
    std::string weightName;
    auto zero = zeroMask(*node, dims, weightName);
    if (!zero) continue;
    NmLayer layer;
    layer.node = node->name().empty() ? node->describe() : node->name();
    layer.opType = node->opType();
    layer.weight = weightName;
    layer.elements = static_cast<int64_t>(zero->size());
    for (bool z : *zero) layer.zeros += z ? 1 : 0;
    auto groups = reductionGroups(*node, dims, m);
    if (groups) {
      layer.applicable = true;
      layer.groups = static_cast<int64_t>(groups->size()) / m;
      for (int64_t g = 0; g < layer.groups; ++g) {
        int64_t nonzero = 0;
        for (int64_t j = 0; j < m; ++j) nonzero += (*zero)[static_cast<size_t>((*groups)[static_cast<size_t>(g * m + j)])] ? 0 : 1;
        layer.compliantGroups += nonzero <= n ? 1 : 0;
      }
    }
    out.push_back(std::move(layer));
  }
  return out;
}

}  // namespace whittle::analysis
