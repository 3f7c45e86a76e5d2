// The CPU lowering (see lowering.h).
//
// Before: y = Relu(Add(Conv(x, W, B), z))          After: y = FusedConv(x, W, B, z)
//                                                           post_ops = ["Sum", "Relu"]
// Before: c = Concat(Relu(Conv(a)), Relu(Conv(b)))  After: the FusedConv outputs and c are
//                                                   [N, H, W, C]; Concat axis = 3
// Requires: every fused-away value has one reader and is neither a graph output nor kept;
// the Add operand has the Conv output's static shape; channels-last values are rank 4,
// float32 at the convolutions, and read only by ops that know the layout or do not care;
// blocked values ([N, C/16, H, W, 16], chains at 80 x 80 and above) are rank 5, read and
// written only by convolutions, pools, nearest Resizes, channel Concat/Split and same-shape
// element-wise ops.
#include "whittle/runtime/lowering.h"

#include <array>
#include <cfloat>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "whittle/ir/fold.h"
#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"

namespace whittle::runtime {

namespace {

constexpr const char* kInternalDomain = "com.whittle.internal";

/// The channel block of blocked (nChw16c) values: [N, C / 16, H, W, 16].
constexpr int64_t kChannelBlock = 16;
/// The smallest H x W of a blocked value: oneDNN 2.6's nChw16c jit kernels beat channels-last
/// brgconv by 8-28 % at 80 x 80 and above (1x1 64->64 at 160^2: 1.90 against 2.64 ms), tie at 56^2.
constexpr int64_t kBlockedMinPixels = 80 * 80;

struct PostOp {
  std::string op;
  float alpha = 0;
  float beta = 0;
};

class Lowering {
 public:
  Lowering(ir::Graph& graph, const std::vector<std::string>& keep) : graph_(graph) {
    for (const std::string& name : keep) {
      if (const ir::Value* v = graph.findValue(name)) keep_.insert(v);
    }
  }

  void foldBatchNorms();
  Status fuseEpilogues();
  Status keepChannelsLast();
  void markSumInPlace();
  void reduceMeansAsGlobalPools();

 private:
  bool pinned(const ir::Value* v) const {
    return v->isGraphOutput() || v->isGraphInput() || v->isInitializer() || keep_.contains(v) || v->hasImplicitUses();
  }
  ir::Node* replaceNodes(const std::vector<ir::Node*>& old, ir::Value* finalOut, const std::string& opType,
                         const std::string& domain, const std::string& name, const std::vector<ir::Value*>& inputs,
                         std::vector<ir::Attribute> attrs);
  int64_t rankOf(const ir::Value* v) const {
    if (v == nullptr) return -1;
    if (v->type().shape) return static_cast<int64_t>(v->type().shape->size());
    if (v->constant() != nullptr) return v->constant()->rank();
    auto it = ranks_.find(v);
    return it == ranks_.end() ? -1 : it->second;
  }

