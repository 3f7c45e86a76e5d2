// quantize-weights: weight-only block-wise int4/int8 quantization (RTN, GPTQ, AWQ).
//
// Before: y = MatMul(x, W)              W constant [K, N]   (also Gemm(x, W[, c]) with
//                                                             transA = 0, alpha = 1; transB
//                                                             reads W as [N, K]; and MatMul(x,
//                                                             Transpose(E)) of a constant E)
//         e = Gather(E, ids)            E constant [V, H]    (embeddings=true)
// After (format=qdq, opset 21):
//   Wd = DequantizeLinear(Wq, s[, z], axis = the K axis, block_size = block)
//   y  = MatMul(x, Wd);  e = Gather(Ed, ids)
//   w ~= (q - z) * s per block of `block` values along K (blocks along H for an embedding);
//   Wq int4/int8 (symmetric, no z) or uint4/uint8 with z.
// After (format=matmulnbits, ONNX Runtime's com.microsoft ops):
//   y = MatMulNBits(x, B, s[, zp][, , bias])  B uint8 [N, blocks, block * bits / 8]
//   e = Slice(Reshape(GatherBlockQuantized(B, ids, Reshape(s, [V, blocks, 1])[, zp3])))
//       (the same B as the MatMulNBits of a tied LM head; the Slice only when block does not
//       divide H).
// A weight shared by several consumers (SmolLM2's embedding, read by Gather and, transposed,
// by the LM head) is quantized once and every consumer reads the one quantized copy.
// The codes come from quant/blockwise.h (RTN with a clipping search weighed by the input
// channels' E[x^2] when calibration data is given; embedding-bits=8 keeps tables read by a
// Gather, tied LM heads included, at 8 bits), quant/gptq.h or quant/awq.h, fed by the
// streaming input statistics of quant/collectors.h (one calibration run over the float model).
// AWQ's 1/s goes into the op that makes x where it can: a Mul by a constant vector (the
// RMSNorm/LayerNorm weight), a MatMul with a constant weight (directly or through one operand
// of a Mul, as the up projection before down_proj); otherwise an explicit Mul before the
// group. Blocks that do not divide K are padded as ONNX Runtime does (the last block short;
// MatMulNBits pads its storage with the zero point). Non-constant weights stay float (a note).

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "input_scaling.h"
#include "name_patterns.h"
#include "pass_factories.h"
#include "widen_half.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/passes/upgrade_opset.h"
#include "whittle/quant/awq.h"
#include "whittle/quant/blockwise.h"
#include "whittle/quant/calibration.h"
#include "whittle/quant/collectors.h"
#include "whittle/quant/gptq.h"

