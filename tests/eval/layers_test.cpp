// Per-layer matching: by name, through a QDQ pair, over a fused chain.
#include "whittle/eval/layers.h"

#include <catch2/catch.hpp>

#include "support/compare_models.h"

namespace whittle::eval {
namespace {

using testing::mlp;

TEST_CASE("matchLayers: every activation of a model matches itself by name", "[eval][layers]") {
  ir::Model m = mlp();
  std::vector<LayerMetrics> layers = matchLayers(*m.graph, *m.graph);
  REQUIRE(layers.size() == 4);  // h1, r1, h2, r2; not the input x or the output logits
  CHECK(layers[0].tensor == "h1");
  CHECK(layers[0].optimizedTensor == "h1");
  CHECK(layers[0].opType == "MatMul");
  CHECK(layers[3].tensor == "r2");
  for (const auto& l : layers) CHECK(l.match == "name");
}

TEST_CASE("matchLayers: activations match through a QDQ pair", "[eval][layers]") {
  ir::Model q = testing::mlpWithQdqOnR1();
  std::vector<LayerMetrics> layers = matchLayers(*mlp().graph, *q.graph);
  REQUIRE(layers.size() == 4);
  CHECK(layers[1].tensor == "r1");
  CHECK(layers[1].optimizedTensor == "r1_dequantized");
  CHECK(layers[1].match == "qdq");
  CHECK(layers[0].match == "name");
}

TEST_CASE("matchLayers: a fused chain matches the last value it computes", "[eval][layers]") {
  testing::FusedPair p = testing::fusedChain();
  std::vector<LayerMetrics> layers = matchLayers(*p.original.graph, *p.optimized.graph);
  REQUIRE(layers.size() == 1);
  CHECK(layers[0].tensor == "r1");
  CHECK(layers[0].optimizedTensor == "h1");
  CHECK(layers[0].match == "fused-name");
  CHECK(layers[0].opType == "Relu");

  // Not fused (a1 still present): the plain name matches stay.
  std::vector<LayerMetrics> plain = matchLayers(*p.original.graph, *p.original.graph);
  REQUIRE(plain.size() == 3);
  CHECK(plain[0].match == "name");
}

TEST_CASE("matchLayers: a tensor missing from the optimized model has no match", "[eval][layers]") {
  ir::Model renamed = mlp();
  REQUIRE(renamed.graph->renameValue(renamed.graph->findValue("h2"), "other").isOk());
  std::vector<LayerMetrics> layers = matchLayers(*mlp().graph, *renamed.graph);
  REQUIRE(layers.size() == 3);
  for (const auto& l : layers) CHECK(l.tensor != "h2");
}

}  // namespace
}  // namespace whittle::eval