  ir::Graph& graph_;
  std::unordered_set<const ir::Value*> keep_;
  std::unordered_map<const ir::Value*, int64_t> ranks_;
};

// ---- helpers ----

// A session's graph: every initializer is a constant, graph input or not.
constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;

/// The epilogue step for an activation node, or nullopt when it cannot be fused.
std::optional<PostOp> activationOf(const ir::Node& n) {
  if (!n.domain().empty() || n.output(0) == nullptr) return std::nullopt;
  for (size_t i = 1; i < n.numOutputs(); ++i) {
    if (n.output(i) != nullptr) return std::nullopt;
  }
  const std::string& op = n.opType();
  if (op == "Clip") {
    float lo = n.attrFloat("min", -FLT_MAX), hi = n.attrFloat("max", FLT_MAX);
    if (n.numInputs() > 1 && n.input(1) != nullptr) {
      auto v = ir::scalarConstant(n.input(1), kSession);
      if (!v) return std::nullopt;
      lo = static_cast<float>(*v);
    }
    if (n.numInputs() > 2 && n.input(2) != nullptr) {
      auto v = ir::scalarConstant(n.input(2), kSession);
      if (!v) return std::nullopt;
      hi = static_cast<float>(*v);
    }
    return PostOp{op, lo, hi};
  }
  if (n.numInputs() != 1) return std::nullopt;
  if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "HardSwish") return PostOp{op, 0, 0};
  if (op == "LeakyRelu") return PostOp{op, n.attrFloat("alpha", 0.01f), 0};
  if (op == "Elu") return PostOp{op, n.attrFloat("alpha", 1.0f), 0};
  if (op == "HardSigmoid") return PostOp{op, n.attrFloat("alpha", 0.2f), n.attrFloat("beta", 0.5f)};
  if (op == "Gelu" && n.attrString("approximate", "none") == "none") return PostOp{op, 0, 0};
  return std::nullopt;
}

/// The rank of a value with a static shape, else 0 (a scalar constant of rank 0 or 1 fits).
int64_t rankOfValue(const ir::Value* v) {
  return v->type().shape ? static_cast<int64_t>(v->type().shape->size()) : 1;
}

/// The epilogue step for a Mul, Div, Add or Sub of `x` (the chain's value) and a scalar
/// constant, as alpha * x + beta ("Linear"), or nullopt. Only the scalar case: a per-channel
/// constant right after a Conv goes into its weights (foldConvAffine); here it follows an
/// activation (PP-LCNet's learnable affine after HardSwish: Mul(a, .) then Add(., b)).
std::optional<PostOp> linearOf(const ir::Node& n, const ir::Value* x) {
  if (!n.domain().empty() || n.numInputs() != 2 || n.numOutputs() != 1 || n.output(0) == nullptr) return std::nullopt;
  const std::string& op = n.opType();
  if (op != "Mul" && op != "Div" && op != "Add" && op != "Sub") return std::nullopt;
  const ir::Value* other = ir::otherInput(n, x);
  if (other == nullptr || other == x || ((op == "Div" || op == "Sub") && n.input(0) != x)) return std::nullopt;
  const ir::Tensor* c = ir::constantOf(other, kSession);
  if (c == nullptr || c->dtype() != ir::DataType::kFloat || c->numel() != 1 || c->rank() > rankOfValue(x)) {
    return std::nullopt;
  }
  const double v = c->valueAsDouble(0);
  if (op == "Mul") return PostOp{"Linear", static_cast<float>(v), 0};
  if (op == "Div") {
    if (v == 0 || !std::isfinite(1.0 / v)) return std::nullopt;
    return PostOp{"Linear", static_cast<float>(1.0 / v), 0};
  }
  return PostOp{"Linear", 1, static_cast<float>(op == "Add" ? v : -v)};
}

/// Whether two values have the same static shape (known sizes, or the same symbolic names).
bool sameStaticShape(const ir::Value* a, const ir::Value* b) {
  if (!a->type().shape || !b->type().shape) return false;
  const auto& sa = *a->type().shape;
  const auto& sb = *b->type().shape;
  if (sa.size() != sb.size()) return false;
  for (size_t i = 0; i < sa.size(); ++i) {
    if (sa[i].isKnown() || sb[i].isKnown()) {
      if (sa[i].value != sb[i].value) return false;
    } else if (sa[i].param.empty() || sa[i].param != sb[i].param) {
      return false;
    }
  }
  return true;
}

ir::Attribute stringsAttr(std::string name, std::vector<std::string> values) {
  ir::Attribute a;
  a.name = std::move(name);
  a.kind = ir::Attribute::Kind::kStrings;
  a.strings = std::move(values);
  return a;
}

/// The node's attributes, with `extra` added or replacing those of the same name.
std::vector<ir::Attribute> mergedAttributes(const ir::Node& n, std::vector<ir::Attribute> extra) {
  std::vector<ir::Attribute> out;
  for (const ir::Attribute& a : n.attributes()) {
    bool replaced = false;
    for (const ir::Attribute& e : extra) replaced = replaced || e.name == a.name;
    if (!replaced) out.push_back(a);
  }
  for (ir::Attribute& e : extra) out.push_back(std::move(e));
  return out;
}

ir::Node* Lowering::replaceNodes(const std::vector<ir::Node*>& old, ir::Value* finalOut, const std::string& opType,
                                 const std::string& domain, const std::string& name,
                                 const std::vector<ir::Value*>& inputs, std::vector<ir::Attribute> attrs) {
  const bool kept = keep_.erase(finalOut) > 0;
  ir::Node* node = ir::replaceChain(graph_, old, finalOut, opType, domain, name, inputs, std::move(attrs));
  if (kept) keep_.insert(node->output(0));
  return node;
}

// ---- step 0: inference BatchNormalization folded into the Conv before it ----
// Before: y = BatchNormalization(Conv(x, W, B), s, beta, mean, var)
// After:  y = Conv(x, W', B'),  W'[m] = W[m] * a[m],  B'[m] = (B[m] - mean[m]) * a[m] + beta[m],
//         a[m] = s[m] / sqrt(var[m] + epsilon), computed in double.
// The match and the fold are the fuse-conv-bn pass's (ir::matchConvBatchNorm /
// ir::foldConvBatchNorm); the lowering takes float32 Convs and ConvTransposes whose output
// is not pinned.

void Lowering::foldBatchNorms() {
  std::vector<ir::Value*> unfolded;  // the weights and biases folds replaced
  for (ir::Node* bn : graph_.nodes()) {
    std::optional<ir::ConvBatchNorm> m = ir::matchConvBatchNorm(*bn, kSession);
    if (!m || pinned(m->conv->output(0)) ||
        ir::constantOf(m->conv->input(1), kSession)->dtype() != ir::DataType::kFloat) {
      continue;
    }
    ir::Value* bnOut = bn->output(0);
    ir::Value* convOut = m->conv->output(0);
    const bool kept = keep_.erase(bnOut) > 0;
    const std::string name = bnOut->name();
    for (ir::Value* old : {m->conv->input(1), m->conv->input(2)}) {
      if (old != nullptr) unfolded.push_back(old);
    }
    ir::foldConvBatchNorm(graph_, *m, kSession);
    if (kept) {  // the Conv output now stands for the kept value, under its name
      keep_.insert(convOut);
      if (convOut->name() != name) {
        WH_CHECK(graph_.renameValue(bnOut, graph_.uniqueValueName(name + "_folded")).isOk());
        WH_CHECK(graph_.renameValue(convOut, name).isOk());
      }
    }
    graph_.eraseNode(bn);
  }
  // Drop the unfolded weights that nothing else reads, all in one pass.
  std::erase_if(unfolded, [&](const ir::Value* v) {
    return v->hasUses() || v->isGraphInput() || v->isGraphOutput() || keep_.contains(v);
  });
  graph_.eraseValues(unfolded);
}

// ---- step 1: fused epilogues ----

Status Lowering::fuseEpilogues() {
  std::vector<ir::Node*> convs;
  for (ir::Node* n : graph_.nodes()) {
    if (n->opType() == "Conv" && n->domain().empty() && n->numOutputs() == 1 && n->output(0) != nullptr &&
        n->input(0) != nullptr && n->input(1) != nullptr) {
      convs.push_back(n);
    }
  }
  for (ir::Node* conv : convs) {
    ir::Value* cur = conv->output(0);
    std::vector<PostOp> ops;
    std::vector<ir::Node*> absorbed = {conv};
    ir::Value* z = nullptr;
    while (!pinned(cur)) {
      if (const ir::Value::Use* use = ir::onlyUse(cur)) {
        ir::Node* user = use->user;
        // oneDNN 2.6 runs a second eltwise_linear of a chain (Linear, or the first half of
        // HardSigmoid) with the first one's alpha and beta: one per FusedConv.
        auto usesLinear = [&] {
          return std::any_of(ops.begin(), ops.end(),
                             [](const PostOp& p) { return p.op == "Linear" || p.op == "HardSigmoid"; });
        };
        if (auto op = activationOf(*user); op && use->index == 0 && !(op->op == "HardSigmoid" && usesLinear())) {
          ops.push_back(*op);
          absorbed.push_back(user);
          cur = user->output(0);
          continue;
        }
        if (auto op = linearOf(*user, cur)) {
          if (!ops.empty() && ops.back().op == "Linear") {  // two in a row: one alpha * x + beta
            PostOp& last = ops.back();
            last = {"Linear", op->alpha * last.alpha, op->alpha * last.beta + op->beta};
          } else if (usesLinear()) {
            break;
          } else {
            ops.push_back(*op);
          }
          absorbed.push_back(user);
          cur = user->output(0);
          continue;
        }
        // The residual: Add, or a Sum of two (Caffe2's ShuffleNet writes its shortcuts so).
        if ((user->opType() == "Add" || user->opType() == "Sum") && user->domain().empty() && user->numInputs() == 2 &&
            z == nullptr &&
            user->output(0) != nullptr) {
          ir::Value* other = user->input(static_cast<size_t>(1 - use->index));
          if (other != nullptr && other != cur && other->dtype() == cur->dtype() && sameStaticShape(cur, other)) {
            ops.push_back({"Sum", 0, 0});
            z = other;
            absorbed.push_back(user);
            cur = user->output(0);
            continue;
          }
        }
        break;
      }
      // x * Sigmoid(x) and x * HardSigmoid(x) (with HardSwish's constants): two readers.
      if (cur->uses().size() == 2 && !cur->uses()[0].implicit() && !cur->uses()[1].implicit()) {
        ir::Node* gate = nullptr;
        ir::Node* mul = nullptr;
        for (const ir::Value::Use& u : cur->uses()) {
          if (u.user->opType() == "Mul" && u.user->domain().empty()) mul = u.user;
          if ((u.user->opType() == "Sigmoid" || u.user->opType() == "HardSigmoid") && u.user->domain().empty())
            gate = u.user;
        }
        if (gate != nullptr && mul != nullptr && gate->output(0) != nullptr && !pinned(gate->output(0)) &&
            ir::onlyUse(gate->output(0)) != nullptr && ir::onlyUse(gate->output(0))->user == mul && mul->numInputs() == 2 &&
            mul->output(0) != nullptr && gate->numOutputs() == 1) {
          std::optional<PostOp> g = activationOf(*gate);
          bool ok = g.has_value();
          std::string fused = "Swish";
          if (ok && gate->opType() == "HardSigmoid") {
            ok = std::fabs(g->alpha - 1.0f / 6.0f) < 1e-6f && std::fabs(g->beta - 0.5f) < 1e-6f;
            fused = "HardSwish";
          }
          if (ok) {
            ops.push_back({fused, 0, 0});
            absorbed.push_back(gate);
            absorbed.push_back(mul);
            cur = mul->output(0);
            continue;
          }
        }
      }
      break;
    }
    if (ops.empty()) continue;
    std::vector<std::string> names;
    std::vector<float> params;
    for (const PostOp& op : ops) {
      names.push_back(op.op);
      params.push_back(op.alpha);
      params.push_back(op.beta);
    }
    std::vector<ir::Value*> inputs = {conv->input(0), conv->input(1), conv->input(2)};
    if (z != nullptr) inputs.push_back(z);
    while (!inputs.empty() && inputs.back() == nullptr) inputs.pop_back();
    std::vector<ir::Attribute> attrs =
        mergedAttributes(*conv, {stringsAttr("post_ops", names), ir::Attribute::makeFloats("post_op_params", params)});
    replaceNodes(absorbed, cur, "FusedConv", kInternalDomain, conv->name(), inputs, std::move(attrs));
  }
  return Status::ok();
}

// ---- step 2: channels-last activations ----

/// kToLast: a Transpose whose output, kept channels last, is its input's memory (perm
/// [0, 3, 1, 2], NHWC -> NCHW, as tf2onnx writes before a Conv); kFromLast: one whose output is
/// its channels-last input's memory ([0, 2, 3, 1], after a Conv). Either becomes a view.
enum class Role { kOther, kConv, kPool, kGlobalPool, kSameLayout, kShape, kToLast, kFromLast, kResize };

/// Whether a 4-D Resize leaves N and C alone in a way that holds in either layout: nearest
/// mode, no `axes`, no crop, and constant scales [1, 1, sh, sw] (or sizes [N, C, h, w] that
/// keep N and C). An axis of scale 1 maps every index to itself in every coordinate mode but
/// tf_crop_and_resize, so the same Resize on [N, H, W, C] with the scales permuted computes
/// the same values (FPN upsampling between channels-last convolutions).
std::optional<int> layoutFreeResizeInput(const ir::Node& n) {
  if (!n.domain().empty() || n.opType() != "Resize" || n.output(0) == nullptr) return std::nullopt;
  if (n.attrString("mode", "nearest") != "nearest" || n.hasAttribute("axes") ||
      n.attrString("coordinate_transformation_mode", "half_pixel") == "tf_crop_and_resize" ||
      n.attrString("keep_aspect_ratio_policy", "stretch") != "stretch") {
    return std::nullopt;
  }
  for (int i : {2, 3}) {  // scales, or sizes (opset 11+); opset 10 has scales at 1
    const int at = n.numInputs() == 2 ? 1 : i;
    if (static_cast<size_t>(at) >= n.numInputs() || n.input(static_cast<size_t>(at)) == nullptr) continue;
    const ir::Tensor* t = ir::constantOf(n.input(static_cast<size_t>(at)), ir::ConstantScope::kSession);
    if (t == nullptr || t->numel() == 0) continue;
    if (t->numel() != 4) return std::nullopt;
    if (t->dtype() == ir::DataType::kFloat) {
      return t->data<float>()[0] == 1.0f && t->data<float>()[1] == 1.0f ? std::optional<int>(at) : std::nullopt;
    }
    const auto& in = n.input(0)->type().shape;
    if (t->dtype() != ir::DataType::kInt64 || !in || in->size() != 4) return std::nullopt;
    const int64_t* z = t->data<int64_t>();
    return (*in)[0].value == z[0] && (*in)[1].value == z[1] && z[0] > 0 ? std::optional<int>(at) : std::nullopt;
  }
  return std::nullopt;
}

/// Whether the axes of a 4-D tensor of `dims`, read in the order `axes` (keyed by `keys`),
/// are in memory order: the keys increase once axes of size 1 are left out.
bool inMemoryOrder(const std::vector<int64_t>& dims, const std::array<int64_t, 4>& axes,
                   const std::array<int64_t, 4>& keys) {
  int64_t last = -1;
  for (size_t i = 0; i < 4; ++i) {
    if (dims[static_cast<size_t>(axes[i])] == 1) continue;
    if (keys[i] < last) return false;
    last = keys[i];
  }
  return true;
}

/// A Transpose view's dims: every one known, but for axis 0 (-1) where `batchFree`.
std::optional<std::vector<int64_t>> viewDims(const ir::ValueType& type, bool batchFree) {
  if (!type.shape) return std::nullopt;
  std::vector<int64_t> dims;
  for (size_t i = 0; i < type.shape->size(); ++i) {
    const ir::Dim& d = (*type.shape)[i];
    if (!d.isKnown() && !(batchFree && i == 0)) return std::nullopt;
    dims.push_back(d.isKnown() ? d.value : -1);
  }
  return dims;
}

bool isUnaryLayoutFree(const std::string& op) {
  static const std::unordered_set<std::string> ops = {
      "Relu",     "LeakyRelu", "Clip",       "Sigmoid",  "Tanh", "HardSigmoid", "HardSwish",
      "Elu",      "Selu",      "Softplus",   "Softsign", "Abs",  "Neg",         "Exp",
      "Log",      "Sqrt",      "Reciprocal", "Floor",    "Ceil", "Round",       "Erf",
      "Identity", "Dropout",   "Sign",       "Gelu",     "Mish", "Celu",        "ThresholdedRelu"};
  return ops.contains(op);
}

bool isBinaryLayoutFree(const std::string& op) {
  static const std::unordered_set<std::string> ops = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "PRelu"};
  return ops.contains(op);
}

