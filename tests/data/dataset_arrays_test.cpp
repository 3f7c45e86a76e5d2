// How stored arrays feed model inputs of any signature: scalars, batch-second states, fixed
// inputs (docs/datasets.md, "Arrays and model inputs").
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include "support/npz.h"
#include "support/python.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/data/dataset.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/tensor_proto.h"

namespace whittle {
namespace {

using data::DatasetSpec;
using data::InputSpec;
using ir::DataType;
using testing::TempDir;
using testing::writeNpz;

// A model input; -1 dims are symbolic, named `names[i]` or "d<i>".
InputSpec input(const std::string& name, DataType dtype, std::vector<int64_t> dims,
                std::vector<std::string> names = {}) {
  std::vector<ir::Dim> out;
  for (size_t i = 0; i < dims.size(); ++i) {
    std::string param = i < names.size() ? names[i] : "d" + std::to_string(i);
    out.push_back(dims[i] >= 0 ? ir::Dim::known(dims[i]) : ir::Dim::symbolic(param));
  }
  return {name, dtype, out};
}

DatasetSpec specFor(const std::string& path) {
  DatasetSpec spec;
  spec.path = path;
  return spec;
}

// A float tensor whose element i is `base + i`.
ir::Tensor iota(std::vector<int64_t> dims, float base = 0) {
  ir::Tensor t(DataType::kFloat, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.mutableData<float>()[i] = base + static_cast<float>(i);
  return t;
}

ir::Tensor int64Tensor(std::vector<int64_t> dims, const std::vector<int64_t>& values) {
  return ir::Tensor::fromVector<int64_t>(DataType::kInt64, std::move(dims), values);
}

// The model inputs of a Silero-like voice detector: audio [batch,4], a state [2,batch,3] with
// the batch second, and a scalar sample rate.
std::vector<InputSpec> vadInputs() {
  return {input("x", DataType::kFloat, {-1, 4}, {"batch"}), input("state", DataType::kFloat, {2, -1, 3}, {"", "batch"}),
          input("sr", DataType::kInt64, {})};
}

TEST_CASE("arrays: a scalar input is fed by [N] (N samples) or by a 0-d array (fixed)", "[data][dataset]") {
  TempDir dir;
  std::vector<InputSpec> inputs{input("sr", DataType::kInt64, {})};
  REQUIRE(data::writeNpy(int64Tensor({3}, {8000, 16000, 22050}), dir.file("rates.npy")).isOk());
  auto ds = data::openDataset(specFor(dir.file("rates.npy")), inputs);
  INFO(ds.status().message());
  REQUIRE(ds.isOk());
  CHECK((*ds)->size() == 3);
  CHECK((*ds)->fixedBatch() == 1);  // a scalar holds one sample per run
  auto second = (*ds)->get(1);
  REQUIRE(second.isOk());
  CHECK(second->inputs[0].second.dims().empty());
  CHECK(second->inputs[0].second.data<int64_t>()[0] == 16000);
  auto two = (*ds)->read(0, 2);
  REQUIRE_FALSE(two.isOk());
  CHECK_THAT(two.status().message(), Catch::Contains("input 'sr' has a fixed batch size of 1"));

  REQUIRE(data::writeNpy(int64Tensor({}, {16000}), dir.file("sr.npy")).isOk());
  auto fixed = data::openDataset(specFor(dir.file("sr.npy")), inputs);
  INFO(fixed.status().message());
  REQUIRE(fixed.isOk());
  CHECK((*fixed)->size() == 1);
  REQUIRE((*fixed)->slots()[0].isFixed());
  auto only = (*fixed)->get(0);
  REQUIRE(only.isOk());
  CHECK(only->inputs[0].second.dims().empty());
  CHECK(only->inputs[0].second.data<int64_t>()[0] == 16000);

  // [N,1] fits neither rule: the error says what would.
  REQUIRE(data::writeNpy(int64Tensor({3, 1}, {1, 2, 3}), dir.file("bad.npy")).isOk());
  auto bad = data::openDataset(specFor(dir.file("bad.npy")), inputs);
  REQUIRE_FALSE(bad.isOk());
  CHECK(bad.status().message() == "input 'sr' (model input []): " + dir.file("bad.npy") +
                                      " has shape [3,1]; accepted: [N] (N samples of the input's shape), [] (one tensor "
                                      "fed with every sample)");
}

TEST_CASE("arrays: a batch-second state, a fixed scalar and varying samples of another input (npz)", "[data][dataset]") {
  TempDir dir;
  // x[i] = 10 i + [0..3]; state[:, i, :] = 100 i + ...; sr fixed.
  ir::Tensor x = iota({5, 4});
  ir::Tensor state(DataType::kFloat, {2, 5, 3});
  for (int64_t d = 0; d < 2; ++d) {
    for (int64_t i = 0; i < 5; ++i) {
      for (int64_t h = 0; h < 3; ++h) state.mutableData<float>()[(d * 5 + i) * 3 + h] = static_cast<float>(100 * i + 10 * d + h);
    }
  }
  if (!writeNpz(dir.file("calib.npz"), {{"x", x}, {"state", state}, {"sr", int64Tensor({}, {16000})}}, dir.path())) return;
  auto ds = data::openDataset(specFor(dir.file("calib.npz")), vadInputs());
  INFO(ds.status().message());
  REQUIRE(ds.isOk());
  CHECK((*ds)->size() == 5);  // the fixed sr does not count
  CHECK_FALSE((*ds)->fixedBatch());
  CHECK((*ds)->slots()[1].batchAxis == 1);
  CHECK((*ds)->slots()[2].isFixed());
  CHECK_THAT((*ds)->describe(), Catch::Contains("fixed: sr"));
  REQUIRE((*ds)->next(3).isOk());
  auto batch = (*ds)->next(2);  // samples 3 and 4
  REQUIRE(batch.isOk());
  REQUIRE(batch->inputs.size() == 3);
  const ir::Tensor& xs = batch->inputs[0].second;
  CHECK(xs.dims() == std::vector<int64_t>{2, 4});
  CHECK(xs.data<float>()[0] == 12.0f);
  const ir::Tensor& st = batch->inputs[1].second;
  REQUIRE(st.dims() == std::vector<int64_t>{2, 2, 3});
  // st[d, b, h] = state[d, 3 + b, h]
  for (int64_t d = 0; d < 2; ++d) {
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t h = 0; h < 3; ++h) {
        CAPTURE(d, b, h);
        CHECK(st.data<float>()[(d * 2 + b) * 3 + h] == static_cast<float>(100 * (3 + b) + 10 * d + h));
      }
    }
  }
  CHECK(batch->inputs[2].second.dims().empty());
  CHECK(batch->inputs[2].second.data<int64_t>()[0] == 16000);
  CHECK(batch->ids == std::vector<std::string>{dir.file("calib.npz") + ":x.npy[3]", dir.file("calib.npz") + ":x.npy[4]"});

