// convert-fp16 / convert-bf16: weights and computation in a 16-bit float type.
//
// Before: y = Conv(x, W, b)                      x, W, b, y float32
// After:  xh = Cast(x, to=half)                  (only at the model's inputs, keep-io-types)
//         yh = Conv(xh, half(W), half(b))        weights converted once, at rest
//         y  = Cast(yh, to=float)                (only at the model's outputs, keep-io-types)
//   half(w) = round-to-nearest-even(w), clamped to the half type's largest finite value
//   (+-65504 for float16); every clamped weight is counted in "weights-clamped".
// Nodes of a blocked op type (block-ops), named in block-nodes, reductions over more than
// long-reduction elements, and the op types of kHalfFixedFloatOps (passes/half_ops.h: fixed
// float types, control flow, sequences, RNNs) stay float32: their float inputs are cast back
// to float32 and their outputs cast to half for half users.
//
// Subgraphs (If/Loop/Scan bodies, at any depth) are kept float32 as they are, never rewritten:
// the node that holds them stays float32 (Casts at its explicit inputs and outputs), and so
// does every value the bodies read from the enclosing graph by name: its producer is not
// converted, and a model input a body reads stays float32 even with keep-io-types=false.
// Converting bodies instead would mean rewriting serialized graphs and every scope's value
// types consistently; keeping them float32 costs one float node per captured value and always
// gives a model whose subgraph types match. The outputs of a control-flow node take the element
// types its subgraph declares (onnx_io::subgraphOutputTypes), so half consumers get a Cast. Casts are inserted only where a type changes, one per
// value, and a Cast of a Cast between float types collapses (float->half->float cancels).
// An existing Cast to float32 inside the converted region casts to the half type instead.
// Every value's recorded type follows.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "half_ops.h"
#include "whittle/ir/match.h"
#include "pass_factories.h"
#include "whittle/eval/metrics.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/quant/calibration.h"
#include "whittle/runtime/session.h"
#include "whittle/ir/shape_inference.h"
#include "subgraph_note.h"