/// The channel count of a constant that holds one value per channel of a 4-D NCHW operand:
/// shape [1, C, 1, 1] or [C, 1, 1] (a per-channel scale, shift or PRelu slope); 0 otherwise.
/// Its bytes are also the per-channel vector of an NHWC operand, as [1, 1, 1, C] or [1, 1, C].
int64_t channelVectorLength(const ir::Value* v) {
  const ir::Tensor* t = ir::constantOf(v, kSession);
  if (t == nullptr) return 0;
  const std::vector<int64_t>& d = t->dims();
  if (d.size() == 4 && d[0] == 1 && d[1] > 1 && d[2] == 1 && d[3] == 1) return d[1];
  if (d.size() == 3 && d[0] > 1 && d[1] == 1 && d[2] == 1) return d[0];
  return 0;
}

/// Union-find over values.
class ValueClasses {
 public:
  const ir::Value* find(const ir::Value* v) {
    auto it = parent_.find(v);
    if (it == parent_.end()) {
      parent_[v] = v;
      return v;
    }
    if (it->second == v) return v;
    const ir::Value* root = find(it->second);
    parent_[v] = root;
    return root;
  }
  void unite(const ir::Value* a, const ir::Value* b) { parent_[find(a)] = find(b); }

 private:
  std::unordered_map<const ir::Value*, const ir::Value*> parent_;
};

