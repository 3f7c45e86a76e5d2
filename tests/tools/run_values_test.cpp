// `whittle run` on models whose outputs are not tensors: a sequence is written as a folder of
// .npy files, one per element; a map (ZipMap's sequence of maps) as K.keys.npy and K.values.npy.
#include <catch2/catch.hpp>

#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>

#include "support/onnx_builder.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"

using namespace whittle;
namespace fs = std::filesystem;

namespace {

/// Writes the model around `graph` (default domain 18, ai.onnx.ml 1) to `path`.
void writeModel(const onnx::GraphProto& graph, const std::string& path) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_version(18);
  op = m.add_opset_import();
  op->set_domain("ai.onnx.ml");
  op->set_version(1);
  *m.mutable_graph() = graph;
  std::ofstream(path, std::ios::binary) << m.SerializeAsString();
}

std::string floatsFile(const testing::TempDir& dir, const std::string& name, std::vector<int64_t> dims,
                       const std::vector<float>& v) {
  std::string path = dir.file(name);
  REQUIRE(data::writeNpy(ir::Tensor::fromVector(ir::DataType::kFloat, std::move(dims), v), path).isOk());
  return path;
}

}  // namespace

TEST_CASE("whittle run writes a sequence output as a folder of .npy files", "[tools][sequence]") {
  testing::TempDir dir;
  testing::ProtoGraph g("g");
  g.input("x", onnx::TensorProto::FLOAT, {2, 3});
  g.node("SplitToSequence", {"x"}, {"parts"}, {testing::onnxInt("axis", 0)});
  g.node("Relu", {"x"}, {"y"});
  g.output("parts").output("y");
  writeModel(g.proto(), dir.file("m.onnx"));
  std::string x = floatsFile(dir, "x.npy", {2, 3}, {1, -2, 3, -4, 5, -6});
  std::string out;
  int rc = testing::shell(std::string(WHITTLE_BINARY) + " run " + dir.file("m.onnx") + " --input x=" + x +
                              " --output-dir " + dir.file("out"),
                          &out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("parts: sequence of 2") != std::string::npos);
  auto second = data::readNpy(dir.file("out/parts/1.npy"));
  REQUIRE(second.isOk());
  CHECK(second->dims() == std::vector<int64_t>{1, 3});
  CHECK(std::vector<float>(second->values<float>().begin(), second->values<float>().end()) ==
        std::vector<float>{-4, 5, -6});
  CHECK(fs::exists(dir.file("out/y.npy")));
}

namespace {

/// x [2, 2] -> ZipMap (labels 5, 9) -> probabilities, written to DIR/m.onnx; returns the path of an
/// x.npy to feed it.
std::string writeZipMapModel(const testing::TempDir& dir) {
  testing::ProtoGraph g("g");
  g.input("x", onnx::TensorProto::FLOAT, {2, 2});
  g.node("ZipMap", {"x"}, {"probabilities"}, {testing::onnxInts("classlabels_int64s", {5, 9})});
  onnx::GraphProto proto = g.output("probabilities").proto();
  proto.mutable_node(0)->set_domain("ai.onnx.ml");
  writeModel(proto, dir.file("m.onnx"));
  return floatsFile(dir, "x.npy", {2, 2}, {0.25f, 0.75f, 0.5f, 0.5f});
}

}  // namespace

TEST_CASE("whittle run writes ZipMap's sequence of maps as keys and values files", "[tools][sequence]") {
  testing::TempDir dir;
  std::string x = writeZipMapModel(dir);
  std::string out;
  int rc = testing::shell(std::string(WHITTLE_BINARY) + " run " + dir.file("m.onnx") + " --input x=" + x +
                              " --output-dir " + dir.file("out"),
                          &out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("probabilities: sequence of 2 -> ") != std::string::npos);
  CHECK(out.find("  probabilities[1]: map int64 -> float32 of 2 -> ") != std::string::npos);
  auto keys = data::readNpy(dir.file("out/probabilities/1.keys.npy"));
  auto values = data::readNpy(dir.file("out/probabilities/1.values.npy"));
  REQUIRE(keys.isOk());
  REQUIRE(values.isOk());
  CHECK(std::vector<int64_t>(keys->values<int64_t>().begin(), keys->values<int64_t>().end()) == std::vector<int64_t>{5, 9});
  CHECK(std::vector<float>(values->values<float>().begin(), values->values<float>().end()) == std::vector<float>{0.5f, 0.5f});
}

TEST_CASE("whittle bench times a model whose output is ZipMap's sequence of maps", "[tools][sequence]") {
  testing::TempDir dir;
  std::string x = writeZipMapModel(dir);
  std::string out;
  int rc = testing::shell(std::string(WHITTLE_BINARY) + " bench " + dir.file("m.onnx") + " --input x=" + x +
                              " --iterations 3 --warmup 1 --json",
                          &out);
  INFO(out);
  REQUIRE(rc == 0);  // it was "output 'probabilities' is a sequence ..., this caller takes tensor outputs only"
  CHECK(out.find("\"iterations\": 3") != std::string::npos);
}

TEST_CASE("whittle compare leaves ZipMap's sequence of maps out and compares the tensor outputs", "[tools][sequence]") {
  // A classifier as skl2onnx writes it: a tensor output beside ZipMap's sequence of maps.
  testing::TempDir dir;
  testing::ProtoGraph g("g");
  g.input("x", onnx::TensorProto::FLOAT, {2, 2});
  g.node("Identity", {"x"}, {"scores"});
  g.node("ZipMap", {"x"}, {"probabilities"}, {testing::onnxInts("classlabels_int64s", {5, 9})});
  g.output("scores");
  onnx::GraphProto proto = g.output("probabilities").proto();
  proto.mutable_node(1)->set_domain("ai.onnx.ml");
  writeModel(proto, dir.file("m.onnx"));
  const std::string x = floatsFile(dir, "x.npy", {2, 2}, {0.25f, 0.75f, 0.5f, 0.5f});
  std::string out;
  int rc = testing::shell(std::string(WHITTLE_BINARY) + " compare " + dir.file("m.onnx") + " " + dir.file("m.onnx") +
                              " --data " + x + " --latency-runs 2",
                          &out);
  INFO(out);
  REQUIRE(rc == 0);  // it was "output 'probabilities' is a sequence ..., this caller takes tensor outputs only"
  CHECK(out.find("output scores: SQNR inf dB") != std::string::npos);
  CHECK(out.find("note: output 'probabilities' is not a tensor") != std::string::npos);
}
