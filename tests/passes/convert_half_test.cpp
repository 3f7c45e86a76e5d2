// convert-fp16 / convert-bf16: half weights and values, Casts only at type changes, the
// block list kept in float32, and on squeezenet1.1 the same top-1 as float32 at half the size.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "passes/pass_test_util.h"
#include "support/graph_queries.h"
#include "support/python.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "whittle/data/dataset.h"
#include "whittle/data/preprocess.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/quant/calibration.h"
#include "whittle/runtime/session.h"

using namespace whittle;

namespace {

// x -> Conv -> Relu -> CumSum (blocked by default) -> Add(bias) -> y
ir::Model convCumSum() {
  testing::GraphBuilder b(11);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 3, 3}), b.weight("b", {4})},
                        {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
  ir::Value* r = b.node("Relu", {c}, {}, "relu");
  ir::Value* s = b.node("CumSum", {r, b.constantInt64("axis", {}, {3})}, {}, "cumsum");
  ir::Value* y = b.node("Add", {s, b.weight("bias", {4, 1, 1})}, {}, "add");
  b.output(y, ir::DataType::kFloat, {1, 4, 8, 8});
  return b.build(17);
}

using testing::countOps;


// No Cast reads the output of another Cast.
bool hasCastPair(const ir::Graph& g) {
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == "Cast" && n->input(0)->producer() != nullptr && n->input(0)->producer()->opType() == "Cast") return true;
  }
  return false;
}

void requireOrtLoads(const ir::Model& model, const std::string& path) {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime check (convert_half_ort.py)")) return;
  REQUIRE(onnx_io::save(model, path).isOk());
  std::string cmd =
      testing::python() + " '" + std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/convert_half_ort.py' '" + path + "'";
  CHECK(std::system(cmd.c_str()) == 0);
}

}  // namespace

TEST_CASE("convert-fp16 converts weights and values, casting only at type changes", "[passes][convert-half]") {
  ir::Model model = convCumSum();
  auto run = testing::runPipelineOn(model, "convert-fp16");
  const ir::Graph& g = *run.after.graph;
  // Model input -> half, half -> float before CumSum, float -> half after it, half -> float output.
  CHECK(countOps(g, "Cast") == 4);
  CHECK_FALSE(hasCastPair(g));
  CHECK(g.inputs()[0]->dtype() == ir::DataType::kFloat);
  CHECK(g.outputs()[0]->dtype() == ir::DataType::kFloat);
  CHECK(g.outputs()[0]->name() == "add");
  const ir::Node* conv = testing::findNode(g, "conv");
  REQUIRE(conv != nullptr);
  CHECK(conv->input(0)->dtype() == ir::DataType::kFloat16);
  CHECK(conv->input(1)->constant()->dtype() == ir::DataType::kFloat16);
  CHECK(conv->input(2)->constant()->dtype() == ir::DataType::kFloat16);
  CHECK(conv->output(0)->dtype() == ir::DataType::kFloat16);
  const ir::Node* cumsum = testing::findNode(g, "cumsum");
  REQUIRE(cumsum != nullptr);
  CHECK(cumsum->input(0)->dtype() == ir::DataType::kFloat);
  CHECK(cumsum->output(0)->dtype() == ir::DataType::kFloat);
  // Every float value left is on the float32 side of a Cast or in the blocked CumSum.
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == "Cast" || n->name() == "cumsum") continue;
    for (const ir::Value* v : n->outputs()) CHECK(v->dtype() != ir::DataType::kFloat);
  }
  CHECK(run.stats.back().counters.at("weights-converted") == 4 * 3 * 3 * 3 + 4 + 4);
  CHECK(run.stats.back().counters.at("weights-clamped") == 0);
  CHECK(onnx_io::checkModel(run.after).status.isOk());
  testing::requireSameOutputs(model, run.after, /*tolerance=*/1e-2);
  testing::TempDir dir;
  requireOrtLoads(run.after, dir.file("fp16.onnx"));
}