/// ReduceMean over axes 2 and 3 of a 4-D float32 tensor with keepdims is GlobalAveragePool,
/// which step 2 keeps channels last (PP-OCRv6's squeeze-excitation blocks write it so).
void Lowering::reduceMeansAsGlobalPools() {
  for (ir::Node* n : graph_.nodes()) {
    if (!n->domain().empty() || n->opType() != "ReduceMean" || n->output(0) == nullptr) continue;
    const ir::Value* x = n->input(0);
    if (x == nullptr || x->dtype() != ir::DataType::kFloat || rankOf(x) != 4 || n->attrInt("keepdims", 1) != 1) continue;
    std::vector<int64_t> axes = n->attrInts("axes");
    if (n->numInputs() > 1 && n->input(1) != nullptr) {  // opset 18: axes as an input
      const ir::Tensor* t = ir::constantOf(n->input(1), kSession);
      if (t == nullptr || t->dtype() != ir::DataType::kInt64) continue;
      axes.assign(t->data<int64_t>(), t->data<int64_t>() + t->numel());
    }
    for (int64_t& a : axes) a = a < 0 ? a + 4 : a;
    std::sort(axes.begin(), axes.end());
    if (axes != std::vector<int64_t>{2, 3}) continue;
    replaceNodes({n}, n->output(0), "GlobalAveragePool", "", n->name(), {n->input(0)}, {});
  }
}