namespace whittle::passes {
namespace {

using ir::DataType;

// From ConvertHalfOptions (passes/pass_options.h, where the defaults are).
struct HalfConfig {
  DataType half;
  bool keepIoTypes;
  std::set<std::string> blockOps;
  std::set<std::string> blockNodes;
  int64_t longReduction;
  /// > 0: automatic mixed precision (see ConvertHalf::chooseFloatNodes).
  double tolerance;
  int64_t toleranceSamples;
};

bool isFloatLike(DataType t) {
  return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16 || t == DataType::kDouble;
}

// A ScatterElements or ScatterND that combines updates with what is there (reduction add, mul,
// max, min): ONNX Runtime's CPU provider has no float16 kernel for most of them ("MLFloat16 data
// type is not supported with ScatterElements opset 16 when reduction is 'add'": MiniMol's
// message passing, minimol-v1 in the corpus), and a sum of many updates in float16 loses them.
bool reducingScatter(const ir::Node& n) {
  if (n.opType() != "ScatterElements" && n.opType() != "ScatterND") return false;
  return n.attrString("reduction", "none") != "none";
}

// Ops that always stay float32 (kHalfFixedFloatOps, reducing scatters), and every node that
// holds a subgraph.
bool alwaysFloat(const ir::Node& n) {
  static const std::set<std::string_view, std::less<>> kOps(kHalfFixedFloatOps.begin(), kHalfFixedFloatOps.end());
  return kOps.contains(n.opType()) || reducingScatter(n) || n.hasSubgraphs();
}

// Input slots that must be float32 whatever the node computes in.
bool floatOnlySlot(const ir::Node& n, size_t slot) {
  return (n.opType() == "Resize" && slot == 2) || (n.opType() == "Upsample" && slot == 1);
}

// Input slots that accept any type (the node reads only the shape, or converts).
bool anyTypeSlot(const ir::Node& n, size_t slot) {
  const std::string& op = n.opType();
  return slot == 0 && (op == "Cast" || op == "Shape" || op == "Size");
}

int64_t reducedElements(const ir::Node& n) {
  const ir::Value* x = n.input(0);
  if (x == nullptr) return -1;
  auto dims = x->type().staticDims();
  if (!dims) return -1;
  std::vector<int64_t> axes = n.attrInts("axes");
  if (axes.empty() && n.input(1) != nullptr) {
    const ir::Tensor* a = constantOf(n.input(1));
    if (a == nullptr) return -1;
    for (int64_t i = 0; i < a->numel(); ++i) axes.push_back(static_cast<int64_t>(a->valueAsDouble(i)));
  }
  int64_t rank = static_cast<int64_t>(dims->size());
  int64_t count = 1;
  if (axes.empty()) {
    if (n.attrInt("noop_with_empty_axes", 0) != 0) return 1;
    for (int64_t d : *dims) count *= d;
    return count;
  }
  for (int64_t a : axes) {
    if (a < 0) a += rank;
    if (a < 0 || a >= rank) return -1;
    count *= (*dims)[static_cast<size_t>(a)];
  }
  return count;
}

bool isReduction(const std::string& op) { return op.rfind("Reduce", 0) == 0 && op != "ReduceMax" && op != "ReduceMin"; }

// Fills element types that the model and shape inference left unknown, by simple rules, so
// that every float value is seen.
void fillElementTypes(ir::Graph& graph) {
  static const std::set<std::string, std::less<>> kInt64Out = {"Shape", "Size", "ArgMax", "ArgMin", "NonZero",
                                                               "NonMaxSuppression"};
  static const std::set<std::string, std::less<>> kBoolOut = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                                                              "Not", "And", "Or", "Xor", "IsNaN", "IsInf"};
  for (ir::Node* n : graph.nodes()) {
    if (n->hasSubgraphs()) {
      // Not from the inputs (an If's first input is its bool condition): from the subgraph.
      const std::vector<DataType> declared = onnx_io::subgraphOutputTypes(*n);
      for (size_t o = 0; o < n->numOutputs() && o < declared.size(); ++o) {
        ir::Value* out = n->output(o);
        if (out != nullptr && out->dtype() == DataType::kUndefined) out->mutableType().dtype = declared[o];
      }
      continue;
    }
    for (size_t o = 0; o < n->numOutputs(); ++o) {
      ir::Value* out = n->output(o);
      if (out == nullptr || out->dtype() != DataType::kUndefined) continue;
      DataType t = DataType::kUndefined;
      const std::string& op = n->opType();
      if (op == "Cast") {
        t = static_cast<DataType>(n->attrInt("to", 0));
      } else if (op == "Constant") {
        const ir::Attribute* a = n->findAttribute("value");
        if (a != nullptr && a->kind == ir::Attribute::Kind::kTensor) t = a->t.dtype();
        if (n->hasAttribute("value_float") || n->hasAttribute("value_floats")) t = DataType::kFloat;
        if (n->hasAttribute("value_int") || n->hasAttribute("value_ints")) t = DataType::kInt64;
      } else if (op == "ConstantOfShape") {
        const ir::Attribute* a = n->findAttribute("value");
        t = a != nullptr && a->kind == ir::Attribute::Kind::kTensor ? a->t.dtype() : DataType::kFloat;
      } else if (kInt64Out.contains(op) || (op == "TopK" && o == 1) || (op == "MaxPool" && o == 1)) {
        t = DataType::kInt64;
      } else if (kBoolOut.contains(op)) {
        t = DataType::kBool;
      } else if (op == "Where" && n->input(1) != nullptr) {
        t = n->input(1)->dtype();
      } else if (n->domain().empty()) {
        for (const ir::Value* in : n->inputs()) {
          if (in != nullptr && in->dtype() != DataType::kUndefined) {
            t = in->dtype();
            break;
          }
        }
      }
      if (t != DataType::kUndefined) out->mutableType().dtype = t;
    }
  }
}

struct ConvertCounters {
  int64_t clamped = 0;
  int64_t converted = 0;
};

ir::Tensor toHalf(const ir::Tensor& t, DataType half, ConvertCounters& counters) {
  ir::Tensor out(half, t.dims());
  uint16_t* dst = out.mutableData<uint16_t>();
  const float limit = half == DataType::kFloat16 ? 65504.0f : std::numeric_limits<float>::max();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(t.valueAsDouble(i));
    if (std::isfinite(v) && std::fabs(v) > limit) {
      v = std::copysign(limit, v);
      ++counters.clamped;
    }
    dst[i] = half == DataType::kFloat16 ? ir::floatToHalf(v) : ir::floatToBfloat16(v);
  }
  counters.converted += n;
  return out;
}