TEST_CASE("convert-fp16 respects block-ops and block-nodes", "[passes][convert-half]") {
  ir::Model model = convCumSum();
  auto run = testing::runPipelineOn(model, "convert-fp16{block-ops=Relu,block-nodes=add}");
  const ir::Graph& g = *run.after.graph;
  CHECK(testing::findNode(g, "relu")->output(0)->dtype() == ir::DataType::kFloat);
  CHECK(testing::findNode(g, "add")->output(0)->dtype() == ir::DataType::kFloat);
  CHECK(testing::findNode(g, "cumsum")->output(0)->dtype() == ir::DataType::kFloat16);  // no longer blocked
  CHECK(testing::findNode(g, "conv")->output(0)->dtype() == ir::DataType::kFloat16);
  CHECK_FALSE(hasCastPair(g));
  // x -> half for conv, conv -> float for relu, relu -> half for cumsum, cumsum -> float for add.
  CHECK(countOps(g, "Cast") == 4);
  testing::requireSameOutputs(model, run.after, /*tolerance=*/1e-2);
}

TEST_CASE("convert-fp16 rewrites Cast-to-float, clamps big weights, keep-io-types=false", "[passes][convert-half]") {
  testing::GraphBuilder b(3);
  ir::Value* x = b.input("x", ir::DataType::kInt64, {2, 3});
  ir::Value* f = b.node("Cast", {x}, {ir::Attribute::makeInt("to", static_cast<int64_t>(ir::DataType::kFloat))}, "to_float");
  ir::Value* y = b.node("Mul", {f, b.constant("k", {3}, {0.5f, 1e6f, -2.0f})}, {}, "mul");
  b.output(y, ir::DataType::kFloat, {2, 3});
  ir::Model model = b.build(17);
  auto run = testing::runPipelineOn(model, "convert-fp16{keep-io-types=false}");
  const ir::Graph& g = *run.after.graph;
  CHECK(countOps(g, "Cast") == 1);  // only the model's own Cast, now to float16
  CHECK(testing::findNode(g, "to_float")->attrInt("to", 0) == static_cast<int64_t>(ir::DataType::kFloat16));
  CHECK(g.outputs()[0]->dtype() == ir::DataType::kFloat16);
  CHECK(run.stats.back().counters.at("weights-clamped") == 1);
  const ir::Tensor* k = testing::findNode(g, "mul")->input(1)->constant();
  REQUIRE(k != nullptr);
  CHECK(k->valueAsDouble(1) == 65504.0);
  CHECK(onnx_io::checkModel(run.after).status.isOk());
  auto out = testing::runModel(run.after, testing::randomFeeds(run.after, 5));
  CHECK(out[0].second.dtype() == ir::DataType::kFloat16);
}

TEST_CASE("convert-bf16 runs on the CPU runtime", "[passes][convert-half]") {
  ir::Model model = convCumSum();
  auto run = testing::runPipelineOn(model, "convert-bf16");
  const ir::Node* conv = testing::findNode(*run.after.graph, "conv");
  CHECK(conv->output(0)->dtype() == ir::DataType::kBFloat16);
  CHECK(conv->input(1)->constant()->dtype() == ir::DataType::kBFloat16);
  CHECK_FALSE(hasCastPair(*run.after.graph));
  testing::requireSameOutputs(model, run.after, /*tolerance=*/3e-2);
}

