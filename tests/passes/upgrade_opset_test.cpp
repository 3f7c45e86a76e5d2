// upgrade-opset: every adapter on a model built at the old opset with onnx.helper
// (upgrade_opset_cases.py), upgraded by whittle and checked by the ONNX checker and ONNX Runtime
// against the original; the shared old-opset models upgraded to 13 and to the newest opset;
// refusals that name the node and leave the model unchanged; the table's coverage.
#include "whittle/passes/upgrade_opset.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "../../passes/opset_history.h"
#include "passes/pass_test_util.h"
#include "support/python.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "whittle/onnx_io/onnx_io.h"

using namespace whittle;

namespace {

std::string script() { return std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/upgrade_opset_cases.py"; }

struct Case {
  std::string name;
  int64_t opset = 0;
  bool exact = true;
  std::string runner;  // whittle, ort-only or refused
};

std::vector<Case> readCases(const std::string& dir) {
  std::ifstream in(dir + "/cases.txt");
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Case c;
    std::string tolerance;
    if (fields >> c.name >> c.opset >> tolerance >> c.runner) {
      c.exact = tolerance == "exact";
      cases.push_back(c);
    }
  }
  return cases;
}

int countOps(const ir::Graph& g, const std::string& op) {
  int k = 0;
  for (const ir::Node* n : g.nodes()) k += n->opType() == op ? 1 : 0;
  return k;
}

// Whittle's own runtime on the original and the upgraded model, on the same random inputs.
void requireSameOnWhittle(const ir::Model& before, const ir::Model& after) {
  testing::requireSameOutputs(before, after, testing::kExactRelativeTolerance, /*seed=*/11, -2.0, 2.0);
}

}  // namespace

TEST_CASE("upgrade-opset: each adapter agrees with ONNX Runtime before and after", "[passes][upgrade-opset]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "to build the old-opset models and run them")) return;
  testing::TempDir dir;
  std::string out;
  int made = testing::shell(testing::python() + " " + testing::shellQuote(script()) + " make " + dir.path(), &out);
  INFO(out);
  REQUIRE(made == 0);
  std::vector<Case> cases = readCases(dir.path());
  REQUIRE(cases.size() >= 30);
  int upgraded = 0;
  for (const Case& c : cases) {
    INFO("case " << c.name << " (opset " << c.opset << ")");
    auto loaded = onnx_io::load(dir.path() + "/" + c.name + ".onnx");
    INFO(loaded.status().message());
    REQUIRE(loaded.isOk());
    for (int64_t to : {int64_t{13}, passes::kNewestOpset}) {
      if (to <= c.opset) continue;
      INFO("to opset " << to);
      ir::Model model = loaded->clone();
      auto done = passes::upgradeOpset(model, to);
      if (c.runner == "refused") {
        REQUIRE_FALSE(done.isOk());
        CHECK_THAT(done.status().message(), Catch::StartsWith("upgrade-opset: "));
        CHECK(model.opsetVersion("") == c.opset);  // all or nothing
        CHECK(testing::graphText(model) == testing::graphText(*loaded));
        continue;
      }
      INFO(done.status().message());
      REQUIRE(done.isOk());
      CHECK(model.opsetVersion("") == to);
      Status verified = ir::verify(*model.graph);
      INFO(verified.message());
      REQUIRE(verified.isOk());
      CHECK(countOps(*model.graph, "Upsample") == 0);
      CHECK(countOps(*model.graph, "Scatter") == 0);
      if (c.runner == "whittle") requireSameOnWhittle(*loaded, model);
      REQUIRE(onnx_io::save(model, dir.path() + "/" + c.name + ".to" + std::to_string(to) + ".onnx").isOk());
      ++upgraded;
    }
  }
  CHECK(upgraded >= 45);
  int checked = testing::shell(testing::python() + " " + testing::shellQuote(script()) + " check " + dir.path(), &out);
  INFO(out);
  CHECK(checked == 0);
}