/// The channels-last classes (roots in `classes`) that go blocked instead: every value 4-D with
/// C, H and W known (the batch may be symbolic), C a multiple of kChannelBlock and at least kBlockedMinPixels, and every node that
/// reads or writes one a convolution or an element-wise op whose data operands all have its
/// output's shape (so the op reads the same elements whatever the layout), a pool, a nearest
/// Resize of H and W, or a channel Concat or Split. Global pools, views and per-channel
/// constant operands keep their class channels last.
std::unordered_set<const ir::Value*> blockedClasses(const std::vector<ir::Node*>& nodes, ValueClasses& classes,
                                                   const std::unordered_map<const ir::Node*, Role>& roles,
                                                   const std::vector<std::pair<ir::Node*, size_t>>& channelOperands,
                                                   const std::vector<ir::Value*>& channelsLastValues) {
  std::unordered_set<const ir::Value*> refused;
  const std::unordered_set<const ir::Value*> lastValues(channelsLastValues.begin(), channelsLastValues.end());
  for (const ir::Node* n : nodes) {
    Role role = roles.at(n);
    const std::string& op = n->opType();
    bool elementwise = role == Role::kSameLayout && n->domain().empty() && (isUnaryLayoutFree(op) || isBinaryLayoutFree(op));
    // A channel Concat or Split of whole blocks is the same op on axis 1 of [N, C / 16, H, W, 16].
    bool channelMove = role == Role::kSameLayout && n->domain().empty() && (op == "Concat" || op == "Split");
    bool fits = role == Role::kConv || role == Role::kPool || role == Role::kResize || elementwise || channelMove;
    if (elementwise) {
      const auto& out = n->output(0)->type().shape;
      for (size_t i = 0; i < n->numInputs() && fits; ++i) {
        const ir::Value* in = n->input(i);
        if (in == nullptr || (isUnaryLayoutFree(op) && i > 0) || ir::scalarConstant(in, kSession)) continue;
        fits = out && in->type().shape == out;
      }
    }
    if (fits && role == Role::kConv && lastValues.contains(n->input(0))) {
      // Channels last in, blocked out: oneDNN's reorder pads a partial block (ddddocr-det's
      // 24 -> 48 3x3/2 at 208 x 208: 2.8 -> 3.9 ms with it), so such a convolution writes
      // channels last; one channel (a Transpose view of a spectrogram) is read as channels first.
      const auto& in = n->input(0)->type().shape;
      int64_t c = in && in->size() == 4 ? (*in)[1].value : -1;
      if (c != 1 && (c <= 0 || c % kChannelBlock != 0)) refused.insert(classes.find(n->output(0)));
    }
    if (fits) continue;
    for (const ir::Value* v : n->inputs()) {
      if (v != nullptr) refused.insert(classes.find(v));
    }
    for (const ir::Value* v : n->outputs()) {
      if (v != nullptr) refused.insert(classes.find(v));
    }
  }
  for (auto [n, at] : channelOperands) refused.insert(classes.find(n->output(0)));
  std::unordered_set<const ir::Value*> roots;
  for (const ir::Value* v : channelsLastValues) {
    const auto& shape = v->type().shape;
    bool fits = shape && shape->size() == 4;
    for (size_t i = 1; fits && i < 4; ++i) fits = (*shape)[i].isKnown();  // the batch may be symbolic
    fits = fits && (*shape)[1].value % kChannelBlock == 0 && (*shape)[2].value * (*shape)[3].value >= kBlockedMinPixels &&
           v->dtype() == ir::DataType::kFloat;
    if (!fits) refused.insert(classes.find(v));
    roots.insert(classes.find(v));
  }
  for (const ir::Value* r : refused) roots.erase(r);
  // A class that a convolution or pool both enters from channels last and leaves to channels
  // last pays two reorders for one value (ddddocr-det's 1x1 48 -> 48 between a channels-last
  // Concat and a 3x3/2: 0.22 ms of reorders for 0.07 ms gained): only chains go blocked.
  auto isLast = [&](const ir::Value* v) { return lastValues.contains(v) && !roots.contains(classes.find(v)); };
  for (bool changed = true; changed;) {
    changed = false;
    std::unordered_set<const ir::Value*> linked;
    for (const ir::Node* n : nodes) {
      Role role = roles.at(n);
      if (role != Role::kConv && role != Role::kPool) continue;
      const ir::Value* in = classes.find(n->input(0));
      const ir::Value* out = classes.find(n->output(0));
      if (roots.contains(out) && !isLast(n->input(0))) linked.insert(out);
      if (roots.contains(in) && roots.contains(out)) linked.insert(in);
    }
    for (auto it = roots.begin(); it != roots.end();) {
      if (linked.contains(*it)) {
        ++it;
      } else {
        it = roots.erase(it);
        changed = true;
      }
    }
  }
  return roots;
}