TEST_CASE("convert-fp16 on squeezenet1.1: same top-1 as float32, half the file, ONNX Runtime loads it",
          "[passes][convert-half][shared]") {
  auto path = testing::sharedPath("models/squeezenet1.1.onnx");
  if (!path) return;
  auto images = testing::sharedPath("data/imagenet-sample");
  if (!images) return;
  auto loaded = onnx_io::load(*path);
  REQUIRE(loaded.isOk());
  ir::Model model = std::move(loaded).value();
  // The model (IR 3) lists its weights as inputs too: -O1's initializers-to-constants makes them weights.
  auto run = testing::runPipelineOn(model, "initializers-to-constants,convert-fp16");
  CHECK(countOps(*run.after.graph, "Cast") == 2);
  CHECK_FALSE(hasCastPair(*run.after.graph));
  testing::TempDir dir;
  REQUIRE(onnx_io::save(model, dir.file("fp32.onnx")).isOk());
  requireOrtLoads(run.after, dir.file("fp16.onnx"));
  if (std::filesystem::exists(dir.file("fp16.onnx"))) {
    double ratio = static_cast<double>(std::filesystem::file_size(dir.file("fp16.onnx"))) /
                   static_cast<double>(std::filesystem::file_size(dir.file("fp32.onnx")));
    CAPTURE(ratio);
    CHECK(ratio <= 0.51);
  }

  data::DatasetSpec spec;
  spec.path = *images;
  spec.limit = 40;
  auto pre = data::parsePreprocessSpec("resize=256,crop=224,bgr,mean=104:117:123,layout=nchw");
  REQUIRE(pre.isOk());
  spec.preprocess = *pre;
  auto data = data::openDataset(spec, data::inputSpecs(*model.graph));
  INFO(data.status().message());
  REQUIRE(data.isOk());
  auto fp32 = runtime::Session::create(model);
  auto fp16 = runtime::Session::create(run.after);
  REQUIRE(fp32.isOk());
  REQUIRE(fp16.isOk());
  int agree = 0, total = 0;
  for (int64_t i = 0; i < (*data)->size(); ++i) {
    auto batch = (*data)->get(i);
    REQUIRE(batch.isOk());
    auto a = (*fp32)->run(batch->inputs);
    auto h = (*fp16)->run(batch->inputs);
    REQUIRE(a.isOk());
    REQUIRE(h.isOk());
    const ir::Tensor& ta = (*a)[0].second;
    const ir::Tensor& th = (*h)[0].second;
    REQUIRE(th.dtype() == ir::DataType::kFloat);
    int64_t besta = 0, besth = 0;
    for (int64_t k = 1; k < ta.numel(); ++k) {
      if (ta.valueAsDouble(k) > ta.valueAsDouble(besta)) besta = k;
      if (th.valueAsDouble(k) > th.valueAsDouble(besth)) besth = k;
    }
    agree += besta == besth ? 1 : 0;
    ++total;
  }
  CAPTURE(agree, total);
  CHECK(total == 40);
  CHECK(agree >= total - 1);  // at most one near-tie may flip
}

namespace {

/// Calibration samples for the tolerance mode: seeded random feeds of the model's inputs.
class FeedProvider final : public quant::CalibrationProvider {
 public:
  explicit FeedProvider(const ir::Model& model) : model_(model.clone()) {}
  Expected<quant::CalibrationTable> observe(const ir::Model&, const std::vector<std::string>&) override {
    return invalidInput("not used");
  }
  Expected<std::vector<std::vector<std::pair<std::string, ir::Tensor>>>> sampleFeeds(int64_t count) override {
    std::vector<std::vector<std::pair<std::string, ir::Tensor>>> feeds;
    for (int64_t i = 0; i < count && i < 3; ++i) feeds.push_back(testing::randomFeeds(model_, 100 + static_cast<uint64_t>(i)));
    return feeds;
  }

 private:
  ir::Model model_;
};

// x -> Mul(400) -> Mul(400) -> Mul(1/160000) -> Relu -> y: the middle value reaches 1.6e5,
// beyond float16's 65504.
ir::Model overflowingChain() {
  testing::GraphBuilder b(3);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 16});
  ir::Value* a = b.node("Mul", {x, b.constant("k1", {}, {400.0f})}, {}, "scale1");
  ir::Value* big = b.node("Mul", {a, b.constant("k2", {}, {400.0f})}, {}, "scale2");
  ir::Value* back = b.node("Mul", {big, b.constant("k3", {}, {1.0f / 160000.0f})}, {}, "scale3");
  b.output(b.node("Relu", {back}, {}, "relu"), ir::DataType::kFloat, {2, 16});
  return b.build(17);
}

}  // namespace

