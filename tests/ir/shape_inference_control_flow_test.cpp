// Shape rules for Loop and Scan (src/ir/shape_inference_control_flow.cpp): what the node shows
// without reading its serialized subgraphs.
#include <catch2/catch.hpp>

#include "ir/shape_test_util.h"
#include "support/onnx_builder.h"

using namespace whittle;
using testing::typeOf;

TEST_CASE("Loop's carried outputs keep their element type, Scan's states their type and shape", "[ir][shape]") {
  testing::ProtoGraph loopBody("loop_body");
  loopBody.input("i", onnx::TensorProto::INT64, {}).input("c", onnx::TensorProto::BOOL, {});
  loopBody.input("v", onnx::TensorProto::FLOAT, {-1}, true);
  loopBody.node("Concat", {"v", "v"}, {"v2"}, {testing::onnxInt("axis", 0)}).node("Identity", {"c"}, {"c2"});
  loopBody.output("c2").output("v2").output("v2_scan", 0);
  loopBody.node("Identity", {"v2"}, {"v2_scan"});
  testing::ProtoGraph scanBody("scan_body");
  scanBody.input("s", onnx::TensorProto::FLOAT, {3}).input("a", onnx::TensorProto::FLOAT, {3});
  scanBody.node("Add", {"s", "a"}, {"s2"}).node("Identity", {"s2"}, {"y"}).output("s2").output("y");
  testing::ProtoGraph main("main");
  main.input("M", onnx::TensorProto::INT64, {}).input("v0", onnx::TensorProto::FLOAT, {2});
  main.input("s0", onnx::TensorProto::FLOAT, {3}).input("x", onnx::TensorProto::FLOAT, {5, 3});
  main.node("Loop", {"M", "", "v0"}, {"v_final", "v_scans"}, {testing::onnxGraph("body", loopBody)});
  main.node("Scan", {"s0", "x"}, {"s_final", "ys"}, {testing::onnxGraph("body", scanBody), testing::onnxInt("num_scan_inputs", 1)});
  main.output("v_final").output("v_scans").output("s_final").output("ys");
  ir::Model model = testing::loadProtoModel(main, 16);
  ir::ShapeInferenceResult r = ir::inferShapes(model);
  CHECK(r.unresolved.empty());
  const ir::Graph& g = *model.graph;
  CHECK(typeOf(g.findValue("v_final")) == "float32[*]");  // its shape changes per iteration
  CHECK(typeOf(g.findValue("v_scans")) == "undefined[*]");
  CHECK(typeOf(g.findValue("s_final")) == "float32[3]");
  CHECK(typeOf(g.findValue("ys")) == "undefined[*]");
}