class ConvertHalf final : public Pass {
 public:
  explicit ConvertHalf(HalfConfig c) : config_(std::move(c)) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  /// Converts `model`; nodes whose first output is named in `keepFloat` stay float32.
  Status convert(ir::Model& model, PassContext& ctx, const std::set<std::string>& keepFloat) const;
  Expected<std::set<std::string>> chooseFloatNodes(const ir::Model& model, PassContext& ctx) const;
  Expected<std::set<std::string>> outOfRangeNodes(const ir::Model& model, PassContext& ctx) const;
  bool converts(const ir::Node& n, const std::set<std::string>& keepFloat) const;
  const char* passName() const { return config_.half == DataType::kFloat16 ? "convert-fp16" : "convert-bf16"; }
  ir::Node* addCast(ir::Graph& graph, ir::Value* v, DataType to, ir::Node* before) const;
  HalfConfig config_;
};

// A Transpose of rank 3 or more that a MatMul reads: ONNX Runtime 1.32 segfaults loading a model
// where such a Transpose is float16 (its optimizations on: the NchwcTransformer, at
// ORT_ENABLE_ALL), whether the MatMul is float16 or reads it through a Cast to float32; the
// 3 nodes Transpose(perm 1,0,2) -> MatMul in float16 do it (corpus model aecmos, where a GRU's
// output goes Transpose -> Reshape -> Transpose -> MatMul). It stays float32, and a float32
// Transpose -> Cast -> float16 MatMul loads.
bool halfTransposeCrashesOrt(const ir::Node& n) {
  if (n.opType() != "Transpose" || !n.domain().empty() || n.output(0) == nullptr) return false;
  const std::vector<int64_t> perm = n.attrInts("perm");
  const ir::Value* x = n.input(0);
  const size_t rank = !perm.empty() ? perm.size() : (x != nullptr && x->type().shape ? x->type().shape->size() : 0);
  if (rank != 0 && rank < 3) return false;  // unknown rank counts as 3 or more
  for (const ir::Value::Use& u : n.output(0)->uses()) {
    if (!u.implicit() && ir::isDefaultDomainOp(*u.user, {"MatMul"})) return true;
  }
  return false;
}

bool ConvertHalf::converts(const ir::Node& n, const std::set<std::string>& keepFloat) const {
  if (!n.domain().empty() && n.domain() != "ai.onnx") return false;
  if (n.output(0) != nullptr && keepFloat.contains(n.output(0)->name())) return false;
  for (const ir::Value* out : n.outputs()) {
    if (out != nullptr && out->hasImplicitUses()) return false;  // a subgraph reads it by name, as float32
  }
  if (alwaysFloat(n) || halfTransposeCrashesOrt(n) || config_.blockOps.contains(n.opType())) return false;
  if (!n.name().empty() && config_.blockNodes.contains(n.name())) return false;
  if (isReduction(n.opType())) {
    int64_t count = reducedElements(n);
    if (count < 0 || count > config_.longReduction) return false;
  }
  return true;
}

ir::Node* ConvertHalf::addCast(ir::Graph& graph, ir::Value* v, DataType to, ir::Node* before) const {
  std::string suffix = to == DataType::kFloat ? "_fp32" : (to == DataType::kFloat16 ? "_fp16" : "_bf16");
  ir::Node* cast = graph.addNode("Cast", {v}, {v->name() + suffix}, graph.uniqueNodeName(v->name() + suffix + "_Cast"), "", before);
  cast->setAttribute(ir::Attribute::makeInt("to", static_cast<int64_t>(to)));
  cast->output(0)->mutableType() = v->type();
  cast->output(0)->mutableType().dtype = to;
  return cast;
}