namespace whittle::passes {
namespace {

constexpr const char* kMsDomain = "com.microsoft";

struct Config {
  quant::BlockConfig block;
  quant::BlockConfig embeddingBlock;  // for weights read by a Gather (embedding-bits)
  std::string method;
  bool clipAuto = false;  // clip-search=auto: no search where no input statistics weight it
  bool matmulNBits = false;
  bool embeddings = true;
  quant::GptqOptions gptq;
  int awqGrid = 20;
  int64_t accuracyLevel = 0;
  std::set<std::string> opTypes;
  std::set<std::string> excludeOpTypes;
  std::vector<std::string> excludeNodes;
  std::vector<std::string> nodes;  // only these (empty: all)
};

// How a consumer reads its weight source.
enum class Use { kMatMul, kMatMulTransposed, kGather };

struct Target {
  ir::Node* node;
  Use use;
  ir::Value* source;  // the constant weight (through the Transpose for kMatMulTransposed)
};

// One constant weight and everything that reads it.
struct Source {
  ir::Value* value = nullptr;
  bool kn = false;  // stored [K, N] (a MatMul / Gemm transB = 0 weight); otherwise [N, K]
  int64_t rows = 0, k = 0;
  std::vector<float> w;  // [N, K], AWQ scales applied
  std::vector<Target> targets;
  ir::Value* statsInput = nullptr;  // the MatMul input whose statistics weigh this weight
  std::vector<float> inputScale;    // AWQ's s (empty: none)
  quant::BlockQuantized q;
};

const ir::Tensor* float2d(const ir::Value* v) {
  const ir::Tensor* t = v != nullptr ? constantOf(v) : nullptr;
  return t != nullptr && t->dtype() == ir::DataType::kFloat && t->rank() == 2 ? t : nullptr;
}

class QuantizeWeights final : public Pass {
 public:
  explicit QuantizeWeights(Config c)
      : config_(std::move(c)), excluded_(config_.excludeNodes), included_(config_.nodes) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  bool selected(const ir::Node& n) const;
  std::vector<Target> findTargets(ir::Graph& graph, int64_t& nonConstant) const;
  Status applyAwq(ir::Graph& graph, std::map<ir::Value*, Source>& sources,
                  std::map<ir::Value*, std::unique_ptr<quant::InputStatsCollector>>& stats, PassContext& ctx) const;
  Status emitQdq(ir::Graph& graph, Source& s, PassContext& ctx) const;
  // The bits/block of a source: embeddingBlock for a table read by a Gather (tied or not) and
  // for an untied LM head (a weight [D, V] or [V, D] of a MatMul/Gemm making a graph output,
  // with a Gather table [V, D] in the model: rotate-residual's untied copy).
  const quant::BlockConfig& blockConfigOf(const Source& s) const;
  std::set<std::pair<int64_t, int64_t>> tableShapes_;  // [V, D] of the Gather tables, as rows x k
  Status emitMatMulNBits(ir::Graph& graph, Source& s, PassContext& ctx) const;
  Config config_;
  NamePatterns excluded_;
  NamePatterns included_;
};

const quant::BlockConfig& QuantizeWeights::blockConfigOf(const Source& s) const {
  for (const Target& t : s.targets) {
    if (t.use == Use::kGather) return config_.embeddingBlock;
  }
  if (tableShapes_.contains({s.rows, s.k})) {
    for (const Target& t : s.targets) {
      if (t.node->output(0)->isGraphOutput()) return config_.embeddingBlock;
    }
  }
  return config_.block;
}

bool QuantizeWeights::selected(const ir::Node& n) const {
  if (!n.domain().empty()) return false;
  const std::string& op = n.opType();
  if (op != "MatMul" && op != "Gemm" && op != "Gather") return false;
  if (op == "Gather" && !config_.embeddings) return false;
  if (!config_.opTypes.empty() && !config_.opTypes.contains(op)) return false;
  if (config_.excludeOpTypes.contains(op)) return false;
  if (!included_.empty() && !included_.matches(n.name())) return false;
  return !excluded_.matches(n.name());
}

std::vector<Target> QuantizeWeights::findTargets(ir::Graph& graph, int64_t& nonConstant) const {
  std::vector<Target> targets;
  for (ir::Node* n : graph.nodes()) {
    if (!selected(*n)) continue;
    const std::string& op = n->opType();
    if (op == "Gather") {
      ir::Value* data = n->input(0);
      if (float2d(data) != nullptr && n->attrInt("axis", 0) == 0 && constantOf(n->input(1)) == nullptr) {
        targets.push_back({n, Use::kGather, data});
      }
      continue;
    }
    ir::Value* x = n->input(0);
    ir::Value* b = n->input(1);
    if (x == nullptr || b == nullptr || constantOf(x) != nullptr) continue;
    if (op == "Gemm") {
      if (n->attrInt("transA", 0) != 0 || n->attrFloat("alpha", 1.0f) != 1.0f) continue;
      if (float2d(b) == nullptr) {
        ++nonConstant;
        continue;
      }
      ir::Value* c = n->input(2);
      if (c != nullptr && constantOf(c) == nullptr) continue;
      targets.push_back({n, n->attrInt("transB", 0) != 0 ? Use::kMatMulTransposed : Use::kMatMul, b});
      continue;
    }
    if (float2d(b) != nullptr) {
      targets.push_back({n, Use::kMatMul, b});
      continue;
    }
    const ir::Node* t = b->producer();
    if (t != nullptr && t->opType() == "Transpose" && t->domain().empty() && float2d(t->input(0)) != nullptr) {
      const std::vector<int64_t> perm = t->attrInts("perm", {1, 0});
      if (perm == std::vector<int64_t>{1, 0}) {
        targets.push_back({n, Use::kMatMulTransposed, t->input(0)});
        continue;
      }
    }
    ++nonConstant;
  }
  return targets;
}

Status QuantizeWeights::applyAwq(ir::Graph& graph, std::map<ir::Value*, Source>& sources,
                                 std::map<ir::Value*, std::unique_ptr<quant::InputStatsCollector>>& stats,
                                 PassContext& ctx) const {
  // Groups: the weights (read by one MatMul/Gemm alone, not shared) that share one input.
  std::map<ir::Value*, std::vector<Source*>> groups;
  for (auto& [v, s] : sources) {
    if (s.statsInput == nullptr || s.targets.size() != 1 || s.targets[0].use == Use::kGather) continue;
    if (s.value->uses().size() != 1) continue;  // shared with something else (a tied embedding)
    groups[s.statsInput].push_back(&s);
  }
  int64_t folded = 0, explicitMuls = 0, unscaled = 0;
  for (auto& [x, members] : groups) {
    quant::InputStatsCollector& st = *stats.at(x);
    const int64_t k = st.channels();
    const std::vector<double> h = st.secondMoment();
    const std::vector<float> meanAbs = st.meanAbs();
    std::vector<std::span<const float>> ws;
    std::vector<int64_t> rows;
    for (Source* s : members) {
      ws.emplace_back(s->w);
      rows.push_back(s->rows);
    }
    quant::AwqResult r = quant::searchAwqScales(ws, rows, k, h, meanAbs, config_.block, config_.awqGrid);
    if (r.alpha == 0) {
      ++unscaled;
      continue;
    }
    const std::vector<float>& sc = r.scales;
    std::set<const ir::Node*> group;
    for (Source* s : members) group.insert(s->targets[0].node);
    // A weight being quantized changes in its Source copy: only a [K', K] one read once qualifies.
    auto usable = [&](const ir::Value* w) {
      auto it = sources.find(const_cast<ir::Value*>(w));
      return it == sources.end() || (it->second.kn && it->second.targets.size() == 1);
    };
    InputAbsorber a = findInputAbsorber(x, k, group, usable);
    auto prev = a.weight != nullptr ? sources.find(a.weight) : sources.end();
    if (prev != sources.end()) {  // [N', K'] rows are the previous layer's outputs = our channels
      Source& p = prev->second;
      for (int64_t n = 0; n < p.rows; ++n) {
        for (int64_t c = 0; c < p.k; ++c) p.w[static_cast<size_t>(n * p.k + c)] /= sc[static_cast<size_t>(n)];
      }
    }
    if (a.vector != nullptr || a.weight != nullptr || a.layerNorm != nullptr) {
      divideAbsorber(a, sc, /*divideWeight=*/prev == sources.end());
      ++folded;
    } else {
      std::vector<ir::Node*> nodes;
      for (Source* s : members) nodes.push_back(s->targets[0].node);
      insertInputScale(graph, x, sc, nodes, "awq");
      ++explicitMuls;
    }
    for (Source* s : members) {
      for (int64_t n = 0; n < s->rows; ++n) {
        for (int64_t c = 0; c < k; ++c) s->w[static_cast<size_t>(n * k + c)] *= sc[static_cast<size_t>(c)];
      }
      s->inputScale = sc;
    }
  }
  ctx.stats().counters["awq-scaled-inputs"] = folded + explicitMuls;
  ctx.stats().counters["awq-folded"] = folded;
  if (explicitMuls > 0) {
    ctx.note("quantize-weights: AWQ: " + std::to_string(explicitMuls) +
             " input(s) scaled by an explicit Mul (no constant producer could absorb 1/s)");
  }
  if (unscaled > 0) ctx.stats().counters["awq-unscaled-inputs"] = unscaled;
  return Status::ok();
}

Status QuantizeWeights::emitQdq(ir::Graph& graph, Source& s, PassContext& ctx) const {
  quant::QdqTensors t = quant::toQdqTensors(s.q, s.kn);
  const std::string base = s.value->name();
  ir::Value* values = graph.addInitializer(graph.uniqueValueName(base + "_q" + std::to_string(s.q.bits)), std::move(t.values));
  ir::Value* scales = graph.addInitializer(graph.uniqueValueName(base + "_scale"), std::move(t.scales));
  std::vector<ir::Value*> inputs{values, scales};
  if (t.zeroPoints) inputs.push_back(graph.addInitializer(graph.uniqueValueName(base + "_zero_point"), std::move(*t.zeroPoints)));
  ir::Node* first = nullptr;
  for (const ir::Node* n : graph.nodes()) {
    for (const auto& u : s.value->uses()) {
      if (u.user == n && first == nullptr) first = const_cast<ir::Node*>(n);
    }
  }
  ir::Node* dq = graph.addNode("DequantizeLinear", inputs, {base + "_dequantized"}, graph.uniqueNodeName(base + "_DequantizeLinear"),
                               "", first);
  dq->setAttribute(ir::Attribute::makeInt("axis", s.kn ? 0 : 1));
  dq->setAttribute(ir::Attribute::makeInt("block_size", s.q.block));
  dq->output(0)->mutableType().dtype = ir::DataType::kFloat;
  dq->output(0)->mutableType().shape = std::vector<ir::Dim>{ir::Dim::known(s.kn ? s.k : s.rows), ir::Dim::known(s.kn ? s.rows : s.k)};
  // Only the selected consumers read the quantized weight (a Gather left out by embeddings=false
  // keeps reading the float table).
  for (const Target& t : s.targets) {
    ir::Node* user = t.node;
    if (std::find(user->inputs().begin(), user->inputs().end(), s.value) == user->inputs().end()) {
      user = t.node->input(1)->producer();  // the Transpose of a tied LM head
    }
    user->replaceInput(s.value, dq->output(0));
  }
  if (s.value->hasUses() || s.value->isGraphOutput()) {
    WH_RETURN_IF_ERROR(ctx.fallback("quantize-weights: '" + base +
                                    "' keeps its float copy beside the quantized one: other nodes read it as it is"));
  }
  return Status::ok();
}

Status QuantizeWeights::emitMatMulNBits(ir::Graph& graph, Source& s, PassContext& ctx) const {
  const quant::BlockQuantized& q = s.q;
  const std::string base = s.value->name();
  ir::Value* b = graph.addInitializer(graph.uniqueValueName(base + "_nbits"), quant::packMatMulNBitsWeight(q));
  ir::Value* scales = nullptr;
  ir::Value* zp = nullptr;
  ir::Value* scales3 = nullptr;
  ir::Value* zp3 = nullptr;
  auto scales2d = [&] {
    if (scales == nullptr) {
      scales = graph.addInitializer(graph.uniqueValueName(base + "_scales"),
                                    ir::Tensor::fromVector(ir::DataType::kFloat, {q.rows, q.blocks}, q.scales));
    }
    return scales;
  };
  int64_t consumers = 0;
  for (const Target& t : s.targets) {
    ir::Node* n = t.node;
    ir::Value* y = n->output(0);
    const std::string name = n->name().empty() ? y->name() : n->name();
    if (t.use == Use::kGather) {
      const ir::Value* ids = n->input(1);
      if (!ids->type().shape) {
        ctx.note("quantize-weights: " + n->describe() + " stays float: the rank of its indices is unknown");
        continue;
      }
      const int64_t r = static_cast<int64_t>(ids->type().shape->size());
      if (scales3 == nullptr) {
        if (s.targets.size() > 1) {
          ir::Value* shape = graph.addInitializer(graph.uniqueValueName(base + "_scales_shape3"),
                                                  ir::Tensor::fromVector(ir::DataType::kInt64, {3}, std::vector<int64_t>{q.rows, q.blocks, 1}));
          ir::Node* rs = graph.addNode("Reshape", {scales2d(), shape}, {base + "_scales3"}, graph.uniqueNodeName(base + "_scales_Reshape"), "", n);
          rs->output(0)->mutableType().dtype = ir::DataType::kFloat;
          scales3 = rs->output(0);
        } else {
          scales3 = graph.addInitializer(graph.uniqueValueName(base + "_scales3"),
                                         ir::Tensor::fromVector(ir::DataType::kFloat, {q.rows, q.blocks, 1}, q.scales));
        }
        if (!q.symmetric) {
          std::vector<uint8_t> z(q.zeroPoints);
          zp3 = graph.addInitializer(graph.uniqueValueName(base + "_zero_points3"), ir::Tensor::fromVector(ir::DataType::kUint8, {q.rows, q.blocks, 1}, z));
        }
      }
      std::vector<ir::Value*> inputs{b, n->input(1), scales3};
      if (zp3 != nullptr) inputs.push_back(zp3);
      ir::Node* g = graph.addNode("GatherBlockQuantized", inputs, {name + "_gbq"}, graph.uniqueNodeName(name + "_GatherBlockQuantized"), kMsDomain, n);
      g->setAttribute(ir::Attribute::makeInt("gather_axis", 0));
      g->setAttribute(ir::Attribute::makeInt("quantize_axis", 2));
      g->setAttribute(ir::Attribute::makeInt("block_size", q.block));
      g->setAttribute(ir::Attribute::makeInt("bits", q.bits));
      g->output(0)->mutableType().dtype = ir::DataType::kFloat;
      std::vector<int64_t> shape(static_cast<size_t>(r), 0);
      shape.push_back(q.blocks * q.block);
      ir::Value* shapeV = graph.addInitializer(graph.uniqueValueName(name + "_gbq_shape"),
                                               ir::Tensor::fromVector(ir::DataType::kInt64, {r + 1}, shape));
      ir::Node* rs = graph.addNode("Reshape", {g->output(0), shapeV}, {name + "_gbq_rows"}, graph.uniqueNodeName(name + "_gbq_Reshape"), "", n);
      rs->output(0)->mutableType().dtype = ir::DataType::kFloat;
      ir::Value* out = rs->output(0);
      if (q.blocks * q.block != q.k) {
        auto i64 = [&](const std::string& suffix, int64_t v) {
          return graph.addInitializer(graph.uniqueValueName(name + suffix), ir::Tensor::fromVector(ir::DataType::kInt64, {1}, std::vector<int64_t>{v}));
        };
        ir::Node* sl = graph.addNode("Slice", {out, i64("_gbq_start", 0), i64("_gbq_end", q.k), i64("_gbq_axis", -1)}, {name + "_gbq_sliced"},
                                     graph.uniqueNodeName(name + "_gbq_Slice"), "", n);
        sl->output(0)->mutableType().dtype = ir::DataType::kFloat;
        out = sl->output(0);
      }
      out->mutableType() = y->type();
      graph.replaceAllUsesWith(y, out);
      graph.eraseNode(n);
      ++consumers;
      continue;
    }
    // MatMul / Gemm.
    ir::Value* bias = nullptr;
    if (n->opType() == "Gemm" && n->input(2) != nullptr) {
      const ir::Tensor* c = constantOf(n->input(2));
      if (c == nullptr || c->dtype() != ir::DataType::kFloat || c->numel() != q.rows || n->attrFloat("beta", 1.0f) != 1.0f) {
        WH_RETURN_IF_ERROR(ctx.fallback("quantize-weights: " + n->describe() +
                                        " stays float: MatMulNBits takes a bias of N values with beta = 1 only"));
        continue;
      }
      ir::Tensor flat(ir::DataType::kFloat, {q.rows});
      std::memcpy(flat.mutableRawData(), c->rawData(), static_cast<size_t>(q.rows) * sizeof(float));
      bias = graph.addInitializer(graph.uniqueValueName(name + "_bias"), std::move(flat));
    }
    if (zp == nullptr && !q.symmetric) {
      zp = graph.addInitializer(graph.uniqueValueName(base + "_zero_points"), quant::packMatMulNBitsZeroPoints(q));
    }
    std::vector<ir::Value*> inputs{n->input(0), b, scales2d(), zp};
    if (bias != nullptr) {
      inputs.push_back(nullptr);
      inputs.push_back(bias);
    }
    while (!inputs.empty() && inputs.back() == nullptr) inputs.pop_back();
    ir::Node* mm = graph.addNode("MatMulNBits", inputs, {name + "_nbits_out"}, graph.uniqueNodeName(name + "_MatMulNBits"), kMsDomain, n);
    mm->setAttribute(ir::Attribute::makeInt("K", q.k));
    mm->setAttribute(ir::Attribute::makeInt("N", q.rows));
    mm->setAttribute(ir::Attribute::makeInt("bits", q.bits));
    mm->setAttribute(ir::Attribute::makeInt("block_size", q.block));
    mm->setAttribute(ir::Attribute::makeInt("accuracy_level", config_.accuracyLevel));
    mm->output(0)->mutableType() = y->type();
    graph.replaceAllUsesWith(y, mm->output(0));
    graph.eraseNode(n);
    ++consumers;
  }
  if (s.value->hasUses()) {
    WH_RETURN_IF_ERROR(ctx.fallback("quantize-weights: '" + base +
                                    "' keeps its float copy beside the quantized one: other nodes read it as it is"));
  }
  ctx.stats().counters["consumers-rewritten-nbits"] += consumers;
  return Status::ok();
}

Status QuantizeWeights::run(ir::Model& model, PassContext& ctx) {
  WH_RETURN_IF_ERROR(quant::checkBlockConfig(config_.block));
  const bool calibrated = config_.method != "rtn";
  if (calibrated && ctx.calibration == nullptr) {
    return invalidInput("quantize-weights: method=" + config_.method +
                        " needs calibration data for the layer inputs: whittle optimize --calib DATA");
  }
  bool nbits = config_.matmulNBits;
  int64_t nonConstant = 0;
  std::vector<Target> targets = findTargets(*model.graph, nonConstant);
  // A half model (float16/bfloat16 weights and compute, as LLMs are often exported): widened to
  // float32 first, so that its weights can be quantized; its inputs and outputs keep their types.
  if (targets.empty()) {
    WH_ASSIGN_OR_RETURN(bool widened, widenHalfForQuantizing(model, ctx, "quantize-weights"));
    if (widened) {
      nonConstant = 0;
      targets = findTargets(*model.graph, nonConstant);
    }
  }
  if (targets.empty()) {
    ctx.note("quantize-weights: no MatMul/Gemm/Gather with a constant 2-D float weight to quantize");
    return Status::ok();
  }
  if (!nbits && model.opsetVersion("") < 21) {
    auto up = upgradeOpset(model, 21);
    if (up.isOk()) {
      ctx.note("quantize-weights: upgraded the model for block-wise DequantizeLinear, " + up->summary());
    } else {
      WH_RETURN_IF_ERROR(ctx.fallback("quantize-weights: " + up.status().message() +
                                      "; block-wise DequantizeLinear needs opset 21, so the weights go to com.microsoft "
                                      "MatMulNBits/GatherBlockQuantized instead"));
      nbits = true;
    }
    nonConstant = 0;
    targets = findTargets(*model.graph, nonConstant);
  }
  ir::Graph& graph = *model.graph;
  // Sources: one per constant weight, however many consumers read it.
  std::map<ir::Value*, Source> sources;
  std::set<ir::Value*> conflicting;
  for (const Target& t : targets) {
    const bool kn = t.use == Use::kMatMul;
    Source& s = sources[t.source];
    if (s.value == nullptr) {
      s.value = t.source;
      s.kn = kn;
    } else if (s.kn != kn) {
      conflicting.insert(t.source);
    }
    s.targets.push_back(t);
    if (t.use != Use::kGather && s.statsInput == nullptr) s.statsInput = t.node->input(0);
  }
  for (ir::Value* v : conflicting) {
    ctx.note("quantize-weights: '" + v->name() + "' stays float: its consumers read it both as [K, N] and as [N, K]");
    sources.erase(v);
  }
  for (auto& [v, s] : sources) {
    const ir::Tensor& t = *constantOf(v);
    const int64_t d0 = t.dims()[0], d1 = t.dims()[1];
    const float* src = t.data<float>();
    s.rows = s.kn ? d1 : d0;
    s.k = s.kn ? d0 : d1;
    s.w.resize(static_cast<size_t>(s.rows * s.k));
    if (s.kn) {
      for (int64_t i = 0; i < d0; ++i) {
        for (int64_t j = 0; j < d1; ++j) s.w[static_cast<size_t>(j * d0 + i)] = src[i * d1 + j];
      }
    } else {
      std::copy(src, src + d0 * d1, s.w.begin());
    }
  }
  tableShapes_.clear();
  for (const auto& [v, s] : sources) {
    for (const Target& t : s.targets) {
      if (t.use == Use::kGather) tableShapes_.insert({s.rows, s.k});
    }
  }
  // Statistics of the MatMul inputs, one streaming calibration run over the float model.
  std::map<ir::Value*, std::unique_ptr<quant::InputStatsCollector>> stats;
  if (ctx.calibration != nullptr) {
    std::map<std::string, quant::TensorCollector*> collectors;
    for (auto& [v, s] : sources) {
      if (s.statsInput == nullptr || stats.contains(s.statsInput)) continue;
      auto c = std::make_unique<quant::InputStatsCollector>(s.k, /*secondMoment=*/true);
      collectors[s.statsInput->name()] = c.get();
      stats[s.statsInput] = std::move(c);
    }
    if (!collectors.empty()) {
      auto ran = ctx.calibration->collect(model, collectors);
      if (!ran.isOk()) {
        if (calibrated) return ran.status().withContext("quantize-weights: collecting the layer input statistics");
        WH_RETURN_IF_ERROR(ctx.fallback("quantize-weights: RTN without activation weighting: " + ran.status().message()));
        stats.clear();
      } else {
        ctx.stats().counters["calibration-samples"] = *ran;
      }
    }
  }
  if (config_.method == "awq") WH_RETURN_IF_ERROR(applyAwq(graph, sources, stats, ctx));
  // Quantize each source once. Groups of the sources that read one input with the same
  // scaling (q/k/v, gate/up) share its second moment and GPTQ's factor; groups run in parallel.
  std::map<std::pair<const ir::Value*, const Source*>, std::vector<Source*>> groupOf;
  for (auto& [v, s] : sources) {
    const bool shared = s.statsInput != nullptr && stats.contains(s.statsInput) && s.inputScale.empty();
    groupOf[{shared ? s.statsInput : nullptr, shared ? nullptr : &s}].push_back(&s);
  }
  std::vector<const std::vector<Source*>*> groups;
  for (const auto& [key, members] : groupOf) groups.push_back(&members);
  std::vector<Status> failed(groups.size());
  int64_t gptqFallbacks = 0, unweighted = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : gptqFallbacks, unweighted)
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::vector<Source*>& members = *groups[g];
    const Source& first = *members.front();
    const quant::InputStatsCollector* st =
        first.statsInput != nullptr && stats.contains(first.statsInput) ? stats.at(first.statsInput).get() : nullptr;
    std::vector<double> h = st != nullptr ? st->secondMoment() : std::vector<double>{};
    const int64_t k = first.k;
    if (!h.empty() && !first.inputScale.empty()) {  // x / s: H -> diag(1/s) H diag(1/s)
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t j = 0; j < k; ++j) {
          h[static_cast<size_t>(i * k + j)] /= static_cast<double>(first.inputScale[static_cast<size_t>(i)]) *
                                               static_cast<double>(first.inputScale[static_cast<size_t>(j)]);
        }
      }
    }
    std::vector<float> importance;
    for (int64_t i = 0; i < k && !h.empty(); ++i) importance.push_back(static_cast<float>(h[static_cast<size_t>(i * k + i)]));
    std::optional<quant::GptqFactor> factor;
    if (config_.method == "gptq" && !h.empty()) {
      auto f = quant::factorGptq(h, k, config_.gptq);
      if (!f.isOk()) {
        failed[g] = f.status();
        continue;
      }
      factor = std::move(*f);
    }
    for (Source* s : members) {
      if (factor) {
        auto q = quant::quantizeGptq(s->w, s->rows, s->k, h, *factor, blockConfigOf(*s), config_.gptq);
        if (!q.isOk()) {
          failed[g] = q.status();
          break;
        }
        s->q = std::move(*q);
        continue;
      }
      if (config_.method == "gptq") ++gptqFallbacks;
      quant::BlockConfig rtn = blockConfigOf(*s);
      if (config_.clipAuto && importance.empty() && rtn.clipSearch) {
        // Unweighted, the search minimises the weights' own error and clips the rare large weights
        // that carry the most signal (SmolLM2 4-bit RTN: perplexity 51.64 with it, 47.86 without).
        rtn.clipSearch = false;
        ++unweighted;
      }
      s->q = quant::quantizeRtn(s->w, s->rows, s->k, rtn, importance);
    }
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!failed[g].isOk()) return failed[g].withContext("quantize-weights: '" + groups[g]->front()->value->name() + "'");
  }
  if (gptqFallbacks > 0) {
    ctx.note("quantize-weights: " + std::to_string(gptqFallbacks) +
             " weight(s) read by Gather alone have no layer input statistics: RTN instead of GPTQ");
  }
  if (unweighted > 0) {
    ctx.note("quantize-weights: " + std::to_string(unweighted) +
             " weight(s) without layer input statistics: round-to-nearest without the clipping search "
             "(clip-search=auto; clip-search=true forces it)");
  }
  int64_t bytesBefore = 0, quantized = 0;
  for (auto& [v, s] : sources) {
    bytesBefore += static_cast<int64_t>(constantOf(v)->byteSize());
    if (nbits) {
      WH_RETURN_IF_ERROR(emitMatMulNBits(graph, s, ctx));
    } else {
      WH_RETURN_IF_ERROR(emitQdq(graph, s, ctx));
    }
    quantized += static_cast<int64_t>(s.targets.size());
  }
  if (nbits) model.setOpsetVersion(kMsDomain, 1);
  bool matmulQdq = false;
  for (const auto& [v, s] : sources) {
    for (const Target& t : s.targets) matmulQdq = matmulQdq || (!nbits && t.use != Use::kGather);
  }
  if (matmulQdq) {
    // The weights are exact as emitted; the runtime that reads them may not be (benchmarks/RESULTS.md:
    // SmolLM2 8-bit weights cost +0.08 % perplexity in float, +1.3 % through that fusion).
    ctx.note("quantize-weights: ONNX Runtime fuses DequantizeLinear -> MatMul into MatMulNBits with int8 activations "
             "unless session.qdq_matmulnbits_accuracy_level is 0 or 1 (its default, 4, adds that activation error); "
             "format=matmulnbits with accuracy-level=0 keeps float activations");
  }
  if (nonConstant > 0) {
    ctx.note("quantize-weights: " + std::to_string(nonConstant) +
             " MatMul/Gemm left float: their weight is not a constant (activation x activation, as in attention)");
  }
  ctx.stats().rewrites = quantized;
  ctx.stats().counters["weights-quantized"] = static_cast<int64_t>(sources.size());
  ctx.stats().counters["consumers-rewritten"] = quantized;
  ctx.stats().counters["float-weight-bytes"] = bytesBefore;
  removeDeadNodes(graph);
  return graph.topologicalSort();
}

}  // namespace

