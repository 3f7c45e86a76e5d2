// quantize-weights: structure of both formats, the tied embedding quantized once, numerical
// closeness on whittle's runtime, ONNX Runtime running the emitted models against the
// dequantized reference (quantize_weights_ort.py), GPTQ and AWQ through the pass with a
// calibration provider (AWQ's 1/s folded into the preceding Mul), and option errors.
#include <catch2/catch.hpp>
#include <set>

#include "passes/calib_test_util.h"
#include "passes/pass_test_util.h"
#include "support/graph_queries.h"
#include "support/python.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/quant/calibration.h"
#include "whittle/runtime/session.h"

using namespace whittle;

namespace {

// ids[1, 6] -> Gather(E[40, 64]) + x -> MatMul(W1[64, 96]) -> Relu -> MatMul(W2[96, 64])
//   -> MatMul(., Transpose(E)) -> logits[1, 6, 40]: E is tied (Gather and LM head).
ir::Model tiedModel() {
  testing::GraphBuilder b(11);
  ir::Value* ids = b.input("ids", ir::DataType::kInt64, {1, 6});
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 6, 64});
  ir::Value* e = b.weight("embedding", {40, 64});
  ir::Value* h = b.node("Add", {b.node("Gather", {e, ids}, {ir::Attribute::makeInt("axis", 0)}, "embed"), x});
  ir::Value* a = b.node("Relu", {b.node("MatMul", {h, b.weight("w1", {64, 96})}, {}, "fc1")});
  ir::Value* c = b.node("MatMul", {a, b.weight("w2", {96, 64}, ir::DataType::kFloat, -0.2, 0.2)}, {}, "fc2");
  ir::Value* et = b.node("Transpose", {e}, {ir::Attribute::makeInts("perm", {1, 0})}, "embedding_T");
  b.output(b.node("MatMul", {c, et}, {}, "lm_head"), ir::DataType::kFloat, {1, 6, 40});
  return b.build(17);
}

// x[4, 64] -> Gemm(x, W[48, 64], c[48], transB = 1) -> y
ir::Model gemmModel() {
  testing::GraphBuilder b(12);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {4, 64});
  b.output(b.node("Gemm", {x, b.weight("wg", {48, 64}), b.weight("cg", {48})}, {ir::Attribute::makeInt("transB", 1)}, "gemm"),
           ir::DataType::kFloat, {4, 48});
  return b.build(17);
}

int64_t floatInitializerElements(const ir::Graph& g) {
  int64_t n = 0;
  for (const ir::Value* v : g.initializers()) {
    if (v->constant()->dtype() == ir::DataType::kFloat) n = std::max(n, v->constant()->numel());
  }
  return n;
}

int64_t parameterBytes(const ir::Graph& g) {
  int64_t n = 0;
  for (const ir::Value* v : g.initializers()) n += static_cast<int64_t>(v->constant()->byteSize());
  return n;
}

}  // namespace

TEST_CASE("quantize-weights in QDQ form quantizes each weight once, the tied embedding included", "[passes][weights]") {
  ir::Model model = tiedModel();
  auto run = testing::runPipelineOn(model, "quantize-weights{bits=4,block=32}");
  const ir::Graph& g = *run.after.graph;
  CHECK(run.after.opsetVersion("") == 21);
  CHECK(testing::countOps(g, "DequantizeLinear") == 3);  // embedding, w1, w2
  CHECK(testing::countOps(g, "Gather") == 1);
  CHECK(testing::countOps(g, "Transpose") == 1);  // the LM head reads the one dequantized embedding
  CHECK(floatInitializerElements(g) < 40 * 64 / 8);  // only scales stay float
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == "DequantizeLinear") {
      CHECK(n->attrInt("block_size", 0) == 32);
      CHECK(n->input(0)->constant()->dtype() == ir::DataType::kInt4);
    }
  }
  CHECK(run.stats.back().counters.at("weights-quantized") == 3);
  CHECK(parameterBytes(g) < parameterBytes(*model.graph) / 5);
  // 4-bit blocks of 32 through three random layers: within 20 % (norm-relative; a wrong
  // layout or scale gives about 100 %), 8 bits within 1 %.
  testing::requireSameOutputs(model, run.after, 0.2);
  auto eight = testing::runPipelineOn(model, "quantize-weights{bits=8,block=0}");
  testing::requireSameOutputs(model, eight.after, 0.01);
}