TEST_CASE("convert-fp16 tolerance keeps the nodes where half precision fails in float32", "[passes][convert-half]") {
  ir::Model model = overflowingChain();
  auto convertWith = [&](const std::string& text, passes::PassContext& ctx, ir::Model& m) {
    auto pipeline = passes::parsePipeline(text);
    REQUIRE(pipeline.isOk());
    auto stats = passes::runPipeline(m, *pipeline, ctx, {});
    INFO(stats.status().message());
    REQUIRE(stats.isOk());
    return std::move(stats).value();
  };
  const auto feeds = testing::randomFeeds(model, 7);
  const ir::Tensor expected = testing::runModel(model, feeds)[0].second;

  SECTION("without it the node that overflows converts, and its float16 value is infinite") {
    ir::Model plain = model.clone();
    passes::PassContext ctx(plain);
    convertWith("convert-fp16", ctx, plain);
    CHECK(testing::findNode(*plain.graph, "scale2")->output(0)->dtype() == ir::DataType::kFloat16);
    // The CPU runtime computes a float16 region in float32 and rounds where a value leaves it,
    // as ONNX Runtime's CPU does (the lowering's step F): the overflow shows in scale2's
    // value asked for as an output, in float16.
    runtime::SessionOptions options;
    options.extraOutputs = {"scale2"};
    auto session = runtime::Session::create(plain, options);
    REQUIRE(session.isOk());
    auto outputs = (*session)->run(feeds);
    REQUIRE(outputs.isOk());
    bool found = false, finite = true;
    for (const auto& [name, t] : *outputs) {
      if (name != "scale2") continue;
      found = true;
      CHECK(t.dtype() == ir::DataType::kFloat16);
      for (int64_t i = 0; i < t.numel(); ++i) finite = finite && std::isfinite(t.valueAsDouble(i));
    }
    CHECK(found);
    CHECK_FALSE(finite);
  }
  SECTION("with it the nodes that overflow stay float32, the others convert") {
    ir::Model mixed = model.clone();
    FeedProvider provider(model);
    passes::PassContext ctx(mixed);
    ctx.calibration = &provider;
    auto stats = convertWith("convert-fp16{tolerance=0.01}", ctx, mixed);
    // scale2 overflows; then scale3 would read its 1.6e5 through a Cast to half and overflow
    // in turn: the second round keeps it too.
    CHECK(stats.back().counters.at("nodes-kept-by-tolerance") == 2);
    for (const char* name : {"scale2", "scale3"}) {
      const ir::Node* n = testing::findNode(*mixed.graph, name);
      REQUIRE(n != nullptr);
      CHECK(n->output(0)->dtype() == ir::DataType::kFloat);
    }
    CHECK(testing::findNode(*mixed.graph, "scale1")->output(0)->dtype() == ir::DataType::kFloat16);
    CHECK(testing::findNode(*mixed.graph, "relu")->output(0)->dtype() == ir::DataType::kFloat16);
    CHECK_FALSE(hasCastPair(*mixed.graph));
    const ir::Tensor y = testing::runModel(mixed, feeds)[0].second;
    CHECK(testing::normRelativeError(y, expected) < 1e-2);
  }
  SECTION("calibration data alone keeps the nodes whose values leave float16's range") {
    ir::Model ranged = model.clone();
    FeedProvider provider(model);
    passes::PassContext ctx(ranged);
    ctx.calibration = &provider;
    auto stats = convertWith("convert-fp16", ctx, ranged);
    // scale2's output reaches 1.6e5 (> 8192): it stays float32, and so does scale3, which reads it.
    CHECK(stats.back().counters.at("nodes-kept-by-range") == 2);
    CHECK(stats.back().counters.at("nodes-kept-by-tolerance") == 0);
    for (const char* name : {"scale2", "scale3"}) CHECK(testing::findNode(*ranged.graph, name)->output(0)->dtype() == ir::DataType::kFloat);
    CHECK(testing::findNode(*ranged.graph, "scale1")->output(0)->dtype() == ir::DataType::kFloat16);
    CHECK(testing::findNode(*ranged.graph, "relu")->output(0)->dtype() == ir::DataType::kFloat16);
    int notes = 0;
    for (const std::string& n : ctx.notes()) {
      notes += n.find("Mul 'scale2' stays float32: its output") != std::string::npos ? 1 : 0;
      notes += n.find("Mul 'scale3' stays float32: it reads") != std::string::npos ? 1 : 0;
    }
    CHECK(notes == 2);
    const ir::Tensor y = testing::runModel(ranged, feeds)[0].second;
    CHECK(testing::normRelativeError(y, expected) < 1e-2);
  }
  SECTION("the range check runs on a model with a sequence output too") {
    // The chain's output also goes out as a one-element sequence (as a classifier's ZipMap
    // gives a sequence of maps): the float32 run returns it as a sequence, and the check
    // reads only the float tensors it asked for.
    testing::GraphBuilder b(3);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 16});
    ir::Value* a = b.node("Mul", {x, b.constant("k1", {}, {400.0f})}, {}, "scale1");
    ir::Value* big = b.node("Mul", {a, b.constant("k2", {}, {400.0f})}, {}, "scale2");
    ir::Value* back = b.node("Mul", {big, b.constant("k3", {}, {1.0f / 160000.0f})}, {}, "scale3");
    ir::Value* y = b.node("Relu", {back}, {}, "relu");
    b.output(y, ir::DataType::kFloat, {2, 16});
    b.output(b.node("SequenceConstruct", {y}, {}, "sequence"));
    ir::Model withSequence = b.build(17);
    FeedProvider provider(withSequence);
    passes::PassContext ctx(withSequence);
    ctx.calibration = &provider;
    auto stats = convertWith("convert-fp16", ctx, withSequence);
    CHECK(stats.back().counters.at("nodes-kept-by-range") == 2);
    for (const std::string& w : ctx.warnings()) {
      INFO(w);
      CHECK(w.find("no range check") == std::string::npos);
    }
    for (const char* name : {"scale2", "scale3"}) {
      CHECK(testing::findNode(*withSequence.graph, name)->output(0)->dtype() == ir::DataType::kFloat);
    }
    CHECK(testing::findNode(*withSequence.graph, "scale1")->output(0)->dtype() == ir::DataType::kFloat16);
  }
  SECTION("without calibration data it is an error naming the option") {
    ir::Model m = model.clone();
    passes::PassContext ctx(m);
    auto pipeline = passes::parsePipeline("convert-fp16{tolerance=0.01}");
    REQUIRE(pipeline.isOk());
    auto stats = passes::runPipeline(m, *pipeline, ctx, {});
    REQUIRE_FALSE(stats.isOk());
    CHECK(stats.status().message().find("tolerance needs calibration") != std::string::npos);
  }
}