// A Cast of a Cast between float types: the outer Cast reads the inner one's input, and
// disappears when that already has the wanted type.
int64_t cancelCastPairs(ir::Graph& graph) {
  int64_t removed = 0;
  for (ir::Node* n : graph.nodes()) {
    if (n->opType() != "Cast" || !n->domain().empty()) continue;
    ir::Value* mid = n->input(0);
    ir::Node* inner = mid != nullptr ? mid->producer() : nullptr;
    if (inner == nullptr || inner->opType() != "Cast" || !inner->domain().empty()) continue;
    ir::Value* x = inner->input(0);
    auto to = static_cast<DataType>(n->attrInt("to", 0));
    if (x == nullptr || !isFloatLike(x->dtype()) || !isFloatLike(mid->dtype()) || !isFloatLike(to)) continue;
    n->setInput(0, x);
    ++removed;
    if (x->dtype() == to && canForward(n->output(0), x)) {
      graph.replaceAllUsesWith(n->output(0), x);
      if (!n->output(0)->hasUses() && !n->output(0)->isGraphOutput()) graph.eraseNode(n);
    }
  }
  removeDeadNodes(graph);
  return removed;
}

using Feed = std::vector<std::pair<std::string, ir::Tensor>>;

/// A session of `model` with `names` as extra outputs.
Expected<std::unique_ptr<runtime::Session>> sessionWith(const ir::Model& model, const std::vector<std::string>& names) {
  runtime::SessionOptions options;
  options.extraOutputs = names;
  return runtime::Session::create(model, options);
}

/// One run of `session` on `feed`: its tensors by name. A model's sequence or map outputs (a
/// classifier's ZipMap) come back as such; only tensors are kept, and the callers skip the names
/// that are no tensor. The callers hold one sample's values at a time, so the memory of the
/// checks below does not grow with the number of samples (an 800 x 800 segmenter's every value
/// over 8 samples passed 18 GB when they were all kept).
Expected<std::map<std::string, ir::Tensor>> runTensors(runtime::Session& session, const Feed& feed) {
  std::vector<runtime::NamedValue> inputs(feed.begin(), feed.end());
  WH_ASSIGN_OR_RETURN(auto outs, session.runValues(inputs));
  std::map<std::string, ir::Tensor> byName;
  for (auto& [name, v] : outs) {
    if (v.isTensor()) byName[name] = v.tensor();
  }
  return byName;
}

// A copy of `model` with inferred shapes and every value's element type, for the float32 runs
// that measure what half precision would do.
ir::Model typedReference(const ir::Model& model) {
  ir::Model reference = model.clone();
  (void)ir::inferShapes(reference);
  fillElementTypes(*reference.graph);
  return reference;
}

// Automatic mixed precision (tolerance > 0). Converts a copy, runs it and the float32 model
// on calibration samples with every float node output as an extra output, and measures each
// output's error (eval::relativeError: max |half - float| / max |float|, the worst over the
// samples). The nodes where the error first crosses the tolerance (their own output is above
// it, their measured inputs are not) stay float32; the copy is converted again, until no node output is above the tolerance
// or no crossing is left (at most 8 rounds). Returns the outputs whose producers stay float32.
Expected<std::set<std::string>> ConvertHalf::chooseFloatNodes(const ir::Model& model, PassContext& ctx) const {
  if (ctx.calibration == nullptr) {
    return invalidInput(std::string(passName()) + ": tolerance needs calibration inputs (--calib DATA)");
  }
  WH_ASSIGN_OR_RETURN(auto feeds, ctx.calibration->sampleFeeds(config_.toleranceSamples));
  if (feeds.empty()) return invalidInput(std::string(passName()) + ": the calibration data set is empty");
  ir::Model reference = typedReference(model);
  std::vector<std::string> names;
  std::unordered_map<std::string, const ir::Node*> producerOf;
  for (const ir::Node* n : reference.graph->nodes()) {
    for (const ir::Value* out : n->outputs()) {
      if (out == nullptr || out->dtype() != DataType::kFloat || n->opType() == "Constant") continue;
      names.push_back(out->name());
      producerOf[out->name()] = n;
    }
  }
  WH_ASSIGN_OR_RETURN(auto referenceSession, sessionWith(reference, names));
  std::set<std::string> keepFloat;
  for (int round = 0; round < 8; ++round) {
    ir::Model candidate = model.clone();
    PassContext scratch(candidate);
    PassStats scratchStats;
    scratch.setCurrentStats(&scratchStats);
    WH_RETURN_IF_ERROR(convert(candidate, scratch, keepFloat));
    std::vector<std::string> present;
    for (const std::string& name : names) {
      if (candidate.graph->findValue(name) != nullptr) present.push_back(name);
    }
    WH_ASSIGN_OR_RETURN(auto candidateSession, sessionWith(candidate, present));
    // The worst error of each tensor over the samples, one sample's values alive at a time (the
    // float32 reference runs again each round rather than keeping every sample's values).
    std::unordered_map<std::string, double> error;
    for (const Feed& feed : feeds) {
      WH_ASSIGN_OR_RETURN(auto expected, runTensors(*referenceSession, feed));
      WH_ASSIGN_OR_RETURN(auto got, runTensors(*candidateSession, feed));
      for (const std::string& name : present) {
        auto e = expected.find(name);
        auto g = got.find(name);
        if (e == expected.end() || g == got.end()) continue;  // a sequence or map, no float value to measure
        double& worst = error[name];
        worst = std::max(worst, eval::relativeError(e->second, g->second));
      }
    }
    std::set<std::string> crossing;
    for (const auto& [name, e] : error) {
      if (e <= config_.tolerance || keepFloat.contains(name)) continue;
      bool inputsWithin = true;
      for (const ir::Value* in : producerOf.at(name)->inputs()) {
        if (in == nullptr) continue;
        auto it = error.find(in->name());
        inputsWithin = inputsWithin && (it == error.end() || it->second <= config_.tolerance);
      }
      if (inputsWithin) crossing.insert(producerOf.at(name)->output(0)->name());
    }
    if (crossing.empty()) {
      double worst = 0;
      for (const auto& [name, e] : error) worst = std::max(worst, e);
      if (worst > config_.tolerance) {
        ctx.note(std::string(passName()) + ": tolerance " + std::to_string(config_.tolerance) + " not met everywhere: the largest "
                 "node error left is " + std::to_string(worst) + " (accumulated over nodes that are each within it)");
      }
      break;
    }
    keepFloat.insert(crossing.begin(), crossing.end());
  }
  return keepFloat;
}