Expected<std::unique_ptr<Pass>> makeQuantizeWeights(const QuantizeWeightsOptions& options) {
  Config c;
  c.block.bits = static_cast<int>(options.bits);
  c.block.block = options.block;
  c.block.symmetric = options.symmetric;
  c.block.clipSearch = options.clipSearch != "false";
  c.clipAuto = options.clipSearch == "auto";
  WH_RETURN_IF_ERROR(quant::checkBlockConfig(c.block));
  c.embeddingBlock = c.block;
  if (options.embeddingBits != 0) c.embeddingBlock.bits = static_cast<int>(options.embeddingBits);
  WH_RETURN_IF_ERROR(quant::checkBlockConfig(c.embeddingBlock));
  c.method = options.method;
  c.matmulNBits = options.format == "matmulnbits";
  if (c.matmulNBits && (c.block.block == 0 || c.embeddingBlock.block == 0)) {
    return invalidInput("quantize-weights: format=matmulnbits needs a block size (16 to 256); block=0 is for format=qdq");
  }
  c.embeddings = options.embeddings;
  c.gptq.dampPercent = options.dampPercent;
  c.gptq.actOrder = options.actOrder;
  c.gptq.blockSize = options.gptqBlock;
  c.awqGrid = static_cast<int>(options.awqGrid);
  c.accuracyLevel = options.accuracyLevel;
  c.opTypes.insert(options.opTypes.begin(), options.opTypes.end());
  c.excludeOpTypes.insert(options.excludeOpTypes.begin(), options.excludeOpTypes.end());
  c.excludeNodes = options.excludeNodes;
  c.nodes = options.nodes;
  return std::unique_ptr<Pass>(std::make_unique<QuantizeWeights>(std::move(c)));
}

}  // namespace whittle::passes