  // The same samples with the state stacked along a new first axis ([N,2,1,3]) and the sample
  // rate varying per sample ([N]): one sample per run, as a scalar allows no more.
  ir::Tensor stacked(DataType::kFloat, {5, 2, 1, 3});
  for (int64_t i = 0; i < 5; ++i) {
    for (int64_t d = 0; d < 2; ++d) {
      for (int64_t h = 0; h < 3; ++h) {
        stacked.mutableData<float>()[(i * 2 + d) * 3 + h] = state.data<float>()[(d * 5 + i) * 3 + h];
      }
    }
  }
  if (!writeNpz(dir.file("stacked.npz"),
                {{"x", x}, {"state", stacked}, {"sr", int64Tensor({5}, {8000, 16000, 8000, 16000, 8000})}}, dir.path())) {
    return;
  }
  auto per = data::openDataset(specFor(dir.file("stacked.npz")), vadInputs());
  INFO(per.status().message());
  REQUIRE(per.isOk());
  CHECK((*per)->size() == 5);
  CHECK((*per)->fixedBatch() == 1);
  auto four = (*per)->get(4);
  REQUIRE(four.isOk());
  CHECK(four->inputs[0].second.dims() == std::vector<int64_t>{1, 4});
  REQUIRE(four->inputs[1].second.dims() == std::vector<int64_t>{2, 1, 3});
  CHECK(four->inputs[1].second.data<float>()[3] == 410.0f);  // state[1, 4, 0]
  CHECK(four->inputs[2].second.data<int64_t>()[0] == 8000);

  // Arrays that disagree on the number of samples: the error names both.
  if (!writeNpz(dir.file("mismatch.npz"), {{"x", x}, {"state", iota({2, 4, 3})}, {"sr", int64Tensor({}, {16000})}},
                dir.path())) {
    return;
  }
  auto mismatch = data::openDataset(specFor(dir.file("mismatch.npz")), vadInputs());
  REQUIRE_FALSE(mismatch.isOk());
  CHECK_THAT(mismatch.status().message(),
             Catch::StartsWith(dir.file("mismatch.npz") + ": arrays hold different numbers of samples: " +
                               dir.file("mismatch.npz") + ":x.npy has 5, " + dir.file("mismatch.npz") +
                               ":state.npy has 4"));

