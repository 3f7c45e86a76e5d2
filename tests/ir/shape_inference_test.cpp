// Shape inference as a whole: symbolic integers, merging with the model's declarations,
// ops without a rule (and libonnx as their fallback in onnx_io), coverage of the runtime's
// ops, opsets newer than libonnx knows, and every shared model against onnx's own shape
// inference and the shapes ONNX Runtime produces.
#include "whittle/ir/shape_inference.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "ir/shape_inference_internal.h"
#include "ir/shape_test_util.h"
#include "support/python.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/runtime/kernel.h"

using namespace whittle;
using ir::DataType;
using ir::shape::SymInt;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::ints;
using testing::typeOf;
using testing::typeText;

TEST_CASE("SymInt: products, exact division, sums of like terms", "[ir][shape]") {
  SymInt batch = SymInt::symbol("batch"), seq = SymInt::symbol("seq");
  SymInt tokens = batch * seq * SymInt::of(384);
  CHECK(tokens.str() == "384*batch*seq");
  CHECK(divExact(tokens, batch * SymInt::of(6)).str() == "64*seq");
  CHECK(divExact(tokens, SymInt::of(5)).isUnknown());
  CHECK(divExact(batch, seq).isUnknown());
  CHECK((seq + seq).str() == "2*seq");
  CHECK((seq - seq).is(0));
  CHECK((seq + SymInt::of(1)).isUnknown());
  CHECK((seq + SymInt::of(0)) == seq);
  CHECK((SymInt() * SymInt::of(0)).is(0));
  CHECK_FALSE(SymInt() == SymInt());
  CHECK((SymInt::of(int64_t{1} << 62) * SymInt::of(4)).isUnknown());  // overflow
  CHECK(batch.toDim() == ir::Dim::symbolic("batch"));
  CHECK(tokens.toDim() == ir::Dim{});
  CHECK(SymInt::of(-1).toDim() == ir::Dim{});
}

TEST_CASE("Declared types: known dims and types are kept, symbolic dims refined, conflicts reported", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3});
  ir::Value* relu = b.node("Relu", {x});
  ir::Value* wrong = b.node("Sigmoid", {x});
  ir::Value* img = b.symbolicInput("img", DataType::kFloat, dims({"N", "3", "H", "W"}));
  ir::Value* conv = b.node("Conv", {img, b.weight("w", {8, 3, 3, 3})}, {ints("strides", {2, 2})});
  ir::Value* after = b.node("Relu", {conv});
  b.output(relu);
  b.output(wrong);
  ir::Model model = b.build(17);
  relu->mutableType() = {DataType::kFloat, dims({"N", "3"}), {}};
  wrong->mutableType() = {DataType::kFloat, dims({"1", "5"}), {}};
  conv->mutableType() = {DataType::kUndefined, dims({"N", "?", "H2", "W2"}), {}};
  ir::ShapeInferenceResult r = ir::inferShapes(model);
  CHECK(typeOf(relu) == "float32[1,3]");         // refined
  CHECK(typeOf(wrong) == "float32[1,5]");        // kept
  CHECK(typeOf(conv) == "float32[N,8,H2,W2]");   // the declared names where inference has none
  CHECK(typeOf(after) == "float32[N,8,H2,W2]");  // and they flow on
  CHECK(typeOf(x) == "float32[1,3]");            // inputs untouched
  REQUIRE(r.conflicts.size() == 1);
  CHECK_THAT(r.conflicts[0], Catch::Contains("Sigmoid") && Catch::Contains("inferred float32 [1, 3]") &&
                                 Catch::Contains("declared float32 [1, 5]"));
  CHECK(r.filled == 3);  // relu, conv, after
  // A second run changes nothing.
  CHECK(ir::inferShapes(model).filled == 0);
}