TEST_CASE("upgrade-opset: the shared old-opset models run the same in ONNX Runtime at 13 and at the newest",
          "[passes][upgrade-opset]") {
  const char* models[] = {"squeezenet1.1.onnx",
                          "mnist-8.onnx",
                          "ultraface_version-RFB-320.onnx",
                          "super_resolution_subpixel_cnn_x3.onnx",
                          "yolo-fastestv2_352.onnx",
                          "retinaface_mbnet0.25.onnx",
                          "mobilenetv2-12-rebuilt-fp32.onnx"};
  bool ort = testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime comparison");
  testing::TempDir dir;
  std::string pairs;
  for (const char* name : models) {
    auto path = testing::sharedPath(std::string("models/") + name);
    if (!path) return;
    INFO(name);
    auto loaded = onnx_io::load(*path);
    REQUIRE(loaded.isOk());
    for (int64_t to : {int64_t{13}, passes::kNewestOpset}) {
      if (to <= loaded->opsetVersion("")) continue;
      INFO("to opset " << to);
      ir::Model model = loaded->clone();
      auto done = passes::upgradeOpset(model, to);
      INFO(done.status().message());
      REQUIRE(done.isOk());
      REQUIRE(ir::verify(*model.graph).isOk());
      CHECK(model.opsetVersion("") == to);
      std::string saved = dir.path() + "/" + name + ".to" + std::to_string(to) + ".onnx";
      REQUIRE(onnx_io::save(model, saved).isOk());
      pairs += " " + testing::shellQuote(*path) + " " + testing::shellQuote(saved);
      if (to == passes::kNewestOpset) requireSameOnWhittle(*loaded, model);
    }
  }
  if (!ort) return;
  std::string out;
  int compared = testing::shell(testing::python() + " " + testing::shellQuote(script()) + " compare" + pairs, &out);
  INFO(out);
  CHECK(compared == 0);
}

TEST_CASE("upgrade-opset rewrites what changed and leaves the rest", "[passes][upgrade-opset]") {
  testing::GraphBuilder b(5);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 3, 4});
  ir::Value* c = b.node("Clip", {x, b.constant("lo", {}, {0.0f}), b.constant("hi", {}, {0.5f})}, {}, "clip");
  ir::Value* u = b.node("Unsqueeze", {c}, {ir::Attribute::makeInts("axes", {0})}, "unsqueeze");
  ir::Value* s = b.node("Squeeze", {u}, {ir::Attribute::makeInts("axes", {0})}, "squeeze");
  // Softmax at opset 12 with the default axis 1 works on [2, 3*4]; at 13 it would be axis -1.
  ir::Value* y = b.node("Softmax", {s}, {}, "softmax");
  b.output(y, ir::DataType::kFloat, {2, 3, 4});
  ir::Model model = b.build(12);
  ir::Model up = model.clone();
  auto done = passes::upgradeOpset(up, 13);
  INFO(done.status().message());
  REQUIRE(done.isOk());
  CHECK(done->summary() == "opset 12 -> 13: Softmax 1, Squeeze 1, Unsqueeze 1 rewritten");
  CHECK(up.opsetVersion("") == 13);
  CHECK(up.irVersion >= 7);
  REQUIRE(ir::verify(*up.graph).isOk());
  for (const ir::Node* n : up.graph->nodes()) {
    if (n->opType() == "Unsqueeze" || n->opType() == "Squeeze") {
      CHECK_FALSE(n->hasAttribute("axes"));
      CHECK(n->input(1) != nullptr);
    }
  }
  CHECK(countOps(*up.graph, "Flatten") == 1);  // Softmax's old 2-D meaning, written out
  CHECK(up.graph->outputs()[0]->name() == "softmax");
  requireSameOnWhittle(model, up);

  SECTION("a model at or above the target is left alone") {
    ir::Model same = up.clone();
    auto again = passes::upgradeOpset(same, 13);
    REQUIRE(again.isOk());
    CHECK(again->adapted.empty());
    CHECK(testing::graphText(same) == testing::graphText(up));
  }
  SECTION("the pass form notes what it did") {
    auto run = testing::runPipelineOn(model, "upgrade-opset");
    CHECK(run.after.opsetVersion("") == passes::kNewestOpset);
    CHECK(run.stats.at(0).rewrites == 3);
  }
}