/// The largest magnitude a float16 value may reach on the calibration samples: float16 ends at
/// 65504, and a factor 8 is left for inputs the samples did not cover.
constexpr double kHalfSafeBound = 8192.0;
/// float16's smallest normal number, 2^-14: below it a value keeps fewer than 11 significant bits
/// (at 1e-6, about 4), and below 2^-25 it is zero.
constexpr double kHalfSmallestNormal = 6.103515625e-05;

// The range rule (float16 with calibration data, tolerance or not): runs the float32 model on
// the calibration samples with every float node output as an extra output; a node whose output
// exceeds kHalfSafeBound in magnitude (or is not finite) stays float32, and so does every node
// that reads such a value (in half it would read it through a Cast to half: inf). So does a node
// whose output is not zero but never reaches kHalfSmallestNormal, and every node that reads it:
// the whole tensor would be float16 subnormals. Such tensors are scales: an ORT dynamically
// quantized MatMul multiplies DynamicQuantizeLinear's activation scale by the weight's (1e-3
// times 1e-3 gives 1e-6, which float16 holds with 4 significant bits; voicefilter-embedder-int8's
// product is 6.7e-5, just above). A note names each. Without calibration data only the static rules hold (block-ops, kHalfFixedFloatOps,
// long reductions), as in onnxconverter-common's float16 converter, whose default block list
// also names ops rather than ranges.
Expected<std::set<std::string>> ConvertHalf::outOfRangeNodes(const ir::Model& model, PassContext& ctx) const {
  WH_ASSIGN_OR_RETURN(auto feeds, ctx.calibration->sampleFeeds(config_.toleranceSamples));
  if (feeds.empty()) return invalidInput(std::string(passName()) + ": the calibration data set is empty");
  ir::Model reference = typedReference(model);
  std::vector<std::string> names;
  for (const ir::Node* n : reference.graph->nodes()) {
    for (const ir::Value* out : n->outputs()) {
      if (out != nullptr && out->dtype() == DataType::kFloat && n->opType() != "Constant") names.push_back(out->name());
    }
  }
  auto magnitude = [](double v) { return std::isnan(v) ? std::numeric_limits<double>::infinity() : std::fabs(v); };
  // The peak magnitude of each tensor over the samples, one sample's values alive at a time.
  std::unordered_map<std::string, double> peaks;
  Status run = [&]() -> Status {
    WH_ASSIGN_OR_RETURN(auto session, sessionWith(reference, names));
    for (const Feed& feed : feeds) {
      WH_ASSIGN_OR_RETURN(auto values, runTensors(*session, feed));
      for (const auto& [name, t] : values) {
        double& peak = peaks[name];
        for (int64_t i = 0; i < t.numel(); ++i) peak = std::max(peak, magnitude(t.valueAsDouble(i)));
      }
    }
    return Status::ok();
  }();
  if (!run.isOk()) {
    // A model whittle's runtime cannot run (an op it lacks) still converts, with the static rules.
    WH_RETURN_IF_ERROR(ctx.fallback(std::string(passName()) + ": no range check, the float32 model does not run on the "
                                    "calibration samples (" + run.message() +
                                    "): only the static rules keep nodes float32"));
    return std::set<std::string>{};
  }
  std::set<std::string> keep;
  auto text = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3g", v);
    return std::string(buf);
  };
  for (const std::string& name : names) {
    auto found = peaks.find(name);
    if (found == peaks.end()) continue;  // a sequence or map, not a tensor
    const double peak = found->second;
    const bool tooLarge = peak > kHalfSafeBound;
    const bool tooSmall = peak > 0 && peak < kHalfSmallestNormal;
    if (!tooLarge && !tooSmall) continue;
    const ir::Value* v = model.graph->findValue(name);
    if (v == nullptr || v->producer() == nullptr) continue;
    const std::string why = tooLarge ? "reaches " + text(peak) + " on the calibration samples (float16 ends at 65504; the bound is " +
                                           text(kHalfSafeBound) + ")"
                                     : "peaks at " + text(peak) + " on the calibration samples (float16 subnormals below " +
                                           text(kHalfSmallestNormal) + ")";
    const ir::Node* producer = v->producer();
    if (producer->output(0) != nullptr && keep.insert(producer->output(0)->name()).second && converts(*producer, {})) {
      ctx.note(std::string(passName()) + ": " + producer->describe() + " stays float32: its output '" + name + "' " + why);
    }
    for (const ir::Value::Use& use : v->uses()) {
      const ir::Node* user = use.user;
      if (use.implicit() || user->output(0) == nullptr) continue;
      if (keep.insert(user->output(0)->name()).second && converts(*user, {})) {
        ctx.note(std::string(passName()) + ": " + user->describe() + " stays float32: it reads '" + name + "', which " +
                 (tooLarge ? "reaches " + text(peak) + " (beyond float16's range once cast)"
                           : "peaks at " + text(peak) + " (float16 subnormals once cast)"));
      }
    }
  }
  return keep;
}