  // A state that fits no rule: the error names the input, the array, its shape and what fits.
  if (!writeNpz(dir.file("wrong.npz"), {{"x", x}, {"state", iota({3, 5, 3})}, {"sr", int64Tensor({}, {16000})}},
                dir.path())) {
    return;
  }
  auto wrong = data::openDataset(specFor(dir.file("wrong.npz")), vadInputs());
  REQUIRE_FALSE(wrong.isOk());
  CHECK(wrong.status().message() == "input 'state' (model input [2,batch,3]): " + dir.file("wrong.npz") +
                                        ":state.npy has shape [3,5,3]; accepted: [N,2,batch,3] (N samples of the "
                                        "input's shape), [2,N,3] (N samples along its batch axis 1)");
}

TEST_CASE("arrays: an input whose batch axis cannot be told takes only whole samples", "[data][dataset]") {
  TempDir dir;
  // [1,seq]: samples could lie along axis 0 or along the free sequence axis.
  std::vector<InputSpec> inputs{input("audio", DataType::kFloat, {1, -1}, {"", "seq"})};
  REQUIRE(data::writeNpy(iota({1, 8}), dir.file("one.npy")).isOk());
  auto ambiguous = data::openDataset(specFor(dir.file("one.npy")), inputs);
  REQUIRE_FALSE(ambiguous.isOk());
  CHECK_THAT(ambiguous.status().message(), Catch::StartsWith("input 'audio' (model input [1,seq]): " +
                                                             dir.file("one.npy") + " has shape [1,8]; its batch axis "
                                                                                   "is ambiguous"));
  CHECK_THAT(ambiguous.status().message(), Catch::EndsWith("accepted: [N,1,seq] (N samples of the input's shape)"));
  REQUIRE(data::writeNpy(iota({3, 1, 8}), dir.file("three.npy")).isOk());
  auto whole = data::openDataset(specFor(dir.file("three.npy")), inputs);
  INFO(whole.status().message());
  REQUIRE(whole.isOk());
  CHECK((*whole)->size() == 3);
  CHECK((*whole)->fixedBatch() == 1);
  auto last = (*whole)->get(2);
  REQUIRE(last.isOk());
  CHECK(last->inputs[0].second.dims() == std::vector<int64_t>{1, 8});
  CHECK(last->inputs[0].second.data<float>()[0] == 16.0f);
}

TEST_CASE("arrays: pb folders feed states of the input's whole shape and a 0-d scalar, per set", "[data][dataset]") {
  TempDir dir;
  // Silero's sequence model: input [sequence,576] and states h, c [1,1,128] (here [1,1,2]).
  std::vector<InputSpec> inputs{input("input", DataType::kFloat, {-1, 6}, {"sequence"}),
                                input("h", DataType::kFloat, {1, 1, 2}), input("c", DataType::kFloat, {1, 1, 2})};
  for (int set = 0; set < 2; ++set) {
    std::string folder = dir.file("test_data_set_" + std::to_string(set));
    std::filesystem::create_directories(folder);
    REQUIRE(onnx_io::writeTensorFile(iota({4, 6}, 100.0f * set), "input", folder + "/input_0.pb").isOk());
    REQUIRE(onnx_io::writeTensorFile(iota({1, 1, 2}, 7), "h", folder + "/input_1.pb").isOk());
    REQUIRE(onnx_io::writeTensorFile(iota({1, 1, 2}, 9 + 10.0f * set), "c", folder + "/input_2.pb").isOk());
  }
  auto ds = data::openDataset(specFor(dir.path()), inputs);
  INFO(ds.status().message());
  REQUIRE(ds.isOk());
  CHECK((*ds)->kind() == data::DatasetKind::kTensorProto);
  CHECK((*ds)->size() == 8);  // 4 rows of `input` per set; h and c are each set's value
  CHECK_FALSE((*ds)->slots()[1].isFixed());
  CHECK((*ds)->fixedBatch() == 1);  // h is declared [1,1,2]
  auto one = (*ds)->get(1);
  REQUIRE(one.isOk());
  CHECK(one->inputs[0].second.dims() == std::vector<int64_t>{1, 6});
  CHECK(one->inputs[0].second.data<float>()[0] == 6.0f);
  CHECK(one->inputs[1].second.dims() == std::vector<int64_t>{1, 1, 2});
  CHECK(one->inputs[2].second.data<float>()[1] == 10.0f);
  auto later = (*ds)->get(6);  // set 1, row 2
  REQUIRE(later.isOk());
  CHECK(later->inputs[0].second.data<float>()[0] == 112.0f);
  CHECK(later->inputs[2].second.data<float>()[1] == 20.0f);
  CHECK(later->ids[0] == "test_data_set_1[2]");

  // The same states in a .npy beside no other input: one fixed sample.
  REQUIRE(data::writeNpy(iota({1, 1, 2}, 7), dir.file("h.npy")).isOk());
  auto fixed = data::openDataset(specFor(dir.file("h.npy")), {inputs[1]});
  INFO(fixed.status().message());
  REQUIRE(fixed.isOk());
  CHECK((*fixed)->slots()[0].isFixed());
  CHECK((*fixed)->size() == 1);
}

TEST_CASE("arrays: pb folders feed a batch-second state and a 0-d scalar", "[data][dataset]") {
  TempDir dir;
  std::string set = dir.file("test_data_set_0");
  std::filesystem::create_directories(set);
  REQUIRE(onnx_io::writeTensorFile(iota({3, 4}), "x", set + "/input_0.pb").isOk());
  REQUIRE(onnx_io::writeTensorFile(iota({2, 3, 3}), "state", set + "/input_1.pb").isOk());
  REQUIRE(onnx_io::writeTensorFile(int64Tensor({}, {16000}), "sr", set + "/input_2.pb").isOk());
  auto ds = data::openDataset(specFor(dir.path()), vadInputs());
  INFO(ds.status().message());
  REQUIRE(ds.isOk());
  CHECK((*ds)->size() == 3);
  CHECK((*ds)->fixedBatch() == 1);  // the set's scalar sr: one sample per run
  auto batch = (*ds)->get(2);
  REQUIRE(batch.isOk());
  CHECK(batch->inputs[0].second.dims() == std::vector<int64_t>{1, 4});
  const ir::Tensor& st = batch->inputs[1].second;
  REQUIRE(st.dims() == std::vector<int64_t>{2, 1, 3});
  // st[d, 0, h] = state[d, 2, h] = 9 d + 6 + h
  CHECK(st.data<float>()[0] == 6.0f);
  CHECK(st.data<float>()[4] == 16.0f);
  CHECK(batch->inputs[2].second.dims().empty());
  CHECK(batch->inputs[2].second.data<int64_t>()[0] == 16000);
}

// The model of the end-to-end test: y = MatMul(x, W) + ReduceSum(state over axis 0, [batch,3])
// times sr / 16000, with the state's batch second and a scalar int64 sample rate.
const char* kVadModel = R"(
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(0)
w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
k = numpy_helper.from_array(np.array(1.0 / 16000, np.float32), "k")
nodes = [
    helper.make_node("MatMul", ["x", "W"], ["xw"]),
    helper.make_node("ReduceSum", ["state", "axes"], ["s"], keepdims=0),
    helper.make_node("Add", ["xw", "s"], ["sum"]),
    helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
    helper.make_node("Mul", ["srf", "k"], ["scale"]),
    helper.make_node("Mul", ["sum", "scale"], ["y"]),
]
graph = helper.make_graph(nodes, "vad", [
    helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
    helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "batch", 3]),
    helper.make_tensor_value_info("sr", TensorProto.INT64, []),
], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], [w, axes, k])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1] + "/vad.onnx")
np.savez(sys.argv[1] + "/calib.npz", x=rng.standard_normal((16, 4)).astype(np.float32),
         state=rng.standard_normal((2, 16, 3)).astype(np.float32), sr=np.array(16000, np.int64))