TEST_CASE("upgrade-opset refuses what it cannot convert faithfully, naming the node", "[passes][upgrade-opset]") {
  auto refused = [](ir::Model model, int64_t to, const std::string& expected) {
    std::string before = testing::graphText(model);
    int64_t opset = model.opsetVersion("");
    auto done = passes::upgradeOpset(model, to);
    REQUIRE_FALSE(done.isOk());
    CHECK_THAT(done.status().message(), Catch::Contains(expected));
    CHECK(done.status().message().find('\n') == std::string::npos);
    CHECK(model.opsetVersion("") == opset);
    CHECK(testing::graphText(model) == before);
  };
  SECTION("Resize-10 nearest that upsamples one axis and downsamples another") {
    testing::GraphBuilder b(1);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 1, 4, 4});
    b.output(b.node("Resize", {x, b.constant("s", {4}, {1, 1, 2, 0.5f})}, {}, "r"));
    refused(b.build(10), 13, "Resize 'r' cannot go from its opset-10 form to opset 11");
  }
  SECTION("BatchNormalization whose training outputs are read") {
    testing::GraphBuilder b(2);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 2, 3, 3});
    auto outs = b.nodeN("BatchNormalization", {x, b.weight("s", {2}), b.weight("bias", {2}), b.weight("m", {2}),
                                               b.weight("v", {2}, ir::DataType::kFloat, 0.5, 1.0)},
                        3, {}, "bn");
    b.output(outs[0]);
    b.output(outs[1]);
    refused(b.build(9), 21, "BatchNormalization 'bn' cannot go from its opset-9 form to opset 14");
  }
  SECTION("Dropout whose mask is read") {
    testing::GraphBuilder b(3);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 2});
    auto outs = b.nodeN("Dropout", {x}, 2, {}, "drop");
    b.output(outs[0]);
    b.output(outs[1]);
    refused(b.build(8), 13, "Dropout 'drop' cannot go from its opset-8 form to opset 10");
  }
  SECTION("an op that is not in ONNX") {
    testing::GraphBuilder b(4);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 2, 2});
    b.output(b.node("ImageScaler", {x}, {ir::Attribute::makeFloat("scale", 2.0f)}, "scaler"));
    refused(b.build(8), 13, "ImageScaler 'scaler': ImageScaler is not an ONNX operator");
  }
  SECTION("a target outside what whittle runs") {
    testing::GraphBuilder b(5);
    b.output(b.node("Relu", {b.input("x", ir::DataType::kFloat, {2})}));
    refused(b.build(9), passes::kNewestOpset + 1, "to=22");
    CHECK_FALSE(passes::parsePipeline("upgrade-opset{to=6}").isOk());
  }
}

TEST_CASE("upgrade-opset's table classifies every change up to the newest opset", "[passes][upgrade-opset]") {
  const auto& table = passes::opset::histories();
  CHECK(table.size() >= 190);
  for (const passes::opset::OpHistory& h : table) {
    INFO(h.op);
    int64_t last = h.introduced;
    for (const passes::opset::Change& c : h.changes) {
      CHECK(c.version > last);  // in order, after the op appeared
      CHECK(c.version <= passes::kNewestOpset);
      last = c.version;
      if (c.kind == passes::opset::ChangeKind::kAdapter) CHECK(c.adapter != nullptr);
      if (c.kind != passes::opset::ChangeKind::kTypes) CHECK_FALSE(c.what.empty());
    }
  }
  // Changes the issue named: HardSigmoid did not change between 7 and 21; Slice-13 added types only.
  const auto* hardSigmoid = passes::opset::findHistory("HardSigmoid");
  REQUIRE(hardSigmoid != nullptr);
  CHECK(hardSigmoid->changes.empty());
  const auto* slice = passes::opset::findHistory("Slice");
  REQUIRE(slice != nullptr);
  CHECK(slice->changes.back().version == 13);
  CHECK(slice->changes.back().kind == passes::opset::ChangeKind::kTypes);
  CHECK(passes::opset::findHistory("ImageScaler") == nullptr);
}