TEST_CASE("quantize-weights widens a float16 model to float32 and quantizes its weights to 4 bits", "[passes][weights]") {
  // A float16 block, as LLMs are often exported: widened first (widen-half), then both weights
  // go to MatMulNBits; the model still reads and writes float16.
  testing::GraphBuilder b(12);
  ir::Value* x = b.input("x", ir::DataType::kFloat16, {1, 4, 64});
  ir::Value* h = b.node("MatMul", {x, b.constant("w1", b.randomTensor(ir::DataType::kFloat16, {64, 64}))}, {}, "up");
  ir::Value* y = b.node("MatMul", {b.node("Relu", {h}, {}, "act"),
                                   b.constant("w2", b.randomTensor(ir::DataType::kFloat16, {64, 32}))}, {}, "down");
  b.output(y, ir::DataType::kFloat16, {1, 4, 32});
  ir::Model model = b.build(17);
  auto run = testing::runPipelineOn(model, "quantize-weights{bits=4,block=32,format=matmulnbits}");
  const ir::Graph& g = *run.after.graph;
  CHECK(testing::countOps(g, "MatMulNBits") == 2);
  CHECK(g.inputs()[0]->dtype() == ir::DataType::kFloat16);
  CHECK(g.outputs()[0]->dtype() == ir::DataType::kFloat16);
  testing::requireSameOutputs(model, run.after, 0.2);  // 4-bit blocks of 32, as the float32 case above
}

TEST_CASE("quantize-weights in MatMulNBits form shares the tied embedding's packed weight", "[passes][weights]") {
  ir::Model model = tiedModel();
  auto run = testing::runPipelineOn(model, "quantize-weights{bits=4,block=32,format=matmulnbits}");
  const ir::Graph& g = *run.after.graph;
  CHECK(testing::countOps(g, "MatMulNBits") == 3);
  CHECK(testing::countOps(g, "GatherBlockQuantized") == 1);
  CHECK(testing::countOps(g, "MatMul") == 0);
  CHECK(run.after.opsetVersion("com.microsoft") == 1);
  const ir::Value* gatherData = nullptr;
  const ir::Value* headWeight = nullptr;
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == "GatherBlockQuantized") gatherData = n->input(0);
    if (n->opType() == "MatMulNBits" && n->attrInt("N", 0) == 40) headWeight = n->input(1);
  }
  REQUIRE(gatherData != nullptr);
  CHECK(gatherData == headWeight);
  CHECK(gatherData->constant()->dims() == std::vector<int64_t>{40, 2, 16});
  CHECK(floatInitializerElements(g) < 40 * 64 / 8);
}

TEST_CASE("quantize-weights' models run in ONNX Runtime and match the dequantized reference", "[passes][weights][interop]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime check (quantize_weights_ort.py)")) return;
  testing::TempDir dir;
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/quantize_weights_ort.py";
  struct Case {
    ir::Model model;
    std::string options;
  };
  std::vector<Case> cases;
  cases.push_back({tiedModel(), "bits=4,block=32"});
  cases.push_back({tiedModel(), "bits=4,block=64,symmetric=false"});  // K = 96: a short last block
  cases.push_back({tiedModel(), "bits=8,block=32,symmetric=false"});
  cases.push_back({tiedModel(), "bits=8,block=16"});
  cases.push_back({gemmModel(), "bits=4,block=16,symmetric=false"});
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].options);
    auto qdq = testing::runPipelineOn(cases[i].model, "quantize-weights{" + cases[i].options + "}");
    auto nbits = testing::runPipelineOn(cases[i].model, "quantize-weights{" + cases[i].options + ",format=matmulnbits}");
    const std::string a = dir.path() + "/qdq" + std::to_string(i) + ".onnx";
    const std::string b = dir.path() + "/nbits" + std::to_string(i) + ".onnx";
    REQUIRE(onnx_io::save(qdq.after, a).isOk());
    REQUIRE(onnx_io::save(nbits.after, b).isOk());
    std::string out;
    const int rc = testing::shell(testing::python() + " " + testing::shellQuote(script) + " " + testing::shellQuote(a) + " " +
                                      testing::shellQuote(b),
                                  &out);
    INFO(out);
    CHECK(rc == 0);
  }
}

