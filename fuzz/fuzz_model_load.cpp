// fuzz_model_load: ModelProto bytes -> onnx_io::loadFromBytes, the loader behind
// onnx_io::load and every whittle command.
//
// The model's folder (fuzz::modelFolder) holds small external-data files (weights.bin,
// sub/more.bin) so that tensors whose external_data names a location/offset/length resolve
// against real files, and a file beside the folder (outside.bin) that a location escaping the
// folder would reach.
// Checked on every input that loads:
//   - no tensor's external data comes from outside the model's folder;
//   - the IR verifier does not crash;
//   - the loaded model serializes, and what it serializes loads again.
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_util.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::fuzz {
namespace {

void checkExternal(const ir::Tensor& t, const std::string& modelDir, const std::string& what) {
  const ir::ExternalDataRef* ref = t.externalSource();
  if (ref == nullptr) return;
  const std::string& location = ref->location;
  if (location.empty() || location.front() == '/' || location.find("..") != std::string::npos) {
    fail(what + ": external data location '" + location + "' was accepted");
  }
  static const std::string canonicalDir = std::filesystem::canonical(modelDir).string();
  std::error_code ec;
  std::string resolved = std::filesystem::weakly_canonical(modelDir + "/" + location, ec).string();
  if (ec || resolved.rfind(canonicalDir + "/", 0) != 0) {
    fail(what + ": external data location '" + location + "' resolves outside the model's folder: " + resolved);
  }
}

void checkGraph(const ir::Graph& graph, const std::string& modelDir) {
  for (const ir::Value* v : graph.initializers()) {
    if (v->constant() != nullptr) checkExternal(*v->constant(), modelDir, "initializer '" + v->name() + "'");
  }
  for (const ir::Node* n : graph.nodes()) {
    for (const ir::Attribute& a : n->attributes()) {
      if (a.kind == ir::Attribute::Kind::kTensor) checkExternal(a.t, modelDir, n->describe());
      for (const ir::Tensor& t : a.tensors) checkExternal(t, modelDir, n->describe());
    }
  }
}

}  // namespace
}  // namespace whittle::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace whittle;
  const std::string& folder = fuzz::modelFolder();
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto model = onnx_io::loadFromBytes(bytes, folder, "fuzz.onnx");
  if (!model.isOk()) {
    fuzz::checkNotInternal(model.status(), "loadFromBytes");
    return 0;
  }
  fuzz::checkGraph(*model->graph, folder);
  (void)ir::verify(*model->graph);
  auto serialized = onnx_io::serialize(*model);
  if (!serialized.isOk()) {
    fuzz::checkNotInternal(serialized.status(), "serialize");
    return 0;
  }
  auto again = onnx_io::loadFromBytes(*serialized, folder, "reserialized.onnx");
  if (!again.isOk()) fuzz::fail("a loaded model serializes to bytes that do not load: " + again.status().message());
  return 0;
}