namespace {

// Whether every float value `n` reads (explicitly or inside its subgraphs) and writes is float32.
bool allFloat32(const ir::Node& n) {
  auto isHalf = [](const ir::Value* v) {
    return v != nullptr && (v->dtype() == ir::DataType::kFloat16 || v->dtype() == ir::DataType::kBFloat16);
  };
  for (const ir::Value* v : n.inputs()) {
    if (isHalf(v)) return false;
  }
  for (const ir::Value* v : n.implicitInputs()) {
    if (isHalf(v) || v->dtype() != ir::DataType::kFloat) return false;
  }
  for (const ir::Value* v : n.outputs()) {
    if (isHalf(v)) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("convert-fp16/bf16 keep control flow and RNNs float32; ONNX Runtime runs every model they emit",
          "[passes][convert-half][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "to build the models and run them (convert_half_models.py)")) return;
  testing::TempDir dir;
  const std::string script = testing::shellQuote(std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/convert_half_models.py");
  std::string made;
  REQUIRE(testing::shell(testing::python() + " " + script + " make " + testing::shellQuote(dir.path()), &made) == 0);
  for (const char* name : {"if", "loop", "scan", "nested", "lstm", "gru", "rnn"}) {
    auto loaded = onnx_io::load(dir.file(std::string(name) + ".onnx"));
    INFO(name << ": " << loaded.status().message());
    REQUIRE(loaded.isOk());
    const ir::Model model = std::move(loaded).value();
    for (const char* pipeline : {"convert-fp16", "convert-fp16{keep-io-types=false}", "convert-bf16"}) {
      INFO(name << " " << pipeline);
      auto run = testing::runPipelineOn(model, pipeline);  // the ONNX checker after the pass, subgraphs included
      int kept = 0, converted = 0;
      for (const ir::Node* n : run.after.graph->nodes()) {
        const std::string& op = n->opType();
        if (n->hasSubgraphs() || op == "LSTM" || op == "GRU" || op == "RNN") {
          INFO(n->describe());
          CHECK(allFloat32(*n));
          ++kept;
        }
        for (const ir::Value* v : n->outputs()) {
          converted += v != nullptr && n->opType() != "Cast" && v->dtype() != ir::DataType::kFloat &&
                       v->dtype() != ir::DataType::kBool && v->dtype() != ir::DataType::kInt64;
        }
      }
      CHECK(kept == 1);
      CHECK(converted > 0);  // the ops around it are converted
      if (std::string(pipeline) == "convert-bf16") continue;  // ONNX Runtime's CPU provider has no bfloat16 kernels to run
      const std::string path = dir.file(std::string(name) + (std::string(pipeline) == "convert-fp16" ? ".fp16.onnx" : ".fp16io.onnx"));
      REQUIRE(onnx_io::save(run.after, path).isOk());
      std::string out;
      const int rc = testing::shell(testing::python() + " " + script + " check " +
                                        testing::shellQuote(dir.file(std::string(name) + ".onnx")) + " " +
                                        testing::shellQuote(path) + " 1e-2",
                                    &out);
      INFO(out);
      CHECK(rc == 0);
    }
  }
}

TEST_CASE("convert-fp16 keeps float32 a rank-3 Transpose that a MatMul reads; ONNX Runtime loads it optimized",
          "[passes][convert-half][ort]") {
  // ONNX Runtime 1.32 segfaults loading (ORT_ENABLE_ALL) a float16 Transpose(perm 1,0,2) -> MatMul.
  testing::GraphBuilder b(5);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 2, 192});
  ir::Value* t = b.node("Transpose", {x}, {ir::Attribute::makeInts("perm", {1, 0, 2})}, "transpose");
  ir::Value* m = b.node("MatMul", {t, b.weight("w", {192, 64})}, {}, "matmul");
  ir::Value* t2 = b.node("Transpose", {m}, {ir::Attribute::makeInts("perm", {1, 0, 2})}, "transpose_out");
  b.output(t2, ir::DataType::kFloat, {1, 2, 64});
  ir::Model model = b.build(17);
  auto run = testing::runPipelineOn(model, "convert-fp16");
  const ir::Graph& g = *run.after.graph;
  CHECK(testing::findNode(g, "transpose")->output(0)->dtype() == ir::DataType::kFloat);
  CHECK(testing::findNode(g, "matmul")->output(0)->dtype() == ir::DataType::kFloat16);
  CHECK(testing::findNode(g, "transpose_out")->output(0)->dtype() == ir::DataType::kFloat16);  // no MatMul reads it
  testing::requireSameOutputs(model, run.after, /*tolerance=*/1e-2);
  testing::TempDir dir;
  requireOrtLoads(run.after, dir.file("transpose_matmul.fp16.onnx"));
}

TEST_CASE("convert-fp16 keeps float32 a ScatterElements/ScatterND that reduces; ONNX Runtime runs the result",
          "[passes][convert-half][ort]") {
  // ONNX Runtime 1.32's CPU provider: "MLFloat16 data type is not supported with ScatterElements
  // opset 16 when reduction is 'add'" (MiniMol's message passing, minimol-v1 in the corpus).
  testing::GraphBuilder b(7);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {4, 3});
  ir::Value* u = b.input("u", ir::DataType::kFloat, {2, 3});
  ir::Value* h = b.node("Mul", {x, b.weight("w", {4, 3})}, {}, "mul");
  ir::Value* idx = b.constantInt64("idx", {2, 3}, {0, 1, 3, 2, 1, 0});
  ir::Value* sum = b.node("ScatterElements", {h, idx, u}, {ir::Attribute::makeString("reduction", "add")}, "scatter_add");
  ir::Value* rows = b.constantInt64("rows", {2, 1}, {1, 3});
  ir::Value* put = b.node("ScatterND", {sum, rows, u}, {}, "scatter_nd");  // no reduction: converted
  ir::Value* y = b.node("Relu", {put}, {}, "relu");
  b.output(y, ir::DataType::kFloat, {4, 3});
  ir::Model model = b.build(18);
  for (const char* reduction : {"add", "mul", "max", "min"}) {
    INFO(reduction);
    testing::findNode(*model.graph, "scatter_add")->setAttribute(ir::Attribute::makeString("reduction", reduction));
    auto run = testing::runPipelineOn(model, "convert-fp16");
    const ir::Graph& g = *run.after.graph;
    CHECK(testing::findNode(g, "scatter_add")->output(0)->dtype() == ir::DataType::kFloat);
    CHECK(testing::findNode(g, "mul")->output(0)->dtype() == ir::DataType::kFloat16);
    CHECK(testing::findNode(g, "scatter_nd")->output(0)->dtype() == ir::DataType::kFloat16);
    testing::requireSameOutputs(model, run.after, /*tolerance=*/1e-2);
    testing::TempDir dir;
    requireOrtLoads(run.after, dir.file(std::string("scatter_") + reduction + ".fp16.onnx"));
  }
}

TEST_CASE("convert-fp16 with calibration data keeps float32 the values float16 would hold as subnormals",
          "[passes][convert-half][ort]") {
  // ONNX Runtime's quantize_dynamic writes a MatMul as x -> DynamicQuantizeLinear ->
  // MatMulInteger -> Cast -> Mul by (x's scale * the weight's scale). That product is about
  // 8e-8 here, below float16's smallest normal 6.1e-5: in float16 it is 6e-8 or 1.2e-7 (one or
  // two steps of the smallest subnormal), and every output moves with it.
  testing::GraphBuilder b(5);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {4, 32});
  std::vector<ir::Value*> q = b.nodeN("DynamicQuantizeLinear", {x}, 3, {}, "dql");
  ir::Value* wq = b.weight("wq", {32, 8}, ir::DataType::kInt8, -127, 127);
  ir::Value* wz = b.weight("wz", {}, ir::DataType::kInt8, 0, 0);
  ir::Value* sums = b.node("MatMulInteger", {q[0], wq, q[2], wz}, {}, "mmi");
  ir::Value* f = b.node("Cast", {sums}, {ir::Attribute::makeInt("to", 1)}, "cast");
  ir::Value* scales = b.node("Mul", {q[1], b.constant("wscale", {}, {1e-5f})}, {}, "scales");
  ir::Value* y0 = b.node("Mul", {f, scales}, {}, "rescale");
  ir::Value* y = b.node("Add", {y0, b.weight("bias", {8}, ir::DataType::kFloat, -0.01, 0.01)}, {}, "add");
  b.output(y, ir::DataType::kFloat, {4, 8});
  ir::Model model = b.build(17);

