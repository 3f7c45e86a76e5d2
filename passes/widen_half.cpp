// widen-half: a float16 or bfloat16 model computed in float32, its interface unchanged.
//
// Before: yh = Conv(xh, Wh, bh)                    every value float16 (or bfloat16)
// After:  x  = Cast(xh, to=float)                  at each half graph input
//         y  = Conv(x, float(Wh), float(bh))       weights widened once, exactly
//         yh = Cast(y, to=float16)                 at each half graph output, under its name
// Every other value of a half type becomes float32, a Cast to a half type becomes a Cast to
// float32 (but one that writes a graph output, which is the interface), and the half tensors of
// Constant and ConstantOfShape become float32. A widened model has nothing half inside, so a
// second run changes nothing. float32 holds
// every float16 and bfloat16 value exactly, so the widened model computes what the half one
// does at a higher precision (its outputs move by the half type's rounding, not more).
//
// What it is for: int8 quantizes float32 compute, so quantize-int8 widens a model whose
// Conv/MatMul/Gemm compute in a half type first (the int8 model keeps the half interface).
// Requires: no subgraphs (If/Loop/Scan bodies would need their captured types rewritten) and
// no node whose `dtype` attribute asks for a half output (EyeLike, Random*): such a model is
// left as it is, with a note.
#include "widen_half.h"

#include "pass_factories.h"
#include "whittle/ir/shape_inference.h"

namespace whittle::passes {
namespace {

using ir::DataType;

bool isHalf(DataType t) { return t == DataType::kFloat16 || t == DataType::kBFloat16; }

/// `t` widened to float32 when it is half, else unchanged.
ir::Tensor widened(const ir::Tensor& t) {
  if (!isHalf(t.dtype())) return t;
  ir::Tensor out(DataType::kFloat, t.dims());
  const auto* src = t.data<uint16_t>();
  float* dst = out.mutableData<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    dst[i] = t.dtype() == DataType::kFloat16 ? ir::halfToFloat(src[i]) : ir::bfloat16ToFloat(src[i]);
  }
  return out;
}

ir::Attribute castTo(DataType t) { return ir::Attribute::makeInt("to", static_cast<int64_t>(t)); }

bool castsToHalf(const ir::Node* n) {
  if (n == nullptr || !n->domain().empty() || n->opType() != "Cast") return false;
  const ir::Attribute* to = n->findAttribute("to");
  return to != nullptr && to->kind == ir::Attribute::Kind::kInt && isHalf(static_cast<DataType>(to->i));
}

/// A graph output that a Cast to its half type writes: the interface, kept as it is.
bool halfInterfaceCast(const ir::Value* v) { return v->isGraphOutput() && castsToHalf(v->producer()); }

/// The half tensor a Constant or ConstantOfShape carries, else nullptr.
const ir::Tensor* halfValueAttribute(const ir::Node* n) {
  if (!n->domain().empty() || (n->opType() != "Constant" && n->opType() != "ConstantOfShape")) return nullptr;
  const ir::Attribute* value = n->findAttribute("value");
  return value != nullptr && value->kind == ir::Attribute::Kind::kTensor && isHalf(value->t.dtype()) ? &value->t
                                                                                                    : nullptr;
}

/// Whether anything inside the graph (not its inputs, nor its outputs as Casts to half write
/// them) is half: a model widened once has nothing left, so a second run changes nothing.
bool halfInside(const ir::Graph& graph) {
  for (const ir::Value* v : graph.values()) {
    if (isHalf(v->dtype()) && (v->isInitializer() || (v->producer() != nullptr && !halfInterfaceCast(v)))) return true;
  }
  for (const ir::Node* n : graph.nodes()) {
    if (halfValueAttribute(n) != nullptr) return true;
    if (castsToHalf(n) && !n->output(0)->isGraphOutput()) return true;
  }
  return false;
}

class WidenHalf final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override { return widenHalfToFloat(model, ctx).status(); }
};

}  // namespace

int64_t halfWeightOps(const ir::Graph& graph) {
  int64_t half = 0;
  for (const ir::Node* n : graph.nodes()) {
    const bool weightOp = n->domain().empty() && (n->opType() == "Conv" || n->opType() == "ConvTranspose" ||
                                                  n->opType() == "MatMul" || n->opType() == "Gemm");
    if (!weightOp) continue;
    ir::DataType t = n->numOutputs() > 0 && n->output(0) != nullptr ? n->output(0)->dtype() : ir::DataType::kUndefined;
    for (size_t i = 0; i < n->numInputs() && i < 2 && t == ir::DataType::kUndefined; ++i) {
      if (n->input(i) != nullptr) t = n->input(i)->dtype();
    }
    if (t == ir::DataType::kFloat16 || t == ir::DataType::kBFloat16) ++half;
  }
  return half;
}