TEST_CASE("quantize-weights with GPTQ and AWQ collects the layer inputs once", "[passes][weights][gptq][awq]") {
  ir::Model model = tiedModel();
  for (const std::string method : {"gptq", "awq"}) {
    INFO(method);
    ir::Model after = model.clone();
    testing::RandomInputsProvider provider(3);
    auto stats = testing::runWith(after, "quantize-weights{bits=4,block=32,method=" + method + "}", &provider);
    INFO(stats.status().message());
    REQUIRE(stats.isOk());
    CHECK(provider.calls == 1);
    CHECK(stats->back().counters.at("calibration-samples") == 24);
    REQUIRE(ir::verify(*after.graph).isOk());
    CHECK(testing::countOps(*after.graph, "DequantizeLinear") == 3);
    testing::requireSameOutputs(model, after, 0.2);
  }
}

TEST_CASE("AWQ folds 1/s into the preceding Mul by a constant and cuts the output error", "[passes][weights][awq]") {
  // x -> Mul(x, gamma[64]) -> MatMul(W[64, 32]): the RMSNorm-weight shape of a transformer.
  testing::GraphBuilder b(21);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {8, 64});
  ir::Value* gamma = b.weight("gamma", {64}, ir::DataType::kFloat, 0.5, 1.5);
  ir::Value* n = b.node("Mul", {x, gamma}, {}, "norm_weight");
  b.output(b.node("MatMul", {n, b.weight("w", {64, 32})}, {}, "proj"), ir::DataType::kFloat, {8, 32});
  ir::Model model = b.build(17);
  ir::Model awq = model.clone(), rtn = model.clone();
  testing::RandomInputsProvider p1(7), p2(7);
  auto s1 = testing::runWith(awq, "quantize-weights{bits=4,block=32,method=awq}", &p1);
  auto s2 = testing::runWith(rtn, "quantize-weights{bits=4,block=32,method=rtn,clip-search=false}", &p2);
  REQUIRE(s1.isOk());
  REQUIRE(s2.isOk());
  CHECK(s1->back().counters.at("awq-folded") == 1);
  CHECK(testing::countOps(*awq.graph, "Mul") == 1);  // no explicit Mul: gamma absorbed 1/s
  const ir::Tensor* g = nullptr;
  for (const ir::Node* node : awq.graph->nodes()) {
    if (node->opType() == "Mul") g = constantOf(node->input(1));
  }
  REQUIRE(g != nullptr);
  CHECK_FALSE(g->bitwiseEqual(*constantOf(gamma)));
  // On inputs with the same loud channel, AWQ's output error is below RTN's.
  auto feeds = testing::randomFeeds(model, 5);
  float* d = feeds[0].second.mutableData<float>();
  for (int64_t i = 7; i < feeds[0].second.numel(); i += 64) d[i] *= 30.0f;
  auto ref = testing::runModel(model, feeds);
  auto a = testing::runModel(awq, feeds);
  auto r = testing::runModel(rtn, feeds);
  const double ea = testing::normRelativeError(a[0].second, ref[0].second);
  const double er = testing::normRelativeError(r[0].second, ref[0].second);
  INFO("AWQ " << ea << ", RTN " << er);
  CHECK(ea < er);
}