np.savez(sys.argv[1] + "/one.npz", x=rng.standard_normal((1, 4)).astype(np.float32),
         state=rng.standard_normal((2, 1, 3)).astype(np.float32), sr=np.array(16000, np.int64))
)";

// Writes vad.onnx, calib.npz and one.npz (kVadModel) into `dir`.
void writeVadModel(const TempDir& dir) {
  std::string out;
  int rc = testing::shell(testing::python() + " -c " + testing::shellQuote(kVadModel) + " " + testing::shellQuote(dir.path()),
                          &out);
  INFO(out);
  REQUIRE(rc == 0);
}

TEST_CASE("arrays: a model with a scalar input and a batch-second state quantizes to int8 with --calib X.npz",
          "[data][dataset][cli]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "to build the model and check the int8 one")) return;
  TempDir dir;
  writeVadModel(dir);
  auto q = testing::runWhittle("optimize " + testing::shellQuote(dir.file("vad.onnx")) + " -o " +
                               testing::shellQuote(dir.file("vad.int8.onnx")) + " --quantize int8 --calib " +
                               testing::shellQuote(dir.file("calib.npz")));
  INFO(q.out);
  REQUIRE(q.exitCode == 0);
  auto run = testing::runWhittle("run " + testing::shellQuote(dir.file("vad.int8.onnx")) + " --input " +
                                 testing::shellQuote(dir.file("one.npz")) + " -o " + testing::shellQuote(dir.file("out")));
  INFO(run.out);
  CHECK(run.exitCode == 0);
  // ONNX Runtime loads the int8 model, which has quantized the MatMul and stays near the float one.
  const char* check = R"(
import sys, numpy as np, onnx, onnxruntime as ort
d = sys.argv[1]
q = onnx.load(d + "/vad.int8.onnx")
assert any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "MatMulInteger", "QLinearMatMul") for n in q.graph.node), [n.op_type for n in q.graph.node]
feeds = dict(np.load(d + "/one.npz"))
a = ort.InferenceSession(d + "/vad.onnx", providers=["CPUExecutionProvider"]).run(None, feeds)[0]
b = ort.InferenceSession(d + "/vad.int8.onnx", providers=["CPUExecutionProvider"]).run(None, feeds)[0]
err = float(np.abs(a - b).max())
print("max abs error", err, "of", float(np.abs(a).max()))
assert err <= 0.05 * max(1.0, float(np.abs(a).max())), err
)";
  std::string out;
  int rc = testing::shell(testing::python() + " -c " + testing::shellQuote(check) + " " + testing::shellQuote(dir.path()), &out);
  INFO(out);
  CHECK(rc == 0);
}

