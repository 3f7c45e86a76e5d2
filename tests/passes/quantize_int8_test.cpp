// quantize-int8: QDQ placement on small graphs (structure, weights int8 per channel, biases
// int32, Relu folded), selection options, the emitted model on whittle's runtime and in
// ONNX Runtime, and MNIST end to end.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <algorithm>
#include <iterator>
#include <map>
#include <sys/wait.h>

#include "passes/ort_outputs.h"
#include "passes/pass_test_util.h"
#include "support/graph_queries.h"
#include "quant/quant_test_util.h"
#include "support/python.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "whittle/common/file_util.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/quant/calibration.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;

namespace {

// x[1,3,8,8] -> Conv(4) -> Relu -> MaxPool -> Conv(6) -> GlobalAveragePool -> Flatten -> Gemm(5) -> y
ir::Model smallCnn() {
  testing::GraphBuilder b(21);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  ir::Value* c1 = b.node("Conv", {x, b.weight("w1", {4, 3, 3, 3}), b.weight("b1", {4}, ir::DataType::kFloat, -0.2, 0.2)},
                         {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv1");
  ir::Value* r1 = b.node("Relu", {c1}, {}, "relu1");
  ir::Value* p1 = b.node("MaxPool", {r1}, {ir::Attribute::makeInts("kernel_shape", {2, 2}), ir::Attribute::makeInts("strides", {2, 2})}, "pool1");
  ir::Value* c2 = b.node("Conv", {p1, b.weight("w2", {6, 4, 3, 3}), b.weight("b2", {6}, ir::DataType::kFloat, -0.2, 0.2)},
                         {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv2");
  ir::Value* g = b.node("GlobalAveragePool", {c2}, {}, "gap");
  ir::Value* f = b.node("Flatten", {g}, {}, "flatten");
  ir::Value* y = b.node("Gemm", {f, b.weight("wg", {5, 6}), b.weight("bg", {5}, ir::DataType::kFloat, -0.2, 0.2)},
                        {ir::Attribute::makeInt("transB", 1)}, "fc");
  b.output(y, ir::DataType::kFloat, {1, 5});
  return b.build(17);
}

struct Quantized {
  ir::Model model;
  std::vector<passes::PassStats> stats;
  std::vector<std::string> notes;
};

Quantized quantize(const ir::Model& model, const std::string& pipelineText, uint64_t seed = 3) {
  testing::TempDir dir;
  auto data = testing::randomCalibrationSet(model, dir, 16, seed);
  quant::StandardCalibrationProvider provider(std::nullopt, data.get(), {});
  auto pipeline = passes::parsePipeline(pipelineText);
  INFO(pipeline.status().message());
  REQUIRE(pipeline.isOk());
  Quantized q{model.clone(), {}, {}};
  passes::PassContext ctx(q.model);
  ctx.calibration = &provider;
  passes::PipelineRunOptions options;
  options.verifyEach = true;
  auto stats = passes::runPipeline(q.model, *pipeline, ctx, options);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  q.stats = *stats;
  q.notes = ctx.notes();
  Status verified = ir::verify(*q.model.graph);
  INFO(verified.message());
  REQUIRE(verified.isOk());
  return q;
}

const ir::Node* producerOf(const ir::Node& n, size_t input) {
  return n.input(input) != nullptr ? n.input(input)->producer() : nullptr;
}

const ir::Node* findNode(const ir::Graph& g, const std::string& op, const std::string& name = "") {
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == op && (name.empty() || n->name() == name)) return n;
  }
  return nullptr;
}

using testing::countOps;

// Signal-to-quantization-noise ratio of `q` against `ref`, in dB.
double sqnrDb(const ir::Tensor& q, const ir::Tensor& ref) {
  double err = testing::normRelativeError(q, ref);
  return -20.0 * std::log10(std::max(err, 1e-12));
}

// Whether quant_reference.py can run: a skip with a warning, or a failure under CI=true, if not.
bool haveOrt() {
  return testing::requirePython("numpy, onnxruntime", "for the ONNX Runtime check (quant_reference.py)");
}

std::string script() { return std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/quant_reference.py"; }

}  // namespace

TEST_CASE("quantize-int8 places QDQ pairs as ONNX Runtime's QDQ quantizer does", "[passes][quantize-int8]") {
  ir::Model model = smallCnn();
  Quantized q = quantize(model, "quantize-int8");
  const ir::Graph& g = *q.model.graph;
  // Relu folded into conv1's output range; every compute op reads dequantized values.
  CHECK(countOps(g, "Relu") == 0);
  for (std::string name : {"conv1", "conv2", "fc"}) {
    INFO(name);
    const ir::Node* n = findNode(g, name == "fc" ? "Gemm" : "Conv", name);
    REQUIRE(n != nullptr);
    for (size_t i = 0; i < 3; ++i) {
      const ir::Node* dq = producerOf(*n, i);
      REQUIRE(dq != nullptr);
      CHECK(dq->opType() == "DequantizeLinear");
    }
    // Weight: int8 initializer, per channel (axis 0 for Conv and for Gemm with transB=1).
    const ir::Node* wdq = producerOf(*n, 1);
    REQUIRE(wdq->input(0)->constant() != nullptr);
    CHECK(wdq->input(0)->constant()->dtype() == ir::DataType::kInt8);
    CHECK(wdq->attrInt("axis", 1) == 0);
    CHECK(wdq->input(1)->constant()->numel() == wdq->input(0)->constant()->dims()[0]);
    // Bias: int32 with scale = input scale x weight scale.
    const ir::Node* bdq = producerOf(*n, 2);
    CHECK(bdq->input(0)->constant()->dtype() == ir::DataType::kInt32);
    const ir::Node* xdq = producerOf(*n, 0);
    REQUIRE(xdq->opType() == "DequantizeLinear");
    float sx = xdq->input(1)->constant()->data<float>()[0];
    const ir::Tensor& sw = *wdq->input(1)->constant();
    const ir::Tensor& sb = *bdq->input(1)->constant();
    for (int64_t c = 0; c < sw.numel(); ++c) CHECK(sb.data<float>()[c] == Approx(sx * sw.data<float>()[c]));
    // The input comes through a Q -> DQ pair of uint8 with one scalar scale.
    const ir::Node* xq = producerOf(*xdq, 0);
    REQUIRE(xq != nullptr);
    CHECK(xq->opType() == "QuantizeLinear");
    CHECK(xq->input(2)->constant()->dtype() == ir::DataType::kUint8);
    // The output has exactly one user, a QuantizeLinear (ORT's fusion condition).
    REQUIRE(n->output(0)->uses().size() == 1);
    CHECK(n->output(0)->uses()[0].user->opType() == "QuantizeLinear");
  }
  // conv1's output range starts at 0 (the folded Relu): zero point 0.
  const ir::Node* c1 = findNode(g, "Conv", "conv1");
  const ir::Node* c1q = c1->output(0)->uses()[0].user;
  CHECK(c1q->input(2)->constant()->data<uint8_t>()[0] == 0);
  // MaxPool passes the quantized tensor through with the same parameters on both sides.
  const ir::Node* pool = findNode(g, "MaxPool");
  const ir::Node* poolInDq = producerOf(*pool, 0);
  const ir::Node* poolOutQ = pool->output(0)->uses()[0].user;
  REQUIRE(poolInDq->opType() == "DequantizeLinear");
  REQUIRE(poolOutQ->opType() == "QuantizeLinear");
  CHECK(poolInDq->input(1)->constant()->data<float>()[0] == poolOutQ->input(1)->constant()->data<float>()[0]);
  // The graph output keeps its name.
  CHECK(g.outputs()[0]->name() == model.graph->outputs()[0]->name());
  CHECK(g.outputs()[0]->producer()->opType() == "DequantizeLinear");
  // Accuracy on the runtime: the int8 simulation stays close to float.
  auto feeds = testing::randomFeeds(model, 99);
  auto a = testing::runModel(model, feeds);
  auto c = testing::runModel(q.model, feeds);
  CHECK(sqnrDb(c[0].second, a[0].second) > 25.0);
}

TEST_CASE("quantize-int8 output runs in ONNX Runtime, fused, close to whittle's runtime", "[passes][quantize-int8]") {
  if (!haveOrt()) return;
  ir::Model model = smallCnn();
  Quantized q = quantize(model, "quantize-int8");
  auto feeds = testing::randomFeeds(model, 5);
  const ir::Tensor ort = testing::ortOutput(q.model, feeds[0].second);
  auto mine = testing::runModel(q.model, feeds);
  // ORT runs real int8 kernels (requantizing in integers), whittle may simulate in float:
  // they differ by rounding of a few quantization steps at most.
  CHECK(testing::normRelativeError(mine[0].second, ort) < 0.05);
  testing::TempDir dir;
  REQUIRE(onnx_io::save(q.model, dir.file("q.onnx")).isOk());
  std::string ops =
      testing::python() + " '" + script() + "' ops '" + dir.file("q.onnx") + "' > '" + dir.file("ops.txt") + "'";
  REQUIRE(std::system(ops.c_str()) == 0);
  std::ifstream in(dir.file("ops.txt"));
  std::map<std::string, int> seen;
  for (std::string line; std::getline(in, line);) ++seen[line];
  CHECK(seen["QLinearConv"] == 2);
  CHECK(seen["QGemm"] == 1);
  CHECK(seen["Conv"] == 0);
}

TEST_CASE("quantize-int8 options: int8 activations, per-tensor, reduce-range, selection", "[passes][quantize-int8]") {
  ir::Model model = smallCnn();
  SECTION("int8 symmetric activations keep the Relu and use zero point 0") {
    Quantized q = quantize(model, "quantize-int8{activation-type=int8}");
    const ir::Graph& g = *q.model.graph;
    CHECK(countOps(g, "Relu") == 1);
    for (const ir::Node* n : g.nodes()) {
      if (n->opType() != "QuantizeLinear") continue;
      CHECK(n->input(2)->constant()->dtype() == ir::DataType::kInt8);
      CHECK(n->input(2)->constant()->data<int8_t>()[0] == 0);
    }
  }
  SECTION("per-tensor weights have one scale") {
    Quantized q = quantize(model, "quantize-int8{per-channel=false}");
    const ir::Node* wdq = producerOf(*findNode(*q.model.graph, "Conv", "conv2"), 1);
    CHECK(wdq->input(1)->constant()->numel() == 1);
    CHECK_FALSE(wdq->hasAttribute("axis"));
  }
  SECTION("reduce-range keeps weights within 7 bits and says so") {
    Quantized q = quantize(model, "quantize-int8{reduce-range=true}");
    const ir::Node* wdq = producerOf(*findNode(*q.model.graph, "Conv", "conv1"), 1);
    for (int8_t v : wdq->input(0)->constant()->values<int8_t>()) CHECK(std::abs(v) <= 63);
    bool noted = false;
    for (const std::string& n : q.notes) noted = noted || n.find("reduce-range") != std::string::npos;
    CHECK(noted);
  }
  SECTION("exclude-nodes by regex and op-types leave nodes in float") {
    Quantized q = quantize(model, "quantize-int8{exclude-nodes=conv[2-9]}");
    const ir::Node* c2 = findNode(*q.model.graph, "Conv", "conv2");
    CHECK(c2->input(1)->constant() != nullptr);  // float weight kept
    CHECK(c2->input(1)->constant()->dtype() == ir::DataType::kFloat);
    Quantized onlyConv = quantize(model, "quantize-int8{op-types=Conv}");
    const ir::Node* fc = findNode(*onlyConv.model.graph, "Gemm", "fc");
    CHECK(fc->input(1)->constant() != nullptr);
    Quantized noGemm = quantize(model, "quantize-int8{exclude-op-types=Gemm;MaxPool}");
    CHECK(findNode(*noGemm.model.graph, "Gemm", "fc")->input(1)->constant() != nullptr);
    CHECK(producerOf(*findNode(*noGemm.model.graph, "MaxPool"), 0)->opType() == "DequantizeLinear");
  }
  SECTION("float-nodes keep the node and its outputs float up to the next node with weights") {
    Quantized q = quantize(model, "quantize-int8{float-nodes=conv1}");
    const ir::Graph& g = *q.model.graph;
    const ir::Node* c1 = findNode(g, "Conv", "conv1");
    CHECK(c1->input(1)->constant() != nullptr);  // float weight
    CHECK(producerOf(*c1, 0) == nullptr);        // reads the graph input in float
    // Relu and MaxPool after it stay float: conv2 reads float and keeps int8 weights.
    CHECK(countOps(g, "Relu") == 1);
    const ir::Node* pool = findNode(g, "MaxPool");
    CHECK(producerOf(*pool, 0)->opType() == "Relu");
    const ir::Node* c2 = findNode(g, "Conv", "conv2");
    CHECK(producerOf(*c2, 0)->opType() == "MaxPool");
    CHECK(producerOf(*c2, 1)->opType() == "DequantizeLinear");
    CHECK(producerOf(*c2, 1)->input(0)->constant()->dtype() == ir::DataType::kInt8);
    // Its output is quantized again for what follows.
    CHECK(c2->output(0)->uses()[0].user->opType() == "QuantizeLinear");
    auto feeds = testing::randomFeeds(model, 17);
    CHECK(sqnrDb(testing::runModel(q.model, feeds)[0].second, testing::runModel(model, feeds)[0].second) > 20.0);
  }
  SECTION("every method gives a model that verifies and stays accurate") {
    auto feeds = testing::randomFeeds(model, 17);
    auto a = testing::runModel(model, feeds);
    for (std::string m : {"minmax", "percentile", "entropy", "mse"}) {
      INFO(m);
      Quantized q = quantize(model, "quantize-int8{method=" + m + "}");
      auto c = testing::runModel(q.model, feeds);
      CHECK(sqnrDb(c[0].second, a[0].second) > 20.0);
    }
  }
}

TEST_CASE("quantize-int8 without calibration data is an error that says what to give", "[passes][quantize-int8]") {
  ir::Model model = smallCnn();
  auto pipeline = passes::parsePipeline("quantize-int8");
  REQUIRE(pipeline.isOk());
  passes::PassContext ctx(model);
  auto stats = passes::runPipeline(model, *pipeline, ctx, {});
  REQUIRE_FALSE(stats.isOk());
  CHECK_THAT(stats.status().message(), Catch::Contains("--calib"));
  CHECK_FALSE(passes::parsePipeline("quantize-int8{method=kmeans}").isOk());
  CHECK_FALSE(passes::parsePipeline("quantize-int8{activation-type=int4}").isOk());
}

TEST_CASE("quantize-int8 never clips a graph output: its range is minmax whatever the method", "[passes][quantize-int8]") {
  // A clipped output saturates what the user reads (the winning class score): on MobileNetV2
  // percentile ranges clipped the top logits into ties (top-1 drop 2.00 pp; 1.56 pp unclipped).
  ir::Model model = smallCnn();
  auto outputScale = [](const Quantized& q) {
    const ir::Node* dq = q.model.graph->outputs()[0]->producer();
    REQUIRE(dq != nullptr);
    REQUIRE(dq->opType() == "DequantizeLinear");
    return dq->input(1)->constant()->data<float>()[0];
  };
  auto inputScale = [](const Quantized& q) {
    return producerOf(*findNode(*q.model.graph, "Conv", "conv2"), 0)->input(1)->constant()->data<float>()[0];
  };
  Quantized minmax = quantize(model, "quantize-int8{method=minmax}");
  for (std::string m : {"percentile,p=99", "mse"}) {
    INFO(m);
    Quantized q = quantize(model, "quantize-int8{method=" + m + "}");
    CHECK(outputScale(q) == outputScale(minmax));
    CHECK(inputScale(q) < inputScale(minmax));  // the method still chooses every other range
  }
}

TEST_CASE("quantize-int8 takes per-tensor overrides from a JSON file", "[passes][quantize-int8]") {
  ir::Model model = smallCnn();
  testing::TempDir dir;
  REQUIRE(writeFileAtomic(dir.file("o.json"), R"({"x": {"scale": 0.125, "zero_point": 100, "dtype": "uint8"}})").isOk());
  Quantized q = quantize(model, "quantize-int8{overrides=" + dir.file("o.json") + "}");
  const ir::Node* xdq = producerOf(*findNode(*q.model.graph, "Conv", "conv1"), 0);
  CHECK(xdq->input(1)->constant()->data<float>()[0] == 0.125f);
  CHECK(xdq->input(2)->constant()->data<uint8_t>()[0] == 100);
}

TEST_CASE("mnist-8 int8: calibrated on 100 test images, top-1 within 0.1 pp on all 10,000", "[passes][quantize-int8][mnist]") {
  auto modelPath = testing::sharedPath("models/mnist-8.onnx");
  if (!modelPath) return;
  auto dataPath = testing::sharedPath("data/mnist");
  if (!dataPath) return;
  auto loaded = onnx_io::load(*modelPath);
  REQUIRE(loaded.isOk());
  ir::Model model = std::move(loaded).value();
  data::DatasetSpec spec;
  spec.path = *dataPath;
  spec.limit = 100;
  auto calib = data::openDataset(spec, data::inputSpecs(*model.graph));
  INFO(calib.status().message());
  REQUIRE(calib.isOk());
  quant::StandardCalibrationProvider provider(std::nullopt, calib->get(), {});
  ir::Model q = model.clone();
  passes::PassContext ctx(q);
  ctx.calibration = &provider;
  auto pipeline = passes::pipelineForLevel(2);
  auto quantizePass = passes::parsePipeline("quantize-int8");
  REQUIRE(quantizePass.isOk());
  pipeline.push_back(quantizePass->front());
  auto stats = passes::runPipeline(q, pipeline, ctx, {});
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  CHECK(provider.table().samples == 100);

  spec.limit = -1;
  auto eval = data::openDataset(spec, data::inputSpecs(*model.graph));
  REQUIRE(eval.isOk());
  REQUIRE((*eval)->size() == 10000);
  auto fs = runtime::Session::create(model);
  auto qs = runtime::Session::create(q);
  REQUIRE(fs.isOk());
  REQUIRE(qs.isOk());
  auto argmax = [](const ir::Tensor& t) {
    const float* p = t.data<float>();
    return static_cast<int64_t>(std::max_element(p, p + t.numel()) - p);
  };
  int64_t correctF = 0, correctQ = 0;
  for (int64_t i = 0; i < (*eval)->size(); ++i) {
    auto batch = (*eval)->get(i);
    REQUIRE(batch.isOk());
    auto a = (*fs)->run(batch->inputs);
    auto c = (*qs)->run(batch->inputs);
    REQUIRE(a.isOk());
    REQUIRE(c.isOk());
    correctF += argmax((*a)[0].second) == batch->labels[0] ? 1 : 0;
    correctQ += argmax((*c)[0].second) == batch->labels[0] ? 1 : 0;
  }
  double accF = 100.0 * correctF / 10000.0, accQ = 100.0 * correctQ / 10000.0;
  INFO("fp32 " << accF << " %, int8 (whittle runtime) " << accQ << " %");
  CHECK(accF > 98.0);
  CHECK(accF - accQ <= 0.1);

  if (!haveOrt()) return;
  testing::TempDir dir;
  REQUIRE(onnx_io::save(q, dir.file("m8.int8.onnx")).isOk());
  std::string cmd = testing::python() + " '" + script() + "' mnist '" + dir.file("m8.int8.onnx") + "' '" + *dataPath +
                    "' > '" + dir.file("acc.txt") + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream in(dir.file("acc.txt"));
  std::string word;
  int64_t correct = 0, total = 0;
  in >> word >> correct >> total;
  REQUIRE(total == 10000);
  double accOrt = 100.0 * correct / 10000.0;
  INFO("int8 in ONNX Runtime " << accOrt << " %");
  CHECK(accF - accOrt <= 0.1);
}

TEST_CASE("whittle optimize --quantize: calibration errors, --save-calib and --load-calib", "[passes][quantize-int8][mnist]") {
  auto modelPath = testing::sharedPath("models/mnist-8.onnx");
  if (!modelPath) return;
  auto dataPath = testing::sharedPath("data/mnist");
  if (!dataPath) return;
  testing::TempDir dir;
  std::string bin = WHITTLE_BINARY;
  auto run = [&](const std::string& args) {
    std::string cmd = "'" + bin + "' optimize '" + *modelPath + "' " + args + " > '" + dir.file("out.txt") + "' 2> '" +
                      dir.file("err.txt") + "'";
    int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  auto stderrText = [&] {
    std::ifstream in(dir.file("err.txt"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // Static quantization without data: exit 2, one line.
  CHECK(run("-o '" + dir.file("a.onnx") + "' --quantize int8") == 2);
  std::string err = stderrText();
  CHECK_THAT(err, Catch::Contains("--calib"));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  // Calibrate once and save the table; reuse it with another method and no data.
  REQUIRE(run("-o '" + dir.file("a.onnx") + "' --quantize int8 --calib '" + *dataPath + "' --calib-size 20 --save-calib '" +
              dir.file("calib.json") + "' --json") == 0);
  auto table = quant::loadCalibrationTable(dir.file("calib.json"));
  REQUIRE(table.isOk());
  CHECK(table->samples == 20);
  CHECK(table->tensors.size() >= 4);  // input, two folded Relu outputs, Gemm output
  CHECK(run("-o '" + dir.file("b.onnx") + "' --quantize int8 --load-calib '" + dir.file("calib.json") +
            "' --calib-method entropy --per-tensor") == 0);
  auto b = onnx_io::load(dir.file("b.onnx"));
  REQUIRE(b.isOk());
  int quantizeNodes = 0;
  for (const ir::Node* n : b->graph->nodes()) quantizeNodes += n->opType() == "QuantizeLinear" ? 1 : 0;
  CHECK(quantizeNodes >= 4);
  // Dynamic needs no data.
  CHECK(run("-o '" + dir.file("d.onnx") + "' --quantize dynamic") == 0);
  CHECK(run("-o '" + dir.file("e.onnx") + "' --quantize int4") == 2);
}

TEST_CASE("quantize-int8 format=qoperator emits QLinear ops with Q/DQ only at the edges", "[passes][quantize-int8]") {
  // x -> Conv -> Relu -> Conv -> Add(residual) -> GlobalAveragePool -> Flatten -> MatMul -> y
  testing::GraphBuilder b(31);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
  ir::Value* c1 = b.node("Conv", {x, b.weight("w1", {4, 4, 3, 3}), b.weight("b1", {4})},
                         {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv1");
  ir::Value* r1 = b.node("Relu", {c1}, {}, "relu1");
  ir::Value* c2 = b.node("Conv", {r1, b.weight("w2", {4, 4, 1, 1}), b.weight("b2", {4})}, {}, "conv2");
  ir::Value* sum = b.node("Add", {c2, r1}, {}, "add");
  ir::Value* g = b.node("GlobalAveragePool", {sum}, {}, "gap");
  ir::Value* f = b.node("Flatten", {g}, {}, "flatten");
  ir::Value* y = b.node("MatMul", {f, b.weight("wm", {4, 3})}, {}, "fc");
  b.output(y, ir::DataType::kFloat, {1, 3});
  ir::Model model = b.build(17);
  Quantized q = quantize(model, "quantize-int8{format=qoperator}");
  const ir::Graph& graph = *q.model.graph;
  CHECK(countOps(graph, "QLinearConv") == 2);
  CHECK(countOps(graph, "QLinearAdd") == 1);
  CHECK(countOps(graph, "QLinearGlobalAveragePool") == 1);
  CHECK(countOps(graph, "QLinearMatMul") == 1);
  CHECK(countOps(graph, "Conv") == 0);
  CHECK(countOps(graph, "QuantizeLinear") == 1);  // the input
  CHECK(countOps(graph, "DequantizeLinear") == 1);  // the output
  CHECK(findNode(graph, "QLinearAdd")->domain() == "com.microsoft");
  CHECK(q.model.opsetVersion("com.microsoft") == 1);
  const ir::Node* conv = findNode(graph, "QLinearConv");
  CHECK(conv->input(3)->constant()->dtype() == ir::DataType::kInt8);
  CHECK(conv->input(8)->constant()->dtype() == ir::DataType::kInt32);
  CHECK(conv->attrInts("pads") == std::vector<int64_t>{1, 1, 1, 1});
  // Runs on whittle's runtime close to float.
  auto feeds = testing::randomFeeds(model, 2);
  auto a = testing::runModel(model, feeds);
  auto c = testing::runModel(q.model, feeds);
  CHECK(sqnrDb(c[0].second, a[0].second) > 20.0);
  if (!haveOrt()) return;
  const ir::Tensor ort = testing::ortOutput(q.model, feeds[0].second);
  CHECK(testing::normRelativeError(c[0].second, ort) < 0.05);
}

namespace {

// x -> Conv -> Resize(scales) -> Softmax (default axis 1: the opset-13 coercion) at `opset`.
// With `computedScales` the Resize's scales are an Add of two constants, which the opset-11
// form cannot take over for nearest (how opset 10 rounds depends on the scales).
ir::Model oldConvResize(int64_t opset, bool computedScales) {
  testing::GraphBuilder b(21);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 6, 6});
  ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 3, 3}), b.weight("b", {4}, ir::DataType::kFloat, -0.2, 0.2)},
                        {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
  ir::Value* scales = b.constant("scales", {4}, {1, 1, 2, 2});
  if (computedScales) scales = b.node("Add", {scales, b.constant("zero", {4}, {0, 0, 0, 0})}, {}, "scales_sum");
  ir::Value* r = b.node("Resize", {c, scales}, {ir::Attribute::makeString("mode", "nearest")}, "resize");
  b.output(b.node("Softmax", {r}, {}, "softmax"), ir::DataType::kFloat, {1, 4, 12, 12});
  return b.build(opset);
}

}  // namespace

TEST_CASE("quantize-int8 converts old models to opset 13 for per-channel weights", "[passes][quantize-int8]") {
  ir::Model model = oldConvResize(10, /*computedScales=*/false);
  Quantized q = quantize(model, "quantize-int8");
  CHECK(q.model.opsetVersion("") == 13);
  const ir::Node* conv = findNode(*q.model.graph, "Conv", "conv");
  REQUIRE(conv != nullptr);
  const ir::Node* wdq = producerOf(*conv, 1);
  REQUIRE(wdq != nullptr);
  CHECK(wdq->input(1)->constant()->numel() == 4);  // one scale per output channel
  bool noted = false;
  for (const std::string& n : q.notes) noted = noted || n.find("opset 10 -> 13") != std::string::npos;
  CHECK(noted);
  CHECK(countOps(*q.model.graph, "Flatten") == 1);  // Softmax's opset-10 meaning kept
}

TEST_CASE("quantize-int8 falls back to per tensor only with a warning, and not under strict", "[passes][quantize-int8]") {
  ir::Model model = oldConvResize(10, /*computedScales=*/true);
  testing::TempDir dir;
  auto data = testing::randomCalibrationSet(model, dir, 4, 5);
  quant::StandardCalibrationProvider provider(std::nullopt, data.get(), {});
  auto pipeline = passes::parsePipeline("quantize-int8");
  REQUIRE(pipeline.isOk());

  ir::Model lenient = model.clone();
  passes::PassContext ctx(lenient);
  ctx.calibration = &provider;
  auto ran = passes::runPipeline(lenient, *pipeline, ctx);
  INFO(ran.status().message());
  REQUIRE(ran.isOk());
  REQUIRE(ctx.warnings().size() == 1);
  CHECK_THAT(ctx.warnings()[0], Catch::Contains("per tensor") && Catch::Contains("Resize 'resize'"));
  CHECK(lenient.opsetVersion("") == 10);
  const ir::Node* conv = findNode(*lenient.graph, "Conv", "conv");
  REQUIRE(conv != nullptr);
  CHECK(producerOf(*conv, 1)->input(1)->constant()->numel() == 1);

  ir::Model strict = model.clone();
  passes::PassContext strictCtx(strict);
  strictCtx.calibration = &provider;
  strictCtx.strict = true;
  auto refused = passes::runPipeline(strict, *pipeline, strictCtx);
  REQUIRE_FALSE(refused.isOk());
  CHECK_THAT(refused.status().message(), Catch::Contains("per tensor") && Catch::Contains("--strict"));
}

TEST_CASE("quantize-int8 format=qoperator turns AveragePool into QLinearAveragePool, which ONNX Runtime runs",
          "[passes][quantize-int8]") {
  // x -> Conv -> Relu -> AveragePool 2x2 -> Conv -> GlobalAveragePool -> Flatten -> MatMul -> y: the
  // AveragePool group, QDQ-quantized by the pass, has a QOperator form (com.microsoft).
  testing::GraphBuilder b(41);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  ir::Value* c1 = b.node("Conv", {x, b.weight("w1", {8, 3, 3, 3}), b.weight("b1", {8})},
                         {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv1");
  ir::Value* r1 = b.node("Relu", {c1}, {}, "relu1");
  ir::Value* ap = b.node("AveragePool", {r1}, {ir::Attribute::makeInts("kernel_shape", {2, 2}),
                                               ir::Attribute::makeInts("strides", {2, 2})},
                         "avgpool");
  ir::Value* c2 = b.node("Conv", {ap, b.weight("w2", {6, 8, 1, 1}), b.weight("b2", {6})}, {}, "conv2");
  ir::Value* g = b.node("GlobalAveragePool", {c2}, {}, "gap");
  ir::Value* f = b.node("Flatten", {g}, {}, "flatten");
  ir::Value* y = b.node("MatMul", {f, b.weight("wm", {6, 4})}, {}, "fc");
  b.output(y, ir::DataType::kFloat, {1, 4});
  ir::Model model = b.build(17);
  Quantized q = quantize(model, "quantize-int8{format=qoperator}");
  const ir::Graph& graph = *q.model.graph;
  CHECK(countOps(graph, "QLinearAveragePool") == 1);
  CHECK(countOps(graph, "AveragePool") == 0);
  CHECK(countOps(graph, "QLinearConv") == 2);
  CHECK(countOps(graph, "QuantizeLinear") == 1);
  CHECK(countOps(graph, "DequantizeLinear") == 1);
  CHECK(findNode(graph, "QLinearAveragePool")->domain() == "com.microsoft");
  auto feeds = testing::randomFeeds(model, 8);
  auto ref = runtime::Session::create(model);
  auto qs = runtime::Session::create(q.model);
  REQUIRE(ref.isOk());
  INFO(qs.status().message());
  REQUIRE(qs.isOk());
  auto a = (*ref)->run(feeds);
  auto c = (*qs)->run(feeds);
  REQUIRE(a.isOk());
  REQUIRE(c.isOk());
  CHECK(sqnrDb((*c)[0].second, (*a)[0].second) > 20.0);
  if (!haveOrt()) return;
  const ir::Tensor ort = testing::ortOutput(q.model, feeds[0].second);
  CHECK(testing::normRelativeError((*c)[0].second, ort) < 0.05);
}

const ir::Node* nodeNamed(const ir::Graph& g, const std::string& name) {
  for (const ir::Node* n : g.nodes()) {
    if (n->name() == name) return n;
  }
  return nullptr;
}

// The node `name`, whose output only a QuantizeLinear reads (a QDQ group's target).
const ir::Node* onlyReadByQuantize(const ir::Graph& g, const std::string& name) {
  const ir::Node* n = nodeNamed(g, name);
  REQUIRE(n != nullptr);
  REQUIRE(n->output(0)->uses().size() == 1);
  CHECK(n->output(0)->uses()[0].user->opType() == "QuantizeLinear");
  return n;
}

// The quantized model close to the float model on random inputs, in whittle's runtime and in
// ONNX Runtime.
void checkCloseToFloat(const ir::Model& model, const ir::Model& quantized) {
  auto feeds = testing::randomFeeds(model, 5);
  auto ref = testing::runModel(model, feeds);
  auto mine = testing::runModel(quantized, feeds);
  CHECK(testing::normRelativeError(mine[0].second, ref[0].second) < 0.05);
  if (!haveOrt()) return;
  const ir::Tensor ort = testing::ortOutput(quantized, feeds[0].second);
  CHECK(testing::normRelativeError(mine[0].second, ort) < 0.05);
}

// x -> {Conv -> SiLU (x * Sigmoid(x)), Conv -> HardSwish as x * Clip(x + 3, 0, 6) / 6}
//   -> Concat -> Resize (nearest) -> Conv -> y
ir::Model siluHardSwishCnn() {
  testing::GraphBuilder b(29);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  auto conv = [&](ir::Value* in, int64_t c, int64_t m, const std::string& name) {
    return b.node("Conv", {in, b.weight(name + "_w", {m, c, 3, 3}), b.weight(name + "_b", {m}, ir::DataType::kFloat, -0.2, 0.2)},
                  {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, name);
  };
  ir::Value* c1 = conv(x, 3, 4, "conv1");
  ir::Value* silu = b.node("Mul", {c1, b.node("Sigmoid", {c1}, {}, "sig")}, {}, "silu");
  ir::Value* c2 = conv(x, 3, 4, "conv2");
  ir::Value* clip = b.node("Clip", {b.node("Add", {c2, b.constant("three", {}, {3.0f})}, {}, "hs_add"),
                                    b.constant("zero", {}, {0.0f}), b.constant("six", {}, {6.0f})},
                           {}, "hs_clip");
  ir::Value* hs = b.node("Mul", {c2, b.node("Div", {clip, b.constant("six2", {}, {6.0f})}, {}, "hs_div")}, {}, "hs_mul");
  ir::Value* cat = b.node("Concat", {silu, hs}, {ir::Attribute::makeInt("axis", 1)}, "cat");
  ir::Value* up = b.node("Resize", {cat, nullptr, b.constant("scales", {4}, {1.0f, 1.0f, 2.0f, 2.0f})}, {}, "up");
  b.output(conv(up, 8, 2, "conv3"), ir::DataType::kFloat, {1, 2, 16, 16});
  return b.build(13);
}

TEST_CASE("quantize-int8 keeps SiLU, HardSwish chains, Concat and Resize between int8 tensors", "[passes][quantize-int8]") {
  ir::Model model = siluHardSwishCnn();
  Quantized q = quantize(model, "quantize-int8");
  const ir::Graph& g = *q.model.graph;
  // Sigmoid is a group of its own, the SiLU Mul reads two quantized tensors, and the end of the
  // HardSwish chain is quantized because the Concat reads it; Concat and Resize are groups.
  for (const char* name : {"sig", "silu", "hs_mul", "cat", "up"}) {
    CAPTURE(name);
    const ir::Node* n = onlyReadByQuantize(g, name);
    for (const ir::Value* in : n->inputs()) {
      if (in == nullptr || in->producer() == nullptr || in->isInitializer()) continue;
      if (std::string(name) == "hs_mul" && in->producer()->opType() == "Div") continue;  // inside the chain
      CHECK(in->producer()->opType() == "DequantizeLinear");
    }
  }
  // whittle's runtime runs it all in int8: two tables, QLinearConcat, Resize on bytes.
  ir::Model lowered = q.model.clone();
  runtime::lowerQdqGroups(*lowered.graph);
  CHECK(countOps(*lowered.graph, "QLinearLookup") == 2);
  CHECK(countOps(*lowered.graph, "QLinearConcat") == 1);
  CHECK(countOps(*lowered.graph, "QLinearConv") == 3);
  for (const char* gone : {"Sigmoid", "Mul", "Clip", "Div", "Concat", "DequantizeLinear"}) {
    CAPTURE(gone);
    CHECK(countOps(*lowered.graph, gone) == (std::string(gone) == "DequantizeLinear" ? 1 : 0));
  }
  const ir::Node* up = findNode(*lowered.graph, "Resize");
  REQUIRE(up != nullptr);
  CHECK(up->input(0)->producer()->opType() == "QLinearConcat");
  checkCloseToFloat(model, q.model);
}

// MTCNN's shape: x -> Conv -> PRelu (slope [C, 1, 1]) -> MaxPool -> Conv -> PRelu -> Flatten
//   -> Gemm -> PRelu (slope [C]) -> Gemm -> y
ir::Model preluCnn() {
  testing::GraphBuilder b(37);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 12, 12});
  auto conv = [&](ir::Value* in, int64_t c, int64_t m, const std::string& name) {
    return b.node("Conv", {in, b.weight(name + "_w", {m, c, 3, 3}), b.weight(name + "_b", {m}, ir::DataType::kFloat, -0.2, 0.2)},
                  {}, name);
  };
  auto slope = [&](const std::string& name, std::vector<int64_t> dims) {
    return b.weight(name, std::move(dims), ir::DataType::kFloat, 0.05, 0.5);
  };
  ir::Value* p1 = b.node("PRelu", {conv(x, 3, 10, "conv1"), slope("a1", {10, 1, 1})}, {}, "prelu1");
  ir::Value* m1 = b.node("MaxPool", {p1}, {ir::Attribute::makeInts("kernel_shape", {2, 2}), ir::Attribute::makeInts("strides", {2, 2})}, "pool1");
  ir::Value* p2 = b.node("PRelu", {conv(m1, 10, 12, "conv2"), slope("a2", {12, 1, 1})}, {}, "prelu2");
  ir::Value* f = b.node("Flatten", {p2}, {}, "flatten");
  ir::Value* g1 = b.node("Gemm", {f, b.weight("wg1", {16, 12 * 3 * 3}), b.weight("bg1", {16}, ir::DataType::kFloat, -0.2, 0.2)},
                         {ir::Attribute::makeInt("transB", 1)}, "fc1");
  ir::Value* p3 = b.node("PRelu", {g1, slope("a3", {16})}, {}, "prelu3");
  ir::Value* y = b.node("Gemm", {p3, b.weight("wg2", {4, 16}), b.weight("bg2", {4}, ir::DataType::kFloat, -0.2, 0.2)},
                        {ir::Attribute::makeInt("transB", 1)}, "fc2");
  b.output(y, ir::DataType::kFloat, {1, 4});
  return b.build(13);
}

TEST_CASE("quantize-int8 keeps PRelu with a slope per channel between int8 tensors", "[passes][quantize-int8]") {
  ir::Model model = preluCnn();
  Quantized q = quantize(model, "quantize-int8");
  const ir::Graph& g = *q.model.graph;
  // Each PRelu is a group: its input dequantized, its output quantized, its slope left float;
  // so the MaxPool and the Flatten after them move quantized tensors.
  for (const char* name : {"prelu1", "prelu2", "prelu3", "pool1", "flatten"}) {
    CAPTURE(name);
    const ir::Node* n = onlyReadByQuantize(g, name);
    CHECK(producerOf(*n, 0)->opType() == "DequantizeLinear");
    if (n->opType() == "PRelu") CHECK(n->input(1)->isInitializer());
  }
  // whittle's runtime runs every PRelu as QLinearPRelu: no float op between the convolutions.
  ir::Model lowered = q.model.clone();
  (void)ir::inferShapes(lowered);  // as the session does before lowering
  runtime::lowerQdqGroups(*lowered.graph);
  CHECK(countOps(*lowered.graph, "QLinearPRelu") == 3);
  CHECK(countOps(*lowered.graph, "PRelu") == 0);
  CHECK(countOps(*lowered.graph, "QLinearConv") == 2);
  checkCloseToFloat(model, q.model);
}

/// Whether the node named `name` exists and a QuantizeLinear reads its output.
bool hasQuantizedOutput(const ir::Graph& g, const std::string& name) {
  const ir::Node* n = nodeNamed(g, name);
  if (n == nullptr) return false;
  for (const ir::Value::Use& u : n->output(0)->uses()) {
    if (u.user->opType() == "QuantizeLinear") return true;
  }
  return false;
}

// ShuffleNet (v1, Caffe2 export)'s blocks: x -> Conv -> MaxPool -> {AveragePool, Conv} -> Concat
//   -> Relu -> Conv -> Sum(with the Relu) -> Relu -> Conv -> y
ir::Model shuffleBlocks() {
  testing::GraphBuilder b(41);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 16, 16});
  auto conv = [&](ir::Value* in, int64_t c, int64_t m, int64_t stride, const std::string& name) {
    return b.node("Conv", {in, b.weight(name + "_w", {m, c, 3, 3}), b.weight(name + "_b", {m}, ir::DataType::kFloat, -0.2, 0.2)},
                  {ir::Attribute::makeInts("pads", {1, 1, 1, 1}), ir::Attribute::makeInts("strides", {stride, stride})}, name);
  };
  auto pool = [&](const std::string& op, ir::Value* in, const std::string& name) {
    return b.node(op, {in}, {ir::Attribute::makeInts("kernel_shape", {3, 3}), ir::Attribute::makeInts("strides", {2, 2}),
                             ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, name);
  };
  ir::Value* m = pool("MaxPool", conv(x, 3, 6, 1, "conv0"), "maxpool");
  ir::Value* cat = b.node("Concat", {conv(m, 6, 6, 2, "conv1"), pool("AveragePool", m, "avgpool")},
                          {ir::Attribute::makeInt("axis", 1)}, "cat");
  ir::Value* r1 = b.node("Relu", {cat}, {}, "relu_cat");
  ir::Value* sum = b.node("Sum", {conv(r1, 12, 12, 1, "conv2"), r1}, {}, "sum");
  ir::Value* r2 = b.node("Relu", {sum}, {}, "relu_sum");
  b.output(conv(r2, 12, 4, 1, "conv3"), ir::DataType::kFloat, {1, 4, 4, 4});
  return b.build(13);
}

TEST_CASE("quantize-int8 keeps ShuffleNet's Sum shortcuts and Concat -> Relu int8", "[passes][quantize-int8]") {
  ir::Model model = shuffleBlocks();
  Quantized q = quantize(model, "quantize-int8");
  const ir::Graph& g = *q.model.graph;
  // The Sum is an Add group that absorbs its Relu; the Concat and the AveragePool are groups
  // because the Relu after the Concat is read by an int8 Conv (a table on the bytes).
  for (const ir::Node* n : g.nodes()) CHECK(n->name() != "relu_sum");  // folded into the Sum's range
  for (const char* name : {"avgpool", "cat", "relu_cat", "sum"}) {
    CAPTURE(name);
    CHECK(hasQuantizedOutput(g, name));
  }
  ir::Model lowered = q.model.clone();
  (void)ir::inferShapes(lowered);
  runtime::lowerQdqGroups(*lowered.graph);
  CHECK(countOps(*lowered.graph, "QLinearAdd") == 1);
  CHECK(countOps(*lowered.graph, "QLinearConcat") == 1);
  CHECK(countOps(*lowered.graph, "QLinearAveragePool") == 1);
  CHECK(countOps(*lowered.graph, "QLinearLookup") == 1);
  for (const char* gone : {"Sum", "Relu", "Concat", "AveragePool"}) {
    CAPTURE(gone);
    CHECK(countOps(*lowered.graph, gone) == 0);
  }
  checkCloseToFloat(model, q.model);
}

TEST_CASE("quantize-int8 keeps ShuffleNetV2's channel shuffle and split int8", "[passes][quantize-int8]") {
  // Yolo-FastestV2's unit: Concat(conv a, conv b) -> Reshape [C, 2, H*W] -> Transpose [2, C, H*W]
  // -> Reshape [2, 1, C, H, W] -> Gather 0 and Gather 1 (the halves) -> a Conv each. The Gathers
  // are data movement groups with their input's parameters, so the Concat and everything after it
  // carry Q/DQ pairs, and the lowering leaves no float op between the convolutions.
  testing::GraphBuilder b(43);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
  auto conv = [&](ir::Value* in, int64_t c, int64_t m, const std::string& name) {
    return b.node("Conv", {in, b.weight(name + "_w", {m, c, 1, 1}), b.weight(name + "_b", {m}, ir::DataType::kFloat, -0.2, 0.2)},
                  {}, name);
  };
  ir::Value* cat = b.node("Concat", {conv(x, 4, 4, "conv_a"), conv(x, 4, 4, "conv_b")}, {ir::Attribute::makeInt("axis", 1)},
                          "cat");
  ir::Value* r1 = b.node("Reshape", {cat, b.constantInt64("s1", {3}, {4, 2, 36})}, {}, "reshape1");
  ir::Value* t = b.node("Transpose", {r1}, {ir::Attribute::makeInts("perm", {1, 0, 2})}, "transpose");
  ir::Value* r2 = b.node("Reshape", {t, b.constantInt64("s2", {5}, {2, -1, 4, 6, 6})}, {}, "reshape2");
  ir::Value* g0 = b.node("Gather", {r2, b.constantInt64("i0", {}, {0})}, {ir::Attribute::makeInt("axis", 0)}, "gather0");
  ir::Value* g1 = b.node("Gather", {r2, b.constantInt64("i1", {}, {1})}, {ir::Attribute::makeInt("axis", 0)}, "gather1");
  b.output(conv(g0, 4, 3, "conv_c"), ir::DataType::kFloat, {1, 3, 6, 6});
  b.output(conv(g1, 4, 3, "conv_d"), ir::DataType::kFloat, {1, 3, 6, 6});
  ir::Model model = b.build(13);
  Quantized q = quantize(model, "quantize-int8");
  const ir::Graph& g = *q.model.graph;
  for (const char* name : {"cat", "reshape1", "transpose", "reshape2", "gather0", "gather1"}) {
    CAPTURE(name);
    CHECK(hasQuantizedOutput(g, name));
  }
  ir::Model lowered = q.model.clone();
  (void)ir::inferShapes(lowered);
  runtime::lowerQdqGroups(*lowered.graph);
  CHECK(countOps(*lowered.graph, "QLinearConcat") == 1);
  CHECK(countOps(*lowered.graph, "QLinearConv") == 4);
  CHECK(countOps(*lowered.graph, "QuantizeLinear") == 1);    // the input's
  CHECK(countOps(*lowered.graph, "DequantizeLinear") == 2);  // the outputs'
  for (const ir::Node* n : lowered.graph->nodes()) {
    if (n->opType() != "Gather" && n->opType() != "Reshape" && n->opType() != "Transpose") continue;
    CAPTURE(n->name());
    CHECK(n->output(0)->dtype() == ir::DataType::kUint8);
  }
  checkCloseToFloat(model, q.model);
}

TEST_CASE("quantize-int8 leaves a head that no int8 group reads in float", "[passes][quantize-int8]") {
  // x -> Conv -> Sigmoid -> Concat(with itself) -> Reshape -> y: the tail after the Conv would
  // only add rounding (a detector's decoded outputs), so only the Conv is quantized.
  testing::GraphBuilder b(31);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 3, 3}), b.weight("bias", {4})},
                        {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
  ir::Value* s = b.node("Sigmoid", {c}, {}, "sig");
  ir::Value* cat = b.node("Concat", {s, s}, {ir::Attribute::makeInt("axis", 1)}, "cat");
  b.output(b.node("Reshape", {cat, b.constantInt64("shape", {2}, {1, -1})}, {}, "flat"), ir::DataType::kFloat, {1, 512});
  ir::Model model = b.build(13);
  Quantized q = quantize(model, "quantize-int8");
  const ir::Graph& g = *q.model.graph;
  for (const ir::Node* n : g.nodes()) {
    if (n->name() != "sig" && n->name() != "cat" && n->name() != "flat") continue;
    CAPTURE(n->name());
    for (const ir::Value::Use& u : n->output(0)->uses()) CHECK(u.user->opType() != "QuantizeLinear");
  }
  CHECK(countOps(g, "QuantizeLinear") == 2);  // the Conv's input and output
}

TEST_CASE("quantize-int8 keeps nodes that already read DequantizeLinear outputs as they are", "[passes][quantize-int8]") {
  // A model quantized before (QDQ around a MatMul, pipecat's smart-turn) with one float Conv
  // branch left: the MatMul gets no second Q/DQ pair, the float Conv is quantized, and a note
  // says how many nodes were kept.
  testing::GraphBuilder b(33);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 3, 3}), b.weight("bias", {4})},
                        {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
  ir::Value* flat = b.node("Reshape", {c, b.constantInt64("shape", {2}, {4, 64})}, {}, "flat");
  ir::Value* scale = b.constant("s", {}, {0.05f});
  ir::Value* zero = b.constant("z", ir::Tensor::fromVector<uint8_t>(ir::DataType::kUint8, {}, {128}));
  ir::Value* xq = b.node("QuantizeLinear", {flat, scale, zero}, {}, "xq");
  ir::Value* xd = b.node("DequantizeLinear", {xq, scale, zero}, {}, "xd");
  std::vector<int8_t> wq(64 * 5);
  for (size_t i = 0; i < wq.size(); ++i) wq[i] = static_cast<int8_t>(static_cast<int>(i * 7 % 31) - 15);
  ir::Value* wd = b.node("DequantizeLinear",
                         {b.constant("wq", ir::Tensor::fromVector<int8_t>(ir::DataType::kInt8, {64, 5}, wq)),
                          b.constant("ws", {}, {0.02f})},
                         {}, "wd");
  b.output(b.node("MatMul", {xd, wd}, {}, "mm"), ir::DataType::kFloat, {4, 5});
  ir::Model model = b.build(13);
  Quantized q = quantize(model, "quantize-int8");
  const ir::Graph& g = *q.model.graph;
  const ir::Node* mm = findNode(g, "MatMul", "mm");
  REQUIRE(mm != nullptr);
  CHECK(producerOf(*mm, 0)->name() == "xd");  // no second pair
  CHECK(producerOf(*mm, 1)->name() == "wd");
  const ir::Node* conv = findNode(g, "Conv", "conv");
  REQUIRE(conv != nullptr);
  CHECK(producerOf(*conv, 0)->opType() == "DequantizeLinear");  // the float branch is quantized
  CHECK(countOps(g, "QuantizeLinear") == 3);                   // the model's xq, the Conv's input and output
  bool noted = false;
  for (const std::string& note : q.notes) noted = noted || note.find("1 node(s) in the main graph already read") != std::string::npos;
  CHECK(noted);
}

TEST_CASE("quantize-int8 quantizes the activations of a Conv whose weight is int8 weight-only", "[passes][quantize-int8]") {
  // MLPerf Tiny's DS-CNN float32io_int8w: Conv(x, DequantizeLinear(Wq int8, s[m], axis 0), float
  // bias) -> Relu -> Conv(float weight). The weight-only Conv gets its activations' Q/DQ pairs, its
  // weight's DequantizeLinear stays as given, and its bias goes int32 at x_scale * s[m]; so both
  // Convs run int8 (the session lowers both to QLinearConv), close to the float model, in ORT too.
  testing::GraphBuilder b(35);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  std::vector<int8_t> wq(4 * 3 * 9);
  for (size_t i = 0; i < wq.size(); ++i) wq[i] = static_cast<int8_t>(static_cast<int>(i * 37 % 201) - 100);
  const std::vector<float> ws{0.004f, 0.006f, 0.005f, 0.003f};
  ir::Value* wd = b.node("DequantizeLinear",
                         {b.constant("wq", ir::Tensor::fromVector<int8_t>(ir::DataType::kInt8, {4, 3, 3, 3}, wq)),
                          b.constant("ws", {4}, ws), b.constant("wz", ir::Tensor::fromVector<int8_t>(ir::DataType::kInt8, {4}, {0, 0, 0, 0}))},
                         {ir::Attribute::makeInt("axis", 0)}, "wd");
  ir::Value* c1 = b.node("Conv", {x, wd, b.weight("b1", {4}, ir::DataType::kFloat, -0.2, 0.2)},
                         {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv1");
  ir::Value* r1 = b.node("Relu", {c1}, {}, "relu1");
  ir::Value* c2 = b.node("Conv", {r1, b.weight("w2", {5, 4, 3, 3}), b.weight("b2", {5}, ir::DataType::kFloat, -0.2, 0.2)},
                         {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv2");
  b.output(c2, ir::DataType::kFloat, {1, 5, 8, 8});
  ir::Model model = b.build(13);
  Quantized q = quantize(model, "quantize-int8");
  const ir::Graph& g = *q.model.graph;
  const ir::Node* conv1 = findNode(g, "Conv", "conv1");
  REQUIRE(conv1 != nullptr);
  const ir::Node* xdq = producerOf(*conv1, 0);
  REQUIRE(xdq != nullptr);
  CHECK(xdq->opType() == "DequantizeLinear");                  // x is quantized
  CHECK(producerOf(*conv1, 1)->name() == "wd");                // the given weight, not quantized again
  const ir::Node* bdq = producerOf(*conv1, 2);
  REQUIRE(bdq != nullptr);
  REQUIRE(bdq->opType() == "DequantizeLinear");
  const ir::Tensor* bq = bdq->input(0)->constant();
  const ir::Tensor* bs = bdq->input(1)->constant();
  REQUIRE(bq != nullptr);
  REQUIRE(bs != nullptr);
  CHECK(bq->dtype() == ir::DataType::kInt32);
  const float xs = static_cast<float>(xdq->input(1)->constant()->valueAsDouble(0));
  REQUIRE(bs->numel() == 4);
  for (int64_t c = 0; c < 4; ++c) CHECK(bs->valueAsDouble(c) == Approx(xs * ws[static_cast<size_t>(c)]).epsilon(1e-6));
  CHECK(producerOf(*findNode(g, "Conv", "conv2"), 0)->opType() == "DequantizeLinear");  // the chain stays int8
  for (const std::string& note : q.notes) CHECK(note.find("already read") == std::string::npos);
  // The session runs both Convs as QLinearConv, near the float model.
  ir::Model lowered = q.model.clone();
  REQUIRE(runtime::lowerForCpu(*lowered.graph).isOk());
  CHECK(countOps(*lowered.graph, "QLinearConv") == 2);
  CHECK(countOps(*lowered.graph, "Conv") == 0);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> xv(3 * 64);
  for (float& v : xv) v = u(rng);
  const ir::Tensor xt = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1, 3, 8, 8}, xv);
  const std::vector<std::pair<std::string, ir::Tensor>> feeds{{"x", xt}};
  const ir::Tensor ref = testing::runModel(model, feeds)[0].second;
  CHECK(sqnrDb(testing::runModel(q.model, feeds)[0].second, ref) > 20.0);
  if (haveOrt()) CHECK(sqnrDb(testing::ortOutput(q.model, xt), ref) > 20.0);
}

TEST_CASE("quantize-int8 folds weights computed from constants and quantizes them", "[passes][quantize-int8]") {
  // BVLC AlexNet's light copy writes every weight as a ConstantOfShape fill (here scaled per
  // output channel by a Mul, so that the channels differ): the fill is folded, then quantized
  // per channel like an initializer. A weight computed from the input stays as it is.
  testing::GraphBuilder b(41);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  ir::Value* fill = b.node("ConstantOfShape", {b.constantInt64("wshape", {4}, {4, 3, 3, 3})},
                           {ir::Attribute::makeTensor("value", ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1}, {0.05f}))},
                           "fill");
  ir::Value* w = b.node("Mul", {fill, b.constant("per_channel", {4, 1, 1, 1}, {1.0f, -2.0f, 0.5f, 3.0f})}, {}, "scale_w");
  ir::Value* c = b.node("Conv", {x, w, b.weight("bias", {4}, ir::DataType::kFloat, -0.2, 0.2)},
                        {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
  ir::Value* r = b.node("Relu", {c}, {}, "relu");
  // Weight made from the activation: not a constant, not folded; the MatMul reads it as an activation.
  ir::Value* flat = b.node("Reshape", {r, b.constantInt64("shape", {2}, {16, 16})}, {}, "flat");
  ir::Value* t = b.node("Transpose", {flat}, {}, "t");
  b.output(b.node("MatMul", {flat, t}, {}, "mm"), ir::DataType::kFloat, {16, 16});
  ir::Model model = b.build(13);
  Quantized q = quantize(model, "quantize-int8");
  const ir::Graph& g = *q.model.graph;
  CHECK(countOps(g, "ConstantOfShape") == 0);
  CHECK(countOps(g, "Transpose") == 1);
  const ir::Node* conv = findNode(g, "Conv", "conv");
  REQUIRE(conv != nullptr);
  const ir::Node* wdq = producerOf(*conv, 1);
  REQUIRE(wdq != nullptr);
  REQUIRE(wdq->opType() == "DequantizeLinear");
  REQUIRE(wdq->input(0)->constant() != nullptr);
  CHECK(wdq->input(0)->constant()->dtype() == ir::DataType::kInt8);
  REQUIRE(wdq->input(1)->constant()->numel() == 4);  // per channel
  // Each channel is one value, so the int8 weight holds it exactly: +-127 at that channel's scale.
  const ir::Tensor& wq = *wdq->input(0)->constant();
  const ir::Tensor& ws = *wdq->input(1)->constant();
  const float want[4] = {0.05f, -0.1f, 0.025f, 0.15f};
  for (int64_t ch = 0; ch < 4; ++ch) {
    for (int64_t i = 0; i < 27; ++i) {
      CHECK(static_cast<float>(wq.data<int8_t>()[ch * 27 + i]) * ws.data<float>()[ch] == Approx(want[ch]).epsilon(1e-6));
    }
  }
  bool noted = false;
  for (const std::string& note : q.notes) noted = noted || note.find("compute weights from constants") != std::string::npos;
  CHECK(noted);
  auto feeds = testing::randomFeeds(model, 7);
  auto before = testing::runModel(model, feeds);
  auto after = testing::runModel(q.model, feeds);
  CHECK(sqnrDb(after[0].second, before[0].second) > 25.0);
}

TEST_CASE("quantize-int8 on a model with nothing to quantize says what the model holds", "[passes][quantize-int8]") {
  // A classical-ML model (here a Binarizer and two Relus): nothing int8 takes; the note names the ops.
  testing::GraphBuilder b(5);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 4});
  ir::Value* h = b.node("Relu", {b.node("Relu", {x}, {}, "r1")}, {}, "r2");
  b.output(b.node("Binarizer", {h}, {ir::Attribute::makeFloat("threshold", 0.5f)}, "bin", "ai.onnx.ml"),
           ir::DataType::kFloat, {2, 4});
  Quantized q = quantize(b.build(17), "quantize-int8");
  std::string notes;
  for (const std::string& n : q.notes) notes += n + "\n";
  INFO(notes);
  CHECK_THAT(notes, Catch::Contains("quantize-int8: no node to quantize") &&
                        Catch::Contains("the model holds Relu 2, ai.onnx.ml.Binarizer 1"));
}

TEST_CASE("quantize-int8 widens a float16 model to float32 and quantizes its convolutions", "[passes][quantize-int8]") {
  // A float16 model with float32 inputs and outputs (as a converter's keep_io_types writes it;
  // squeezenet1.1-fp16 is float16 throughout). int8 quantizes float32 compute: the pass widens
  // the model first (widen-half), then quantizes the Conv as in any float32 model.
  testing::GraphBuilder b(6);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  const auto to = [](ir::DataType t) { return std::vector<ir::Attribute>{ir::Attribute::makeInt("to", static_cast<int64_t>(t))}; };
  ir::Value* h = b.node("Cast", {x}, to(ir::DataType::kFloat16), "to_half");
  ir::Value* w = b.constant("w", b.randomTensor(ir::DataType::kFloat16, {4, 3, 3, 3}));
  ir::Value* y = b.node("Relu", {b.node("Conv", {h, w}, {}, "conv")}, {}, "relu");
  b.output(b.node("Cast", {y}, to(ir::DataType::kFloat), "to_float"), ir::DataType::kFloat, {1, 4, 6, 6});
  ir::Model model = b.build(17);
  Quantized q = quantize(model, "quantize-int8");
  std::string notes;
  for (const std::string& n : q.notes) notes += n + "\n";
  INFO(notes);
  CHECK_THAT(notes, Catch::Contains("widened it to float32 to quantize it"));
  CHECK(testing::countOps(*q.model.graph, "QuantizeLinear") >= 1);
  const ir::Node* conv = testing::findOp(*q.model.graph, "Conv");
  REQUIRE(conv != nullptr);
  REQUIRE(conv->input(1)->producer() != nullptr);
  CHECK(conv->input(1)->producer()->opType() == "DequantizeLinear");
  auto feeds = testing::randomFeeds(model, 7);
  auto before = testing::runModel(model, feeds);
  auto after = testing::runModel(q.model, feeds);
  CHECK(sqnrDb(after[0].second, before[0].second) > 25.0);
}