TEST_CASE("An op without a rule keeps its declared type and inference goes on from it", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* custom = b.node("MyOp", {x}, {}, "custom", "com.example");
  ir::Value* relu = b.node("Relu", {custom});
  ir::Value* opaque = b.node("MyOp", {x}, {}, "undeclared", "com.example");
  ir::Value* relu2 = b.node("Relu", {opaque});
  ir::Model model = b.build(17);
  custom->mutableType() = {DataType::kFloat, dims({"2", "seq"}), {}};
  ir::ShapeInferenceResult r = ir::inferShapes(model);
  CHECK(typeOf(custom) == "float32[2,seq]");
  CHECK(typeOf(relu) == "float32[2,seq]");
  CHECK(typeOf(relu2) == "undefined[*]");
  REQUIRE(r.unresolved.size() == 2);
  CHECK(r.unresolved[0]->name() == "custom");
}

TEST_CASE("The fallback hook fills outputs that are not fully known, before their users", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"1", "3", "H", "W"}));
  ir::Value* pool = b.node("MaxPool", {x}, {ints("kernel_shape", {2, 2}), ints("strides", {2, 2})});
  ir::Value* relu = b.node("Relu", {pool});
  ir::Model model = b.build(17);
  std::vector<std::string> asked;
  ir::ShapeInferenceOptions options;
  options.fallback = [&](ir::Value& v) {
    asked.push_back(v.name());
    if (&v == pool) v.mutableType().shape = dims({"1", "3", "4", "4"});
  };
  ir::inferShapes(model, options);
  CHECK(asked == std::vector<std::string>{pool->name()});
  CHECK(typeOf(relu) == "float32[1,3,4,4]");
}

TEST_CASE("Every op the CPU runtime runs has a shape rule", "[ir][shape]") {
  std::vector<std::string> missing;
  for (const std::string& key : runtime::KernelRegistry::cpu().opNames()) {
    auto colon = key.rfind(':');
    std::string domain = key.substr(0, colon), op = key.substr(colon + 1);
    if (domain == "com.whittle.internal") continue;  // made by the session's lowering, after inference
    if (!ir::hasShapeRule(domain, op)) missing.push_back(key);
  }
  INFO("ops without a rule: " << Catch::Detail::stringify(missing));
  CHECK(missing.empty());
  CHECK(ir::shapeRuleOps().size() > 150);
}

TEST_CASE("Models newer than libonnx knows get their shapes from the IR's rules", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "32", "32", "3"}));
  ir::Value* nchw = b.node("Transpose", {x}, {ints("perm", {0, 3, 1, 2})});
  ir::Value* conv = b.node("Conv", {nchw, b.weight("w", {16, 3, 3, 3})}, {ints("pads", {1, 1, 1, 1})});
  std::vector<ir::Value*> halves = b.nodeN("Split", {conv}, 2, {intAttr("axis", 1), intAttr("num_outputs", 2)});
  ir::Value* mean = b.node("ReduceMean", {halves[0], b.constantInt64("axes", {2}, {2, 3})}, {intAttr("keepdims", 0)});
  ir::Value* q =
      b.node("QuantizeLinear", {mean, b.weight("s", {}, DataType::kFloat, 0.1, 0.2)}, {intAttr("output_dtype", 3)});
  ir::Value* dq = b.node("DequantizeLinear", {q, b.weight("s2", {}, DataType::kFloat, 0.1, 0.2)});
  ir::Value* fc = b.node("MatMul", {dq, b.weight("fc", {8, 10})});
  b.output(fc);
  ir::Model model = b.build(21);
  REQUIRE(model.opsetVersion("") > onnx_io::libonnxMaxOpset());
  auto filled = onnx_io::inferShapes(model);
  REQUIRE(filled.isOk());
  CHECK(*filled == 8);
  CHECK(typeOf(halves[1]) == "float32[batch,8,32,32]");
  CHECK(typeOf(q) == "int8[batch,8]");
  CHECK(typeOf(fc) == "float32[batch,10]");
}

