#include "support/lowering_check.h"

#include <catch2/catch.hpp>

#include "support/kernel_harness.h"
#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/runtime/kernel.h"
#include "whittle/runtime/lowering.h"

namespace whittle::testing {
namespace {

bool registered(const ir::Model& m) {
  for (const ir::Node* n : m.graph->nodes()) {
    if (!runtime::KernelRegistry::cpu().has(n->domain(), n->opType())) return false;
  }
  return true;
}

}  // namespace

ir::Model lowered(const ir::Model& model) {
  ir::Model m = model.clone();
  (void)onnx_io::inferShapes(m);
  REQUIRE(runtime::lowerForCpu(*m.graph).isOk());
  REQUIRE(ir::verify(*m.graph).isOk());
  return m;
}

void checkSameAsUnlowered(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds, double tol) {
  if (!registered(model)) {
    WARN("skipped the numerical check: some ops are not registered yet");
    return;
  }
  runtime::SessionOptions pinnedOptions;
  for (const ir::Node* n : model.graph->nodes()) {
    for (const ir::Value* v : n->outputs()) {
      if (v != nullptr && !v->isGraphOutput()) pinnedOptions.extraOutputs.push_back(v->name());
    }
  }
  auto pinned = runtime::Session::create(model, pinnedOptions);
  INFO((pinned.isOk() ? std::string() : pinned.status().message()));
  REQUIRE(pinned.isOk());
  auto expected = (*pinned)->run(feeds);
  INFO((expected.isOk() ? std::string() : expected.status().message()));
  REQUIRE(expected.isOk());
  for (int threads : {1, 2}) {
    auto actual = runOutputs(model, feeds, threads);
    for (size_t i = 0; i < actual.size(); ++i) {
      REQUIRE(actual[i].dims() == (*expected)[i].second.dims());
      checkClose(actual[i], tensorValues((*expected)[i].second), tol, tol);
    }
  }
}

}  // namespace whittle::testing
