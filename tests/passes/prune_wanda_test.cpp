// prune-wanda: scores |W| x input-channel activation norm from the calibration provider, so
// weights on a loud input channel survive where magnitude pruning would drop them; the
// sparsity per output is exact; without calibration data the pass is an error.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "passes/pass_test_util.h"
#include "whittle/quant/calibration.h"

using namespace whittle;

namespace {

// x[1, 8] -> MatMul(W[8, 6]) -> Relu -> MatMul(W2[6, 3]) -> y
ir::Model twoMatMuls() {
  testing::GraphBuilder b(17);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8});
  ir::Value* h = b.node("Relu", {b.node("MatMul", {x, b.weight("w1", {8, 6})}, {}, "fc1")});
  ir::Value* y = b.node("MatMul", {h, b.weight("w2", {6, 3})}, {}, "fc2");
  b.output(y, ir::DataType::kFloat, {1, 3});
  return b.build(17);
}

// Runs the model on seeded inputs whose channel 0 is 100x louder and observes the tensors.
class LoudChannelProvider final : public quant::CalibrationProvider {
 public:
  Expected<quant::CalibrationTable> observe(const ir::Model& model, const std::vector<std::string>& tensors) override {
    WH_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model));
    std::set<std::string> wanted(tensors.begin(), tensors.end());
    std::map<std::string, quant::Observer> observers;
    testing::GraphBuilder rng(77);
    constexpr int kSamples = 16;
    for (int s = 0; s < kSamples; ++s) {
      ir::Tensor x = rng.randomTensor(ir::DataType::kFloat, {1, 8});
      x.mutableData<float>()[0] *= 100.0f;
      WH_ASSIGN_OR_RETURN(auto outputs, session->run({{"x", x}}));
      for (const auto& [name, t] : outputs) {
        if (wanted.contains(name)) observers[name].observe(t.values<float>());
      }
    }
    quant::CalibrationTable table;
    table.samples = kSamples;
    for (const std::string& name : tensors) table.tensors[name] = observers[name].observation();
    ++calls;
    return table;
  }
  int calls = 0;
};

}  // namespace

TEST_CASE("prune-wanda keeps the weights of a loud input channel and reaches the sparsity per output",
          "[passes][prune]") {
  ir::Model model = twoMatMuls();
  ir::Model after = model.clone();
  auto pipeline = passes::parsePipeline("prune-wanda{sparsity=0.5,exclude-first-last=false}");
  REQUIRE(pipeline.isOk());
  passes::PassContext ctx(after);
  LoudChannelProvider provider;
  ctx.calibration = &provider;
  auto stats = passes::runPipeline(after, *pipeline, ctx, {});
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  CHECK(provider.calls == 1);
  REQUIRE(ir::verify(*after.graph).isOk());
  const ir::Tensor* w1 = nullptr;
  for (const ir::Node* n : after.graph->nodes()) {
    if (n->name() == "fc1") w1 = n->input(1)->constant();
  }
  REQUIRE(w1 != nullptr);
  auto w = w1->values<float>();
  for (int64_t col = 0; col < 6; ++col) {
    int64_t zeros = 0;
    for (int64_t k = 0; k < 8; ++k) zeros += w[k * 6 + col] == 0.0f ? 1 : 0;
    CHECK(zeros == 4);
    CHECK(w[0 * 6 + col] != 0.0f);  // the loud channel survives in every output
  }
  CHECK(stats->back().counters.at("weights-pruned") == 24 + 9);
  // The probe tensors the pass added stay out of the model.
  CHECK(after.graph->outputs().size() == 1);
  CHECK(after.graph->numNodes() == model.graph->numNodes());
}

TEST_CASE("prune-wanda without calibration data is an error", "[passes][prune]") {
  ir::Model model = twoMatMuls();
  auto pipeline = passes::parsePipeline("prune-wanda");
  REQUIRE(pipeline.isOk());
  passes::PassContext ctx(model);
  auto stats = passes::runPipeline(model, *pipeline, ctx, {});
  REQUIRE_FALSE(stats.isOk());
  CHECK(stats.status().message().find("--calib") != std::string::npos);
}

TEST_CASE("prune-wanda with scope=layer reaches the sparsity over the whole layer", "[passes][prune]") {
  ir::Model model = twoMatMuls();
  auto pipeline = passes::parsePipeline("prune-wanda{sparsity=0.25,scope=layer,exclude-first-last=false}");
  REQUIRE(pipeline.isOk());
  passes::PassContext ctx(model);
  LoudChannelProvider provider;
  ctx.calibration = &provider;
  auto stats = passes::runPipeline(model, *pipeline, ctx, {});
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  for (const ir::Node* n : model.graph->nodes()) {
    if (n->opType() != "MatMul") continue;
    const ir::Tensor* w = n->input(1)->constant();
    int64_t zeros = 0;
    for (float v : w->values<float>()) zeros += v == 0.0f ? 1 : 0;
    CHECK(zeros == std::llround(0.25 * static_cast<double>(w->numel())));
    if (n->name() == "fc1") {
      for (int64_t col = 0; col < 6; ++col) CHECK(w->values<float>()[col] != 0.0f);
    }
  }
}