TEST_CASE("onnx_io::inferShapes asks libonnx about ops without a rule where it knows the opset", "[ir][shape]") {
  for (int64_t opset : {17, 21}) {
    GraphBuilder b;
    // MaxRoiPool: an ONNX op that neither whittle's rules nor its runtime cover.
    ir::Value* pooled =
        b.node("MaxRoiPool", {b.input("a", DataType::kFloat, {1, 3, 8, 8}), b.input("rois", DataType::kFloat, {2, 5})},
               {ir::Attribute::makeInts("pooled_shape", {2, 2})});
    ir::Value* relu = b.node("Relu", {pooled});
    ir::Model model = b.build(opset);
    REQUIRE_FALSE(ir::hasShapeRule("", "MaxRoiPool"));
    REQUIRE(onnx_io::inferShapes(model).isOk());
    INFO("opset " << opset);
    CHECK(typeOf(relu) == (opset <= onnx_io::libonnxMaxOpset() ? "float32[2,3,2,2]" : "undefined[*]"));
  }
}

// ---------------------------------------------------------------- the shared models

namespace {

struct SharedModel {
  std::string file;
  std::vector<std::string> dims;  ///< --dims for shape_reference.py: concrete dims of symbolic inputs.
};

const SharedModel kSharedModels[] = {
    {"all-MiniLM-L6-v2-intent157.onnx", {"input_ids=2,7", "attention_mask=2,7"}},
    {"mlperftiny_ic_resnet8.onnx", {"input_1=2,32,32,3"}},
    {"mlperftiny_kws_dscnn_float32io_int8w.onnx", {}},
    {"mlperftiny_kws_dscnn_int8_qdq.onnx", {}},
    {"mlperftiny_vww_96_float.onnx", {"input_1=2,96,96,3"}},
    {"mnist-8.onnx", {}},
    {"mobilenetv2-12-int8.onnx", {"input=2,3,224,224"}},
    {"mobilenetv2-12-rebuilt-fp32.onnx", {"input=2,3,224,224"}},
    {"retinaface_mbnet0.25.onnx", {"input=1,3,96,128"}},
    {"squeezenet1.1-fp16.onnx", {}},
    {"squeezenet1.1.onnx", {}},
    {"super_resolution_subpixel_cnn_x3.onnx", {"input=2,1,224,224"}},
    {"ultraface_version-RFB-320.onnx", {}},
    {"vittrack_vitTracker.onnx", {}},
    {"yolo-fastestv2_352.onnx", {}},
};

std::string dimText(const nlohmann::json& d) {
  return d.is_null() ? "?" : d.is_number() ? std::to_string(d.get<int64_t>()) : d.get<std::string>();
}

std::string refText(const nlohmann::json& t) {
  std::string s = std::string(ir::dataTypeName(static_cast<DataType>(t["dtype"].get<int>())));
  if (t["dims"].is_null()) return s + "[*]";
  s += "[";
  for (size_t i = 0; i < t["dims"].size(); ++i) s += (i ? "," : "") + dimText(t["dims"][i]);
  return s + "]";
}

/// Where onnx's inference knows an element type, a rank or a dim, ours must say the same. A
/// dim named after an input dim ("batch") must have that name; other names are declarations
/// that onnx kept where it inferred nothing, which ours may know better ("unk__" names are
/// onnx's own inventions and say nothing). With concrete inputs names say nothing either.
void compareWithOnnx(const ir::Graph& g, const nlohmann::json& reference, bool concrete,
                     std::vector<std::string>& mismatches) {
  std::set<std::string> inputNames;
  for (const ir::Value* in : g.inputs()) {
    if (!in->type().shape) continue;
    for (const ir::Dim& d : *in->type().shape) inputNames.insert(d.param);
  }
  for (const auto& [name, ref] : reference.items()) {
    const ir::Value* v = g.findValue(name);
    if (v == nullptr || v->producer() == nullptr) continue;
    const ir::ValueType& t = v->type();
    bool ok = ref["dtype"].get<int>() == 0 || static_cast<int>(t.dtype) == ref["dtype"].get<int>();
    if (!ref["dims"].is_null()) {
      ok = ok && t.shape && t.shape->size() == ref["dims"].size();
      for (size_t i = 0; ok && i < ref["dims"].size(); ++i) {
        const nlohmann::json& d = ref["dims"][i];
        const ir::Dim& ours = (*t.shape)[i];
        if (d.is_number()) ok = ours.isKnown() && ours.value == d.get<int64_t>();
        if (d.is_string() && !concrete && d.get<std::string>().rfind("unk__", 0) != 0) {
          ok = ours.param == d.get<std::string>() || (!inputNames.contains(d.get<std::string>()) && ours.isKnown());
        }
      }
    }
    if (!ok) mismatches.push_back("'" + name + "': whittle " + typeText(t) + ", onnx " + refText(ref));
  }
}

/// Runs our inference on `path` with symbolic inputs and with the concrete ones, against the
/// reference `ref` (one variant of shape_reference.py's output).
void checkModel(const std::string& path, const nlohmann::json& ref) {
  auto loaded = onnx_io::load(path);
  REQUIRE(loaded.isOk());
  std::vector<std::string> mismatches;

  ir::Model symbolic = loaded->clone();
  ir::ShapeInferenceResult r = ir::inferShapes(symbolic);
  CHECK(r.unresolved.empty());
  INFO("conflicts: " << Catch::Detail::stringify(r.conflicts));
  CHECK(r.conflicts.empty());
  compareWithOnnx(*symbolic.graph, ref["symbolic"], /*concrete=*/false, mismatches);

  ir::Model concrete = loaded->clone();
  for (ir::Value* in : concrete.graph->inputs()) {
    if (in->isInitializer() || !ref["feeds"].contains(in->name())) continue;
    std::vector<ir::Dim> d;
    for (const auto& x : ref["feeds"][in->name()]) d.push_back(ir::Dim::known(x.get<int64_t>()));
    in->mutableType().shape = std::move(d);
  }
  ir::inferShapes(concrete);
  compareWithOnnx(*concrete.graph, ref["concrete"], /*concrete=*/true, mismatches);
  for (const ir::Value* out : concrete.graph->outputs()) {
    auto expected = ref["ort"][out->name()].get<std::vector<int64_t>>();
    auto ours = out->type().staticDims();
    if (!ours || *ours != expected) {
      mismatches.push_back("output '" + out->name() + "': whittle " + typeOf(out) + ", ONNX Runtime " +
                           Catch::Detail::stringify(expected));
    }
  }
  INFO(mismatches.size() << " mismatches: " << Catch::Detail::stringify(mismatches));
  CHECK(mismatches.empty());
}

}  // namespace