  ir::Model converted = model.clone();
  FeedProvider provider(model);
  passes::PassContext ctx(converted);
  ctx.calibration = &provider;
  auto pipeline = passes::parsePipeline("convert-fp16");
  REQUIRE(pipeline.isOk());
  auto stats = passes::runPipeline(converted, *pipeline, ctx, {});
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  CHECK(testing::findNode(*converted.graph, "scales")->output(0)->dtype() == ir::DataType::kFloat);
  CHECK(testing::findNode(*converted.graph, "rescale")->output(0)->dtype() == ir::DataType::kFloat);
  CHECK(testing::findNode(*converted.graph, "add")->output(0)->dtype() == ir::DataType::kFloat16);
  int notes = 0;
  for (const std::string& n : ctx.notes()) notes += n.find("Mul 'scales' stays float32: its output") != std::string::npos ? 1 : 0;
  CHECK(notes == 1);
  // ONNX Runtime on both files: whittle's runtime computes a float16 region in float32 and
  // would not show the loss.
  if (!testing::requirePython("numpy, onnx, onnxruntime", "to run both models (convert_half_models.py)")) return;
  testing::TempDir dir;
  REQUIRE(onnx_io::save(model, dir.file("dynamic_matmul.onnx")).isOk());
  REQUIRE(onnx_io::save(converted, dir.file("dynamic_matmul.fp16.onnx")).isOk());
  std::string out;
  const int rc = testing::shell(testing::python() + " " +
                                    testing::shellQuote(std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/convert_half_models.py") +
                                    " check " + testing::shellQuote(dir.file("dynamic_matmul.onnx")) + " " +
                                    testing::shellQuote(dir.file("dynamic_matmul.fp16.onnx")) + " 2e-3",
                                &out);
  INFO(out);
  CHECK(rc == 0);
}