Expected<int64_t> widenHalfToFloat(ir::Model& model, PassContext& ctx) {
  ir::Graph& graph = *model.graph;
  if (!halfInside(graph)) return int64_t{0};
  for (const ir::Node* n : graph.nodes()) {
    if (n->hasSubgraphs()) {
      ctx.note("widen-half: left the model as it is: node '" + n->name() + "' (" + n->opType() +
               ") holds subgraphs, whose types this pass does not rewrite");
      return int64_t{0};
    }
    const ir::Attribute* dtype = n->findAttribute("dtype");
    if (dtype != nullptr && dtype->kind == ir::Attribute::Kind::kInt && isHalf(static_cast<DataType>(dtype->i))) {
      ctx.note("widen-half: left the model as it is: node '" + n->name() + "' (" + n->opType() +
               ") makes a half output by its dtype attribute");
      return int64_t{0};
    }
  }
  int64_t widenedValues = 0;
  // Weights, and the half tensors that nodes carry.
  for (ir::Value* v : graph.initializers()) {
    if (isHalf(v->dtype()) && v->constant() != nullptr) {
      v->setConstant(widened(*v->constant()));
      v->mutableType().dtype = DataType::kFloat;
      ++widenedValues;
    }
  }
  for (ir::Node* n : graph.nodes()) {
    if (const ir::Tensor* value = halfValueAttribute(n)) {
      n->setAttribute(ir::Attribute::makeTensor("value", widened(*value)));
    }
    if (castsToHalf(n) && !halfInterfaceCast(n->output(0))) n->setAttribute(castTo(DataType::kFloat));
  }
  // Half graph inputs: a Cast to float32 in front, read by everything that read the input.
  std::vector<ir::Node*> nodes = graph.nodes();
  ir::Node* first = nodes.empty() ? nullptr : nodes.front();
  for (ir::Value* in : std::vector<ir::Value*>(graph.inputs())) {
    if (!isHalf(in->dtype()) || in->isInitializer() || in->isGraphOutput()) continue;
    ir::Value* wide = graph.addValue(in->name() + "_float");
    wide->mutableType() = in->type();
    wide->mutableType().dtype = DataType::kFloat;
    graph.replaceAllUsesWith(in, wide);
    ir::Node* cast = graph.addNodeWithOutputs("Cast", {in}, {wide}, graph.uniqueNodeName(in->name() + "_to_float"), "", first);
    cast->setAttribute(castTo(DataType::kFloat));
    ++widenedValues;
  }
  // Every value a node makes in a half type is float32 now.
  std::vector<std::pair<size_t, DataType>> halfOutputs;
  for (size_t i = 0; i < graph.outputs().size(); ++i) {
    const ir::Value* out = graph.outputs()[i];
    if (isHalf(out->dtype()) && !out->isGraphInput() && !out->isInitializer() && !halfInterfaceCast(out)) {
      halfOutputs.emplace_back(i, out->dtype());
    }
  }
  for (ir::Value* v : graph.values()) {
    if (v->producer() != nullptr && isHalf(v->dtype()) && !halfInterfaceCast(v)) {
      v->mutableType().dtype = DataType::kFloat;
      ++widenedValues;
    }
  }
  // Half graph outputs: the float32 value gets a new name, a Cast back writes the output's name.
  for (const auto& [i, half] : halfOutputs) {
    ir::Value* wide = graph.outputs()[i];
    const std::string name = wide->name();
    WH_RETURN_IF_ERROR(graph.renameValue(wide, graph.uniqueValueName(name + "_float")));
    ir::Node* cast = graph.addNode("Cast", {wide}, {name + "_half"}, graph.uniqueNodeName(name + "_to_half"));
    cast->setAttribute(castTo(half));
    ir::Value* narrow = cast->output(0);
    narrow->mutableType() = wide->type();
    narrow->mutableType().dtype = half;
    graph.setOutput(i, narrow);
    WH_RETURN_IF_ERROR(graph.renameValue(narrow, name));
  }
  if (widenedValues > 0) {
    ctx.stats().rewrites += widenedValues;
    ctx.note("widen-half: computed in float32 (" + std::to_string(widenedValues) +
             " values widened); the inputs and outputs keep their half types");
  }
  WH_RETURN_IF_ERROR(graph.topologicalSort());
  return widenedValues;
}

Expected<bool> widenHalfForQuantizing(ir::Model& model, PassContext& ctx, std::string_view pass) {
  if (halfWeightOps(*model.graph) == 0) return false;
  WH_ASSIGN_OR_RETURN(int64_t widenedValues, widenHalfToFloat(model, ctx));
  if (widenedValues == 0) return false;
  ctx.note(std::string(pass) + ": the model computes in float16/bfloat16; widened it to float32 to quantize it");
  (void)ir::inferShapes(model);
  return true;
}

Expected<std::unique_ptr<Pass>> makeWidenHalf(const NoOptions&) {
  return std::unique_ptr<Pass>(std::make_unique<WidenHalf>());
}

}  // namespace whittle::passes