TEST_CASE("Every shared model, and its opset-21 conversion: onnx's shapes and ONNX Runtime's outputs", "[ir][shape]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the shape reference (shape_reference.py)")) return;
  std::vector<SharedModel> models(std::begin(kSharedModels), std::end(kSharedModels));
  // Any other model in the folder, with the dims it declares (symbolic ones taken as 1).
  std::set<std::string> listed;
  for (const SharedModel& m : kSharedModels) listed.insert(m.file);
  if (auto dir = testing::sharedPath("models")) {
    for (const auto& entry : std::filesystem::directory_iterator(*dir)) {
      std::string name = entry.path().filename().string();
      if (entry.path().extension() == ".onnx" && !listed.contains(name)) models.push_back({name, {}});
    }
  }
  for (const SharedModel& m : models) {
    auto path = testing::sharedPath("models/" + m.file);
    if (!path) continue;
    testing::TempDir tmp;
    std::string cmd = testing::python() + " " +
                      testing::shellQuote(std::string(WHITTLE_SOURCE_DIR) + "/tests/ir/shape_reference.py") + " " +
                      testing::shellQuote(*path) + " " + testing::shellQuote(tmp.file("ref.json")) + " --upgrade 21 " +
                      testing::shellQuote(tmp.file("upgraded.onnx"));
    for (const std::string& d : m.dims) cmd += " --dims " + testing::shellQuote(d);
    std::string output;
    INFO(m.file);
    REQUIRE(testing::shell(cmd, &output) == 0);
    std::ifstream in(tmp.file("ref.json"));
    nlohmann::json ref = nlohmann::json::parse(in);
    {
      INFO("as stored");
      checkModel(*path, ref["original"]);
    }
    {
      INFO("converted to opset 21");
      checkModel(tmp.file("upgraded.onnx"), ref["upgraded"]);
    }
  }
}