Status ConvertHalf::run(ir::Model& model, PassContext& ctx) {
  noteSubgraphsLeftAlone(*model.graph, ctx, config_.half == DataType::kFloat16 ? "convert-fp16" : "convert-bf16", "float32");
  std::set<std::string> keepFloat;
  if (config_.tolerance > 0) {
    WH_ASSIGN_OR_RETURN(keepFloat, chooseFloatNodes(model, ctx));
  }
  const size_t byTolerance = keepFloat.size();
  int64_t byRange = 0;
  if (config_.half == DataType::kFloat16 && ctx.calibration != nullptr) {
    WH_ASSIGN_OR_RETURN(auto outOfRange, outOfRangeNodes(model, ctx));
    for (const std::string& name : outOfRange) byRange += keepFloat.insert(name).second ? 1 : 0;
  }
  WH_RETURN_IF_ERROR(convert(model, ctx, keepFloat));
  ctx.stats().counters["nodes-kept-by-tolerance"] = static_cast<int64_t>(byTolerance);
  ctx.stats().counters["nodes-kept-by-range"] = byRange;
  return Status::ok();
}

Status ConvertHalf::convert(ir::Model& model, PassContext& ctx, const std::set<std::string>& keepFloat) const {
  ir::Graph& graph = *model.graph;
  const DataType half = config_.half;
  const char* passName = this->passName();
  (void)ir::inferShapes(model);
  fillElementTypes(graph);
  ConvertCounters counters;

  const std::vector<ir::Node*> nodes = graph.nodes();
  std::unordered_set<const ir::Node*> converted;
  int64_t kept = 0;
  for (ir::Node* n : nodes) {
    if (converts(*n, keepFloat)) {
      converted.insert(n);
    } else {
      bool touchesFloat = false;
      for (const ir::Value* v : n->outputs()) touchesFloat |= v != nullptr && v->dtype() == DataType::kFloat;
      for (const ir::Value* v : n->inputs()) touchesFloat |= v != nullptr && v->dtype() == DataType::kFloat;
      kept += touchesFloat ? 1 : 0;
    }
  }

  // 1. Values produced by converted nodes become half; so do the model's inputs without keep-io-types.
  std::unordered_set<const ir::Value*> halfValues;
  for (ir::Node* n : nodes) {
    if (!converted.contains(n)) continue;
    for (ir::Value* out : n->outputs()) {
      if (out != nullptr && out->dtype() == DataType::kFloat) {
        out->mutableType().dtype = half;
        halfValues.insert(out);
      }
    }
    // Attributes that fix the output type.
    const std::string& op = n->opType();
    if (op == "Cast" && n->attrInt("to", 0) == static_cast<int64_t>(DataType::kFloat)) {
      n->setAttribute(ir::Attribute::makeInt("to", static_cast<int64_t>(half)));
    } else if (op == "Constant") {
      const ir::Attribute* a = n->findAttribute("value");
      if (a != nullptr && a->kind == ir::Attribute::Kind::kTensor && a->t.dtype() == DataType::kFloat) {
        n->setAttribute(ir::Attribute::makeTensor("value", toHalf(a->t, half, counters)));
      } else if (n->hasAttribute("value_float") || n->hasAttribute("value_floats")) {
        std::vector<float> vals = n->hasAttribute("value_float") ? std::vector<float>{n->attrFloat("value_float", 0)}
                                                                   : n->attrFloats("value_floats");
        std::vector<int64_t> dims;
        if (n->hasAttribute("value_floats")) dims.push_back(static_cast<int64_t>(vals.size()));
        n->removeAttribute("value_float");
        n->removeAttribute("value_floats");
        n->setAttribute(ir::Attribute::makeTensor("value", toHalf(ir::Tensor::fromVector(DataType::kFloat, dims, vals), half, counters)));
      }
    } else if (op == "ConstantOfShape" && n->output(0) != nullptr && n->output(0)->dtype() == half) {
      const ir::Attribute* a = n->findAttribute("value");
      ir::Tensor value = a != nullptr && a->kind == ir::Attribute::Kind::kTensor
                             ? a->t
                             : ir::Tensor::fromVector(DataType::kFloat, {1}, std::vector<float>{0.0f});
      n->setAttribute(ir::Attribute::makeTensor("value", toHalf(value, half, counters)));
    }
  }
  std::vector<ir::Value*> floatInputs;  // model inputs that stay float32 (keep-io-types)
  int64_t capturedInputs = 0;
  for (ir::Value* in : graph.inputs()) {
    if (in->dtype() != DataType::kFloat || in->isInitializer()) continue;
    if (!config_.keepIoTypes && in->hasImplicitUses()) ++capturedInputs;  // a subgraph reads it as float32
    if (config_.keepIoTypes || in->hasImplicitUses()) {
      floatInputs.push_back(in);
    } else {
      in->mutableType().dtype = half;
      halfValues.insert(in);
    }
  }

  // 2. Every use gets the type its node computes in: half for converted nodes, float32 otherwise.
  std::unordered_map<const ir::Value*, ir::Value*> halfOf;   // float32 value -> its half twin
  std::unordered_map<const ir::Value*, ir::Value*> floatOf;  // half value -> its float32 twin
  int64_t castsInserted = 0;
  for (ir::Node* n : nodes) {
    const bool isHalfNode = converted.contains(n);
    for (size_t i = 0; i < n->numInputs(); ++i) {
      ir::Value* v = n->input(i);
      if (v == nullptr) continue;
      const bool wantHalf = isHalfNode && !floatOnlySlot(*n, i);
      if (anyTypeSlot(*n, i) && isHalfNode) continue;
      if (v->dtype() == half && halfValues.contains(v) && !wantHalf) {
        auto it = floatOf.find(v);
        if (it == floatOf.end()) {
          it = floatOf.emplace(v, addCast(graph, v, DataType::kFloat, n)->output(0)).first;
          ++castsInserted;
        }
        n->setInput(i, it->second);
      } else if (v->dtype() == DataType::kFloat && wantHalf) {
        auto it = halfOf.find(v);
        if (it == halfOf.end()) {
          const ir::Tensor* c = v->isInitializer() && !v->isGraphInput() ? v->constant() : nullptr;
          ir::Value* twin = nullptr;
          if (c != nullptr) {
            twin = graph.addInitializer(graph.uniqueValueName(v->name() + (half == DataType::kFloat16 ? "_fp16" : "_bf16")),
                                        toHalf(*c, half, counters));
            twin->mutableType() = v->type();
            twin->mutableType().dtype = half;
          } else {
            twin = addCast(graph, v, half, n)->output(0);
            ++castsInserted;
          }
          it = halfOf.emplace(v, twin).first;
        }
        n->setInput(i, it->second);
      }
    }
  }

  // 3. The model's outputs: keep-io-types ends each half output with one Cast to float32.
  if (config_.keepIoTypes) {
    for (size_t j = 0; j < graph.outputs().size(); ++j) {
      ir::Value* v = graph.outputs()[j];
      if (v->dtype() != half || !halfValues.contains(v)) continue;
      std::string name = v->name();
      WH_RETURN_IF_ERROR(graph.renameValue(v, graph.uniqueValueName(name + (half == DataType::kFloat16 ? "_fp16" : "_bf16"))));
      ir::Node* cast = graph.addNode("Cast", {v}, {name}, graph.uniqueNodeName(name + "_Cast"), "", nullptr);
      cast->setAttribute(ir::Attribute::makeInt("to", static_cast<int64_t>(DataType::kFloat)));
      cast->output(0)->mutableType() = v->type();
      cast->output(0)->mutableType().dtype = DataType::kFloat;
      if (cast->output(0)->name() != name) return internalError(std::string(passName) + ": output '" + name + "' could not keep its name");
      graph.setOutput(j, cast->output(0));
      ++castsInserted;
    }
  }

  int64_t cancelled = cancelCastPairs(graph);
  removeDeadNodes(graph);
  WH_RETURN_IF_ERROR(graph.topologicalSort());
  ctx.stats().rewrites = static_cast<int64_t>(converted.size());
  ctx.stats().counters["nodes-converted"] = static_cast<int64_t>(converted.size());
  ctx.stats().counters["nodes-kept-float32"] = kept;
  ctx.stats().counters["casts-inserted"] = castsInserted;
  ctx.stats().counters["cast-pairs-cancelled"] = cancelled;
  ctx.stats().counters["weights-converted"] = counters.converted;
  ctx.stats().counters["weights-clamped"] = counters.clamped;
  if (capturedInputs > 0) {
    ctx.note(std::string(passName) + ": " + std::to_string(capturedInputs) +
             " model input(s) read inside subgraphs stay float32 despite keep-io-types=false");
  }
  if (counters.clamped > 0) {
    ctx.note(std::string(passName) + ": " + std::to_string(counters.clamped) + " weights outside the half range were clamped");
  }
  if (half == DataType::kBFloat16 && model.opsetVersion("") < 13) {
    ctx.note("convert-bf16: opset " + std::to_string(model.opsetVersion("")) +
             " < 13: most ops only admit bfloat16 from opset 13 on (Conv from 22); whittle runs the model, other runtimes may refuse it");
  }
  return Status::ok();
}

Expected<std::unique_ptr<Pass>> makeConvertHalf(const ConvertHalfOptions& options, DataType half) {
  HalfConfig c;
  c.half = half;
  c.keepIoTypes = options.keepIoTypes;
  c.blockOps.insert(options.blockOps.begin(), options.blockOps.end());
  c.blockNodes.insert(options.blockNodes.begin(), options.blockNodes.end());
  c.longReduction = options.longReduction;
  c.tolerance = options.tolerance;
  c.toleranceSamples = options.toleranceSamples;
  return std::unique_ptr<Pass>(std::make_unique<ConvertHalf>(std::move(c)));
}

}  // namespace

Expected<std::unique_ptr<Pass>> makeConvertFp16(const ConvertHalfOptions& options) {
  return makeConvertHalf(options, DataType::kFloat16);
}

Expected<std::unique_ptr<Pass>> makeConvertBf16(const ConvertHalfOptions& options) {
  return makeConvertHalf(options, DataType::kBFloat16);
}

}  // namespace whittle::passes