TEST_CASE("arrays: --fixed-input feeds the state and the sample rate while a .npy of audio feeds x (optimize, compare)",
          "[data][dataset][cli]") {
  if (!testing::requirePython("numpy, onnx", "to build the model")) return;
  TempDir dir;
  writeVadModel(dir);
  REQUIRE(data::writeNpy(iota({16, 4}, -8), dir.file("x.npy")).isOk());
  REQUIRE(data::writeNpy(iota({2, 1, 3}, -3), dir.file("h0.npy")).isOk());
  const std::string fixed = " --fixed-input sr=16000 --fixed-input state=" + testing::shellQuote(dir.file("h0.npy"));
  // Without the flag the audio alone cannot feed the model.
  auto refused = testing::runWhittle("optimize " + testing::shellQuote(dir.file("vad.onnx")) + " -o " +
                                     testing::shellQuote(dir.file("no.onnx")) + " --quantize int8 --calib " +
                                     testing::shellQuote(dir.file("x.npy")));
  CHECK(refused.exitCode == 2);
  CHECK_THAT(refused.out, Catch::Contains("--fixed-input NAME=VALUE"));
  CHECK_FALSE(std::filesystem::exists(dir.file("no.onnx")));
  auto q = testing::runWhittle("optimize " + testing::shellQuote(dir.file("vad.onnx")) + " -o " +
                               testing::shellQuote(dir.file("vad.int8.onnx")) + " --quantize int8 --calib " +
                               testing::shellQuote(dir.file("x.npy")) + fixed);
  INFO(q.out);
  REQUIRE(q.exitCode == 0);
  auto c = testing::runWhittle("compare " + testing::shellQuote(dir.file("vad.onnx")) + " " +
                               testing::shellQuote(dir.file("vad.int8.onnx")) + " --data " +
                               testing::shellQuote(dir.file("x.npy")) + fixed + " --json -", false);
  INFO(c.out);
  CHECK(c.exitCode == 0);
  CHECK_THAT(c.out, Catch::Contains("\"samples\": 16"));
  auto bad = testing::runWhittle("compare " + testing::shellQuote(dir.file("vad.onnx")) + " " +
                                 testing::shellQuote(dir.file("vad.int8.onnx")) + " --data " +
                                 testing::shellQuote(dir.file("x.npy")) + " --fixed-input rate=16000");
  CHECK(bad.exitCode == 2);
  CHECK_THAT(bad.out, Catch::Contains("--fixed-input rate=16000: the model has no input named 'rate' (inputs: x, state, sr)"));
}

}  // namespace
}  // namespace whittle