Status Lowering::keepChannelsLast() {
  reduceMeansAsGlobalPools();
  std::vector<ir::Node*> nodes = graph_.nodes();
  auto isConv = [](const ir::Node* n) {
    return (n->opType() == "Conv" && n->domain().empty()) ||
           (n->opType() == "FusedConv" && n->domain() == kInternalDomain);
  };
  // Ranks of values without a static shape, from the ops this pass understands.
  for (const ir::Node* n : nodes) {
    const ir::Value* out = n->output(0);
    if (out == nullptr || out->type().shape) continue;
    int64_t r = -1;
    const std::string& op = n->opType();
    if (isConv(n)) {
      r = rankOf(n->input(1));
    } else if (n->domain().empty() && (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" ||
                                       op == "GlobalMaxPool" || op == "Concat" || op == "Resize" || op == "Split" ||
                                       isUnaryLayoutFree(op))) {
      r = rankOf(n->input(0));
    } else if (n->domain().empty() && isBinaryLayoutFree(op)) {
      for (const ir::Value* in : n->inputs()) {
        int64_t ri = rankOf(in);
        if (ri < 0) {
          r = -1;
          break;
        }
        r = std::max(r, ri);
      }
    }
    if (r >= 0) ranks_[out] = r;
    if (r >= 0 && n->domain().empty() && op == "Split") {
      for (const ir::Value* o : n->outputs()) {
        if (o != nullptr && !o->type().shape) ranks_[o] = r;
      }
    }
  }

  // A Transpose that moves no memory once one side is channels last: kToLast when a Conv
  // reads its output, kFromLast when a Conv writes its input.
  // The batch may be symbolic where it stays the outer axis (perm[0] == 0): it is then first in
  // memory on both sides, and the view copies it (a 0 in the Reshape's shape).
  auto transposeRole = [&](const ir::Node* n) {
    std::vector<int64_t> p = n->attrInts("perm");
    if (p.size() != 4) return Role::kOther;
    for (int64_t a : p) {
      if (a < 0 || a > 3) return Role::kOther;
    }
    auto in = viewDims(n->input(0)->type(), p[0] == 0);
    auto out = viewDims(n->output(0)->type(), p[0] == 0);
    if (!in || !out || in->size() != 4 || out->size() != 4) return Role::kOther;
    bool convReads = false;
    for (const ir::Value::Use& u : n->output(0)->uses()) convReads = convReads || (isConv(u.user) && u.index == 0);
    const ir::Node* producer = n->input(0)->producer();
    // The output channels last, [y0, y2, y3, y1], is x's axes p0, p2, p3, p1.
    std::array<int64_t, 4> toLast = {p[0], p[2], p[3], p[1]};
    if (convReads && inMemoryOrder(*in, toLast, toLast)) return Role::kToLast;
    // x channels last holds its axes in the order 0, 2, 3, 1: axis a at position pos[a].
    constexpr std::array<int64_t, 4> pos = {0, 3, 1, 2};
    std::array<int64_t, 4> axes = {p[0], p[1], p[2], p[3]};
    std::array<int64_t, 4> keys = {pos[static_cast<size_t>(p[0])], pos[static_cast<size_t>(p[1])],
                                   pos[static_cast<size_t>(p[2])], pos[static_cast<size_t>(p[3])]};
    if (producer != nullptr && isConv(producer) && inMemoryOrder(*in, axes, keys)) return Role::kFromLast;
    return Role::kOther;
  };
  auto roleOf = [&](const ir::Node* n) {
    const std::string& op = n->opType();
    const ir::Value* x = n->input(0);
    if (x == nullptr || n->output(0) == nullptr) return Role::kOther;
    bool rank4 = rankOf(x) == 4;
    if (isConv(n)) {
      return rank4 && rankOf(n->input(1)) == 4 && x->dtype() == ir::DataType::kFloat ? Role::kConv : Role::kOther;
    }
    if (n->domain() == kInternalDomain && op == "ChannelGather") return rank4 ? Role::kSameLayout : Role::kOther;
    if (n->domain() == kInternalDomain && op == "BatchNormRelu") {  // DenseNet's Concat -> BN -> Relu -> Conv
      return rank4 && x->dtype() == ir::DataType::kFloat ? Role::kSameLayout : Role::kOther;
    }
    if (op == "Transpose" && n->domain().empty() && rank4 && n->numOutputs() == 1) return transposeRole(n);
    if (!n->domain().empty() || !rank4) return Role::kOther;
    if ((op == "MaxPool" && (n->numOutputs() == 1 || n->output(1) == nullptr)) || op == "AveragePool") {
      return x->dtype() == ir::DataType::kFloat ? Role::kPool : Role::kOther;
    }
    if (op == "GlobalAveragePool" || op == "GlobalMaxPool") return Role::kGlobalPool;
    if (op == "Shape") return Role::kShape;
    if (op == "Resize") return layoutFreeResizeInput(*n) ? Role::kResize : Role::kOther;
    if (op == "Concat") {
      int64_t axis = n->attrInt("axis", 1);
      if (axis != 1 && axis != -3) return Role::kOther;
      for (const ir::Value* in : n->inputs()) {
        if (in == nullptr || rankOf(in) != 4) return Role::kOther;
      }
      return Role::kSameLayout;
    }
    if (op == "Split") {  // along channels (YOLOv8's C2f blocks), sizes constant or in the attribute
      int64_t axis = n->attrInt("axis", 0);
      if (axis != 1 && axis != -3) return Role::kOther;
      if (n->numInputs() > 1 && n->input(1) != nullptr && ir::constantOf(n->input(1), kSession) == nullptr) {
        return Role::kOther;
      }
      for (const ir::Value* out : n->outputs()) {
        if (out != nullptr && rankOf(out) != 4) return Role::kOther;
      }
      return Role::kSameLayout;
    }
    if (isUnaryLayoutFree(op) || isBinaryLayoutFree(op)) {
      for (size_t i = 1; i < n->numOutputs(); ++i) {
        const ir::Value* extra = n->output(i);
        if (extra != nullptr && (extra->hasUses() || pinned(extra))) return Role::kOther;
      }
      return Role::kSameLayout;
    }
    return Role::kOther;
  };

  ValueClasses classes;
  // Per-channel constants of element-wise ops ([1, C, 1, 1] scales, PRelu slopes): they take
  // no part in the layout vote, and become [1, 1, 1, C] where the op goes channels last, so
  // that a Conv -> PRelu -> MaxPool chain (MTCNN, ArcFace) stays channels last.
  std::vector<std::pair<ir::Node*, size_t>> channelOperands;
  std::unordered_set<const ir::Value*> forced;  // values that must stay channels first
  std::unordered_set<const ir::Value*> convOutputs;
  std::unordered_map<const ir::Node*, Role> roles;
  for (ir::Node* n : nodes) {
    Role role = roleOf(n);
    roles[n] = role;
    switch (role) {
      case Role::kConv:
        convOutputs.insert(n->output(0));
        break;
      case Role::kPool:
        break;
      case Role::kGlobalPool:  // [N, C, 1, 1] and [N, 1, 1, C] are the same memory: free to follow
        break;
      case Role::kShape:
        forced.insert(n->output(0));
        break;
      case Role::kToLast:  // free to write channels last, like a convolution
        forced.insert(n->input(0));
        convOutputs.insert(n->output(0));
        break;
      case Role::kFromLast:
        forced.insert(n->output(0));
        break;
      case Role::kResize:
        classes.unite(n->input(0), n->output(0));
        break;
      case Role::kSameLayout: {
        if (n->opType() == "Split") {  // X and every output share a layout; the sizes are a parameter
          for (const ir::Value* out : n->outputs()) {
            if (out != nullptr) classes.unite(n->input(0), out);
          }
          break;
        }
        // One data input: the rest are parameters (BatchNormRelu's per-channel scale, bias, ...).
        bool unary = isUnaryLayoutFree(n->opType()) || n->opType() == "BatchNormRelu";
        bool binary = isBinaryLayoutFree(n->opType());
        for (size_t i = 0; i < n->numInputs(); ++i) {
          const ir::Value* in = n->input(i);
          if (in == nullptr || (unary && i > 0) || (!unary && ir::scalarConstant(in, kSession))) continue;
          if (binary && channelVectorLength(in) > 0) {  // follows the output's layout (reshaped below)
            channelOperands.emplace_back(n, i);
            continue;
          }
          classes.unite(in, n->output(0));
        }
        break;
      }
      case Role::kOther:
        for (const ir::Value* in : n->inputs()) {
          if (in != nullptr) forced.insert(in);
        }
        for (const ir::Value* out : n->outputs()) {
          if (out != nullptr) forced.insert(out);
        }
        for (const ir::Value* in : n->implicitInputs()) forced.insert(in);
        break;
    }
  }
  // A class goes channels last when nothing forces it and a convolution writes into it.
  std::unordered_set<const ir::Value*> forcedRoots, convRoots;
  auto visit = [&](const ir::Value* v) {
    if (v == nullptr) return;
    const ir::Value* root = classes.find(v);
    if (forced.contains(v) || pinned(v) || rankOf(v) != 4) forcedRoots.insert(root);
    if (convOutputs.contains(v)) convRoots.insert(root);
  };
  for (const ir::Value* v : graph_.values()) visit(v);
  auto channelsLast = [&](const ir::Value* v) {
    if (v == nullptr) return false;
    const ir::Value* root = classes.find(v);
    return convRoots.contains(root) && !forcedRoots.contains(root);
  };
  // A pool reading channels last writes channels last too, where nothing forces otherwise.
  for (bool changed = true; changed;) {
    changed = false;
    for (const ir::Node* n : nodes) {
      if ((roles[n] != Role::kPool && roles[n] != Role::kGlobalPool) || !channelsLast(n->input(0))) continue;
      const ir::Value* root = classes.find(n->output(0));
      if (!forcedRoots.contains(root) && convRoots.insert(root).second) changed = true;
    }
  }

  // Decide every node's change first (values are replaced as nodes are rebuilt).
  struct Change {
    ir::Node* node;
    bool rebuild;
    std::string opType;
    std::vector<ir::Attribute> attrs;
  };
  std::vector<Change> changes;
  std::vector<ir::Node*> views;  // Transposes that become a Reshape of the same memory
  std::vector<std::pair<ir::Node*, int>> resizes;  // Resizes whose scales or sizes (input at) go to [N, H, W, C] order
  std::vector<ir::Value*> permuted;
  std::vector<ir::Node*> blockedSplits;  // Splits of blocked values: axis 1, sizes in blocks
  for (ir::Value* v : graph_.values()) {
    if (channelsLast(v)) permuted.push_back(v);
  }
  // Channels-last classes that go blocked instead ([N, C / 16, H, W, 16], oneDNN's nChw16c).
  std::unordered_set<const ir::Value*> blockedRoots = blockedClasses(nodes, classes, roles, channelOperands, permuted);
  auto blocked = [&](const ir::Value* v) { return v != nullptr && blockedRoots.contains(classes.find(v)); };
  auto layoutOf = [&](const ir::Value* v) -> int64_t { return blocked(v) ? 2 : channelsLast(v) ? 1 : 0; };
  for (ir::Node* n : nodes) {
    Role role = roles[n];
    if (role == Role::kShape) {
      if (channelsLast(n->input(0))) {
        changes.push_back({n, true, "Shape", {ir::Attribute::makeInt("channels_last_in", 1)}});
      }
    } else if (role == Role::kConv || role == Role::kPool || role == Role::kGlobalPool) {
      bool in = channelsLast(n->input(0)), out = channelsLast(n->output(0));
      bool sum = role == Role::kConv && n->input(3) != nullptr && channelsLast(n->input(3));
      if (!in && !out && !sum) continue;
      std::vector<ir::Attribute> attrs = {ir::Attribute::makeInt("channels_last_in", layoutOf(n->input(0))),
                                          ir::Attribute::makeInt("channels_last_out", layoutOf(n->output(0)))};
      if (role == Role::kConv) {
        attrs.push_back(ir::Attribute::makeInt("channels_last_sum", sum ? layoutOf(n->input(3)) : 0));
      }
      bool rebuild = n->domain() != kInternalDomain;
      changes.push_back({n, rebuild, role == Role::kConv ? "FusedConv" : n->opType(), std::move(attrs)});
    } else if (role == Role::kSameLayout && n->opType() == "Split" && blocked(n->input(0))) {
      blockedSplits.push_back(n);
    } else if (role == Role::kSameLayout && n->opType() == "Concat" && blocked(n->output(0))) {
      changes.push_back({n, false, "", {ir::Attribute::makeInt("axis", 1)}});
    } else if (role == Role::kSameLayout && n->opType() == "Split" && channelsLast(n->input(0))) {
      changes.push_back({n, false, "", {ir::Attribute::makeInt("axis", 3)}});
    } else if (role == Role::kSameLayout && n->opType() == "Concat" && channelsLast(n->output(0))) {
      changes.push_back({n, false, "", {ir::Attribute::makeInt("axis", 3)}});
    } else if (role == Role::kResize && channelsLast(n->output(0))) {
      resizes.emplace_back(n, *layoutFreeResizeInput(*n));  // before the shapes below are permuted
    } else if (role == Role::kSameLayout && (n->opType() == "ChannelGather" || n->opType() == "BatchNormRelu") &&
               channelsLast(n->output(0))) {
      changes.push_back({n, false, "", {ir::Attribute::makeInt("channels_last", 1)}});
    } else if ((role == Role::kToLast && channelsLast(n->output(0))) ||
               (role == Role::kFromLast && channelsLast(n->input(0)))) {
      views.push_back(n);
    }
  }
  for (auto [n, at] : channelOperands) {
    if (!channelsLast(n->output(0))) continue;
    ir::Value* v = n->input(at);
    const ir::Tensor& t = *ir::constantOf(v, kSession);
    std::vector<int64_t> dims(t.dims().size(), 1);
    dims.back() = channelVectorLength(v);
    n->setInput(at, graph_.addInitializer(graph_.uniqueValueName(v->name() + "_channels_last"),
                                          ir::Tensor(t.dtype(), std::move(dims), t.buffer())));
  }
  for (ir::Value* v : permuted) {
    auto& shape = v->mutableType().shape;
    if (!shape || shape->size() != 4) continue;
    if (blocked(v)) {
      *shape = {(*shape)[0], ir::Dim::known((*shape)[1].value / kChannelBlock), (*shape)[2], (*shape)[3], ir::Dim::known(kChannelBlock)};
    } else {
      *shape = {(*shape)[0], (*shape)[2], (*shape)[3], (*shape)[1]};
    }
  }
  for (Change& c : changes) {
    if (!c.rebuild) {
      for (ir::Attribute& a : c.attrs) c.node->setAttribute(std::move(a));
      continue;
    }
    std::vector<ir::Attribute> attrs = mergedAttributes(*c.node, std::move(c.attrs));
    replaceNodes({c.node}, c.node->output(0), c.opType, kInternalDomain, c.node->name(), c.node->inputs(),
                 std::move(attrs));
  }
  for (auto [n, at] : resizes) {
    ir::Value* v = n->input(static_cast<size_t>(at));
    ir::Tensor t = *ir::constantOf(v, kSession);
    if (blocked(n->output(0))) {  // [a, b, c, d] -> [a, b, c, d, 1] (scales) or [a, b / 16, c, d, 16] (sizes)
      std::vector<int64_t> dims = {5};
      ir::Tensor b(t.dtype(), dims);
      if (t.dtype() == ir::DataType::kFloat) {
        std::copy(t.data<float>(), t.data<float>() + 4, b.mutableData<float>());
        b.mutableData<float>()[4] = 1.0f;
      } else {
        const int64_t* z = t.data<int64_t>();
        int64_t* o = b.mutableData<int64_t>();
        o[0] = z[0], o[1] = z[1] / kChannelBlock, o[2] = z[2], o[3] = z[3], o[4] = kChannelBlock;
      }
      n->setInput(static_cast<size_t>(at), graph_.addInitializer(graph_.uniqueValueName(v->name() + "_blocked"), std::move(b)));
      continue;
    }
    std::byte* b = t.mutableRawData();
    const size_t es = ir::elementSize(t.dtype());
    std::vector<std::byte> c(b + es, b + 2 * es);  // [a, b, c, d] -> [a, c, d, b]
    std::memmove(b + es, b + 2 * es, 2 * es);
    std::memcpy(b + 3 * es, c.data(), es);
    n->setInput(static_cast<size_t>(at), graph_.addInitializer(graph_.uniqueValueName(v->name() + "_channels_last"), std::move(t)));
  }
  for (ir::Node* n : blockedSplits) {
    // Every output holds whole blocks (blockedClasses checked their channels): sizes / 16.
    n->setAttribute(ir::Attribute::makeInt("axis", 1));
    if (n->hasAttribute("split")) {
      std::vector<int64_t> sizes = n->attrInts("split");
      for (int64_t& c : sizes) c /= kChannelBlock;
      n->setAttribute(ir::Attribute::makeInts("split", sizes));
    } else if (n->numInputs() > 1 && n->input(1) != nullptr) {
      ir::Tensor t = *ir::constantOf(n->input(1), kSession);
      for (int64_t i = 0; i < t.numel(); ++i) t.mutableData<int64_t>()[i] /= kChannelBlock;
      n->setInput(1, graph_.addInitializer(graph_.uniqueValueName(n->input(1)->name() + "_blocks"), std::move(t)));
    }
  }
  for (ir::Node* n : views) {
    // The output's stored dims (permuted above when it went channels last), as a shape input
    // and as Reshape-1's attribute, so that the view reads right at every opset.
    std::vector<int64_t> dims = *viewDims(n->output(0)->type(), true);
    if (dims[0] < 0) dims[0] = 0;  // Reshape's 0: the input's batch (axis 0 on both sides)
    ir::Value* shape = graph_.addInitializer(
        n->output(0)->name() + "_view_shape",
        ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(dims.size())}, dims));
    replaceNodes({n}, n->output(0), "Reshape", "", n->name(), {n->input(0), shape},
                 {ir::Attribute::makeInts("shape", dims)});
  }
  return Status::ok();
}