TEST_CASE("quantize-weights refuses bad options and leaves non-constant weights float", "[passes][weights]") {
  ir::Model model = tiedModel();
  for (const std::string bad : {"quantize-weights{bits=5}", "quantize-weights{block=24}", "quantize-weights{bits=4,block=0}",
                                "quantize-weights{bits=8,block=0,format=matmulnbits}", "quantize-weights{method=foo}"}) {
    INFO(bad);
    ir::Model m = model.clone();
    CHECK_FALSE(testing::runWith(m, bad).isOk());
  }
  ir::Model m = model.clone();
  auto noCalib = testing::runWith(m, "quantize-weights{method=gptq}");
  REQUIRE_FALSE(noCalib.isOk());
  CHECK(noCalib.status().message().find("--calib") != std::string::npos);
  // Activation x activation: nothing to quantize, a note, the model unchanged.
  testing::GraphBuilder b(3);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {4, 8});
  ir::Value* y = b.input("y", ir::DataType::kFloat, {8, 4});
  b.output(b.node("MatMul", {x, y}), ir::DataType::kFloat, {4, 4});
  ir::Model act = b.build(17);
  testing::requireUnchanged(act, "quantize-weights");
}

TEST_CASE("quantize-weights clip-search=auto searches clipping only where layer inputs weight the error",
          "[passes][weights]") {
  // Without --calib the search would minimise the weights' own error, which clips the rare large
  // weights that carry most of a layer's signal: auto leaves RTN unclipped and says so.
  ir::Model base = tiedModel();
  auto codes = [](const ir::Model& m) {
    std::vector<ir::Tensor> out;
    for (const ir::Node* n : m.graph->nodes()) {
      if (n->opType() == "DequantizeLinear") out.push_back(*n->input(1)->constant());  // the block scales
    }
    return out;
  };
  auto scalesOf = [&](const std::string& clip, std::vector<std::string>* notes) {
    ir::Model m = base.clone();
    auto p = passes::parsePipeline("quantize-weights{bits=4,block=32,clip-search=" + clip + "}");
    REQUIRE(p.isOk());
    passes::PassContext ctx(m);
    REQUIRE(passes::runPipeline(m, *p, ctx, {}).isOk());
    if (notes != nullptr) *notes = ctx.notes();
    return codes(m);
  };
  std::vector<std::string> notes;
  auto automatic = scalesOf("auto", &notes);
  auto off = scalesOf("false", nullptr);
  auto on = scalesOf("true", nullptr);
  REQUIRE(automatic.size() == off.size());
  REQUIRE(automatic.size() == on.size());
  bool differsFromOn = false;
  for (size_t i = 0; i < automatic.size(); ++i) {
    CHECK(automatic[i].bitwiseEqual(off[i]));
    differsFromOn = differsFromOn || !automatic[i].bitwiseEqual(on[i]);
  }
  CHECK(differsFromOn);  // the search does clip some block of this model
  bool noted = false;
  for (const std::string& n : notes) noted = noted || n.find("without the clipping search") != std::string::npos;
  CHECK(noted);
}

TEST_CASE("quantize-weights names ONNX Runtime's int8-activation fusion of DequantizeLinear -> MatMul",
          "[passes][weights]") {
  // ONNX Runtime turns a block-wise DequantizeLinear -> MatMul into MatMulNBits at accuracy level 4
  // (int8 activations) unless told otherwise; the QDQ output says so, MatMulNBits output (its own
  // accuracy_level attribute) and a Gather-only quantization do not.
  auto notesOf = [](const std::string& pipeline) {
    ir::Model m = tiedModel();
    auto p = passes::parsePipeline(pipeline);
    REQUIRE(p.isOk());
    passes::PassContext ctx(m);
    REQUIRE(passes::runPipeline(m, *p, ctx, {}).isOk());
    bool fusion = false;
    for (const std::string& n : ctx.notes()) fusion = fusion || n.find("qdq_matmulnbits_accuracy_level") != std::string::npos;
    return fusion;
  };
  CHECK(notesOf("quantize-weights{bits=8,block=32}"));
  CHECK_FALSE(notesOf("quantize-weights{bits=8,block=32,format=matmulnbits}"));
  CHECK_FALSE(notesOf("quantize-weights{bits=8,block=32,op-types=Gather}"));
}