void Lowering::markSumInPlace() {
  for (ir::Node* n : graph_.nodes()) {
    if (n->opType() != "FusedConv" || n->domain() != kInternalDomain || n->input(3) == nullptr) continue;
    const ir::Value* z = n->input(3);
    if (z->producer() != nullptr && !pinned(z) && ir::onlyUse(z) != nullptr) {
      n->setAttribute(ir::Attribute::makeInt("sum_in_place", 1));
    }
  }
}

}  // namespace

Status lowerForCpu(ir::Graph& graph, const std::vector<std::string>& keep) {
  // Paddle2ONNX and other exporters write weights as Constant nodes: as initializers, the
  // folds and fusions below see them, and the session holds them instead of running a
  // kernel per Constant on every run.
  ir::constantNodesToInitializers(graph, /*eraseNodes=*/true, keep);
  lowerBlockwiseWeights(graph, keep);
  lowerBlockwiseGathers(graph, keep);
  lowerQdqGroups(graph, keep);
  bypassIdentities(graph, keep);
  foldConstantReshapes(graph, keep);
  widenFloat16(graph, keep);
  foldConvAffine(graph, keep);  // a bias Add between a ConvTranspose and its BatchNormalization
  Lowering lowering(graph, keep);
  lowering.foldBatchNorms();
  foldConvAffine(graph, keep);
  foldBatchNormAffine(graph, keep);
  fuseBatchNormRelu(graph, keep);
  // Subnormal weights cost a microcode assist per multiply (the flush-subnormals pass).
  ir::flushSubnormalConstants(graph);
  fuseHardSwishChains(graph, keep);
  fuseGeluChains(graph, keep);
  lowerContribGelus(graph, keep);
  fuseAttentionChains(graph, keep);
  fuseSwishMuls(graph, keep);
  fuseRmsNorms(graph, keep);
  lowerChannelGathers(graph, keep);
  WH_RETURN_IF_ERROR(lowering.fuseEpilogues());
  WH_RETURN_IF_ERROR(lowering.keepChannelsLast());
  lowering.markSumInPlace();
  return Status::ok();
}

}  // namespace whittle::runtime
