// Bad input: every malformed model gets a one-line error that names the file and the node or
// tensor at fault, with a documented exit code (2 bad input, 1 internal error), and nothing
// is written. Each case goes through onnx_io::load and through `whittle inspect`.
#include <catch2/catch.hpp>
#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <set>

#include "support/graph_builder.h"
#include "support/temp_dir.h"
#include "whittle/onnx_io/onnx_io.h"

using namespace whittle;
using ir::DataType;
using testing::TempDir;

namespace {

// ------------------------------------------------------------------ model fragments

void addTensorInfo(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list, const std::string& name,
                   int32_t elemType = onnx::TensorProto::FLOAT) {
  auto* info = list->Add();
  info->set_name(name);
  info->mutable_type()->mutable_tensor_type()->set_elem_type(elemType);
  info->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(3);
}

onnx::NodeProto* addNode(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& inputs,
                         const std::vector<std::string>& outputs, const std::string& name) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& in : inputs) n->add_input(in);
  for (const auto& out : outputs) n->add_output(out);
  return n;
}

// y = Relu(Add(x, w)): a valid model that each case below breaks in one way.
onnx::ModelProto validModel() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("g");
  addTensorInfo(g->mutable_input(), "x");
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(3);
  for (float f : {1.f, 2.f, 3.f}) w->add_float_data(f);
  addNode(g, "Add", {"x", "w"}, {"s"}, "add");
  addNode(g, "Relu", {"s"}, {"y"}, "relu");
  addTensorInfo(g->mutable_output(), "y");
  return m;
}

void makeExternal(onnx::TensorProto* t, const std::string& location, int64_t offset) {
  t->clear_float_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* l = t->add_external_data();
  l->set_key("location");
  l->set_value(location);
  auto* o = t->add_external_data();
  o->set_key("offset");
  o->set_value(std::to_string(offset));
}

// ------------------------------------------------------------------------- the cases

struct BadCase {
  std::string title;
  // Writes the bad model (and whatever it needs) into the folder; returns the model's path.
  std::function<std::string(const TempDir&)> make;
  StatusCode code;
  std::vector<std::string> mentions;  ///< Besides the file: the node, tensor or problem.
};

std::string writeModel(const TempDir& dir, const onnx::ModelProto& m, const std::string& name = "model.onnx") {
  std::string path = dir.file(name);
  testing::writeBytes(path, m.SerializeAsString());
  return path;
}

std::string truncatedModel(const TempDir& dir, double fraction) {
  testing::GraphBuilder b(1);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 1024});
  b.output(b.node("Add", {x, b.weight("w", {1024})}), DataType::kFloat, {1, 1024});
  auto bytes = onnx_io::serialize(b.build(17));
  REQUIRE(bytes.isOk());
  std::string path = dir.file("truncated.onnx");
  testing::writeBytes(path, bytes->substr(0, static_cast<size_t>(static_cast<double>(bytes->size()) * fraction)));
  return path;
}

std::vector<BadCase> badCases() {
  std::vector<BadCase> cases;
  auto modelCase = [&](std::string title, std::function<void(onnx::ModelProto&)> breakIt, StatusCode code,
                       std::vector<std::string> mentions) {
    cases.push_back({std::move(title),
                     [breakIt](const TempDir& dir) {
                       onnx::ModelProto m = validModel();
                       breakIt(m);
                       return writeModel(dir, m);
                     },
                     code, std::move(mentions)});
  };

  // ---- not a model at all
  cases.push_back({"a text file",
                   [](const TempDir& dir) {
                     std::string path = dir.file("notes.onnx");
                     testing::writeBytes(path, "this is not an ONNX model\nbut a text file\n");
                     return path;
                   },
                   StatusCode::kInvalidInput, {"not a valid ONNX model"}});
  cases.push_back({"a PNG image",
                   [](const TempDir& dir) {
                     std::string path = dir.file("image.onnx");
                     testing::writeBytes(path, std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10", 20));
                     return path;
                   },
                   StatusCode::kInvalidInput, {"not a valid ONNX model"}});
  cases.push_back({"an empty file",
                   [](const TempDir& dir) {
                     std::string path = dir.file("empty.onnx");
                     testing::writeBytes(path, "");
                     return path;
                   },
                   StatusCode::kInvalidInput, {"empty file"}});
  cases.push_back({"a protobuf that is not a model (a TensorProto)",
                   [](const TempDir& dir) {
                     onnx::TensorProto t;
                     t.set_name("t");
                     t.set_data_type(onnx::TensorProto::FLOAT);
                     t.add_float_data(1.f);
                     std::string path = dir.file("tensor.onnx");
                     testing::writeBytes(path, t.SerializeAsString());
                     return path;
                   },
                   StatusCode::kInvalidInput, {"ONNX model"}});
  for (double fraction : {0.003, 0.5, 0.9}) {
    cases.push_back({"a file truncated to " + std::to_string(fraction),
                     [fraction](const TempDir& dir) { return truncatedModel(dir, fraction); }, StatusCode::kInvalidInput,
                     {"malformed or truncated"}});
  }
  cases.push_back({"a model file that does not exist", [](const TempDir& dir) { return dir.file("missing.onnx"); },
                   StatusCode::kNotFound, {"no such file"}});
  cases.push_back({"a folder instead of a file",
                   [](const TempDir& dir) {
                     std::string path = dir.file("folder.onnx");
                     ::mkdir(path.c_str(), 0755);
                     return path;
                   },
                   StatusCode::kIoError, {"directory"}});
  cases.push_back({"a model file over 2 GB (sparse, nothing read)",
                   [](const TempDir& dir) {
                     std::string path = dir.file("huge.onnx");
                     testing::writeBytes(path, "");
                     REQUIRE(::truncate(path.c_str(), (int64_t{1} << 31) + 1) == 0);
                     return path;
                   },
                   StatusCode::kUnimplemented, {"over 2 GB", "external data"}});

  // ---- external data
  cases.push_back({"a missing external-data file",
                   [](const TempDir& dir) {
                     onnx::ModelProto m = validModel();
                     makeExternal(m.mutable_graph()->mutable_initializer(0), "weights.bin", 0);
                     return writeModel(dir, m);
                   },
                   StatusCode::kNotFound, {"initializer 'w'", "'weights.bin' not found"}});
  cases.push_back({"an external-data file too short for the tensor",
                   [](const TempDir& dir) {
                     onnx::ModelProto m = validModel();
                     makeExternal(m.mutable_graph()->mutable_initializer(0), "weights.bin", 8);
                     testing::writeBytes(dir.file("weights.bin"), std::string(12, '\0'));
                     return writeModel(dir, m);
                   },
                   StatusCode::kInvalidInput, {"tensor 'w'", "'weights.bin' holds 12 bytes", "8..20"}});
  cases.push_back({"an external-data offset near the top of int64 (no overflow)",
                   [](const TempDir& dir) {
                     onnx::ModelProto m = validModel();
                     makeExternal(m.mutable_graph()->mutable_initializer(0), "weights.bin", INT64_MAX - 4);
                     testing::writeBytes(dir.file("weights.bin"), std::string(64, '\0'));
                     return writeModel(dir, m);
                   },
                   StatusCode::kInvalidInput, {"tensor 'w'", "'weights.bin' holds 64 bytes"}});
  modelCase("an external-data location outside the model's folder",
            [](onnx::ModelProto& m) { makeExternal(m.mutable_graph()->mutable_initializer(0), "../../etc/passwd", 0); },
            StatusCode::kInvalidInput, {"tensor 'w'", "'../../etc/passwd'", "relative path inside the model's folder"});
  modelCase("an external-data offset that is not a number",
            [](onnx::ModelProto& m) {
              makeExternal(m.mutable_graph()->mutable_initializer(0), "weights.bin", 0);
              m.mutable_graph()->mutable_initializer(0)->mutable_external_data(1)->set_value("zero");
            },
            StatusCode::kInvalidInput, {"tensor 'w'", "offset 'zero' is not a number"});

  // ---- graph structure
  modelCase("a graph with a cycle",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_node(0)->set_input(0, "y"); },
            StatusCode::kInvalidInput, {"graph has a cycle through", "'add'"});
  modelCase("a node input that nothing produces",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_node(1)->set_input(0, "ghost"); },
            StatusCode::kInvalidInput, {"Relu 'relu'", "input 'ghost'", "produced by no node"});
  modelCase("two producers of one tensor",
            [](onnx::ModelProto& m) { addNode(m.mutable_graph(), "Neg", {"x"}, {"s"}, "neg"); },
            StatusCode::kInvalidInput, {"tensor 's'", "produced by two nodes", "Add 'add'", "Neg 'neg'"});
  // Kernels index their inputs by position: the schema's arity is checked at load, as in ORT.
  modelCase("a node with fewer inputs than its schema takes",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_node(0)->mutable_input()->RemoveLast(); },
            StatusCode::kInvalidInput, {"Add 'add'", "has 1 input;", "Add-14 takes 2"});
  modelCase("a node with more inputs than its schema takes",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_node(1)->add_input("w"); },
            StatusCode::kInvalidInput, {"Relu 'relu'", "has 2 inputs;", "Relu-14 takes 1"});
  modelCase("a node with more outputs than its schema gives",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_node(1)->add_output("extra"); },
            StatusCode::kInvalidInput, {"Relu 'relu'", "has 2 outputs;", "Relu-14 gives 1"});
  modelCase("an attribute the op does not have",
            [](onnx::ModelProto& m) {
              auto* a = m.mutable_graph()->mutable_node(1)->add_attribute();
              a->set_name("alpha");
              a->set_type(onnx::AttributeProto::FLOAT);
              a->set_f(0.1f);
            },
            StatusCode::kInvalidInput, {"Relu 'relu'", "attribute 'alpha' is not part of Relu-14"});
  // A model whose opset was raised without converting its nodes: ReduceSum's axes is an input from 13.
  modelCase("an attribute that became an input at the model's opset",
            [](onnx::ModelProto& m) {
              addNode(m.mutable_graph(), "ReduceSum", {"x"}, {"total"}, "reduce");
              auto* a = m.mutable_graph()->mutable_node(m.graph().node_size() - 1)->add_attribute();
              a->set_name("axes");
              a->set_type(onnx::AttributeProto::INTS);
              a->add_ints(1);
            },
            StatusCode::kInvalidInput, {"ReduceSum 'reduce'", "attribute 'axes' is not part of ReduceSum-13",
                                        "there it is an input"});
  // Past libonnx's schemas (17) our own table knows the attributes that became inputs: ONNX
  // Runtime's 4-bit quantizer raises SmolLM2 to opset 21 leaving ReduceMean's axes an attribute,
  // which the kernel (reading the axes input) would ignore and reduce over every axis.
  modelCase("an attribute that became an input at opset 18, at opset 21",
            [](onnx::ModelProto& m) {
              m.mutable_opset_import(0)->set_version(21);
              addNode(m.mutable_graph(), "ReduceMean", {"x"}, {"mean"}, "norm_mean");
              auto* a = m.mutable_graph()->mutable_node(m.graph().node_size() - 1)->add_attribute();
              a->set_name("axes");
              a->set_type(onnx::AttributeProto::INTS);
              a->add_ints(-1);
            },
            StatusCode::kInvalidInput, {"ReduceMean 'norm_mean'", "attribute 'axes' is not part of ReduceMean at opset 21",
                                        "an input from ReduceMean-18 on"});
  // Inside a subgraph too: the IR keeps bodies serialized and the runtime decodes them later.
  modelCase("an attribute that became an input, inside an If branch",
            [](onnx::ModelProto& m) {
              m.mutable_opset_import(0)->set_version(21);
              onnx::NodeProto* ifNode = m.mutable_graph()->add_node();
              ifNode->set_op_type("If");
              ifNode->set_name("gate");
              ifNode->add_input("x");
              ifNode->add_output("branch_out");
              for (const char* name : {"then_branch", "else_branch"}) {
                onnx::AttributeProto* a = ifNode->add_attribute();
                a->set_name(name);
                a->set_type(onnx::AttributeProto::GRAPH);
                onnx::GraphProto* g = a->mutable_g();
                g->set_name(name);
                onnx::NodeProto* r = g->add_node();
                r->set_op_type("ReduceMean");
                r->set_name("inner_mean");
                r->add_input("x");
                r->add_output("m");
                onnx::AttributeProto* axes = r->add_attribute();
                axes->set_name("axes");
                axes->set_type(onnx::AttributeProto::INTS);
                axes->add_ints(-1);
                g->add_output()->set_name("m");
              }
            },
            StatusCode::kInvalidInput, {"If 'gate' > then_branch: ReduceMean 'inner_mean'",
                                        "attribute 'axes' is not part of ReduceMean at opset 21"});
  modelCase("DFT's axis attribute at opset 20",
            [](onnx::ModelProto& m) {
              m.mutable_opset_import(0)->set_version(20);
              addNode(m.mutable_graph(), "DFT", {"x"}, {"spectrum"}, "dft");
              auto* a = m.mutable_graph()->mutable_node(m.graph().node_size() - 1)->add_attribute();
              a->set_name("axis");
              a->set_type(onnx::AttributeProto::INT);
              a->set_i(1);
            },
            StatusCode::kInvalidInput, {"DFT 'dft'", "attribute 'axis' is not part of DFT at opset 20",
                                        "an input from DFT-20 on"});
  // At an opset newer than libonnx knows, the newest schema's minimum counts still hold.
  modelCase("a node with too few inputs at an opset newer than libonnx knows",
            [](onnx::ModelProto& m) {
              m.mutable_opset_import(0)->set_version(onnx_io::libonnxMaxOpset() + 1);
              m.mutable_graph()->mutable_node(0)->mutable_input()->RemoveLast();
            },
            StatusCode::kInvalidInput, {"Add 'add'", "has 1 input;", "takes 2"});
  cases.push_back({"a Div with no inputs at opset 20 (fuzz regression)",
                   [](const TempDir& dir) {
                     std::string path = dir.file("div.onnx");
                     testing::writeBytes(path, testing::readBytes(std::string(WHITTLE_SOURCE_DIR) +
                                                                  "/tests/fuzz_regressions/optimize_div_without_inputs_opset20.onnx"));
                     return path;
                   },
                   StatusCode::kInvalidInput, {"Div", "has 0 inputs;", "takes 2"}});
  // Found by fuzz_optimize: a one-input MatMul reached fold-constants' kernel run.
  cases.push_back({"a MatMul with one input (fuzz regression)",
                   [](const TempDir& dir) {
                     std::string path = dir.file("matmul.onnx");
                     testing::writeBytes(path, testing::readBytes(std::string(WHITTLE_SOURCE_DIR) +
                                                                  "/tests/fuzz_regressions/optimize_matmul_with_one_input.onnx"));
                     return path;
                   },
                   StatusCode::kInvalidInput, {"MatMul", "has 1 input;", "takes 2"}});
  // Found by fuzz_model_load: an unknown attribute without a type loaded (its type came from its
  // value) and was saved with the type, so the saved model did not load.
  cases.push_back({"an unknown attribute without a type (fuzz regression)",
                   [](const TempDir& dir) {
                     std::string path = dir.file("transpose.onnx");
                     testing::writeBytes(path, testing::readBytes(std::string(WHITTLE_SOURCE_DIR) +
                                                                  "/tests/fuzz_regressions/model_load_untyped_unknown_attribute.onnx"));
                     return path;
                   },
                   StatusCode::kInvalidInput, {"Transpose #1", "attribute 'per@' is not part of Transpose-13"}});
  modelCase("a node output that overwrites an initializer",
            [](onnx::ModelProto& m) { addNode(m.mutable_graph(), "Neg", {"x"}, {"w"}, "neg"); },
            StatusCode::kInvalidInput, {"Neg 'neg'", "output 'w'", "initializer"});
  modelCase("a graph output that nothing produces",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_output(0)->set_name("nowhere"); },
            StatusCode::kInvalidInput, {"graph output 'nowhere'"});
  modelCase("two initializers with one name",
            [](onnx::ModelProto& m) { *m.mutable_graph()->add_initializer() = m.graph().initializer(0); },
            StatusCode::kInvalidInput, {"two initializers are named 'w'"});
  modelCase("two graph inputs with one name",
            [](onnx::ModelProto& m) { addTensorInfo(m.mutable_graph()->mutable_input(), "x"); },
            StatusCode::kInvalidInput, {"two graph inputs are named 'x'"});
  modelCase("a subgraph that reads a name defined nowhere",
            [](onnx::ModelProto& m) {
              auto* g = m.mutable_graph();
              addTensorInfo(g->mutable_input(), "cond", onnx::TensorProto::BOOL);
              auto* ifNode = addNode(g, "If", {"cond"}, {"r"}, "branch");
              for (const char* name : {"then_branch", "else_branch"}) {
                auto* a = ifNode->add_attribute();
                a->set_name(name);
                a->set_type(onnx::AttributeProto::GRAPH);
                addNode(a->mutable_g(), "Identity", {"nowhere"}, {"o"}, "inner");
                addTensorInfo(a->mutable_g()->mutable_output(), "o");
              }
            },
            StatusCode::kInvalidInput, {"If 'branch'", "reads 'nowhere'"});
  modelCase("a node without an op type",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_node(1)->clear_op_type(); },
            StatusCode::kInvalidInput, {"'relu'", "empty op_type"});

  // ---- tensors and types
  modelCase("an unknown data type in an initializer",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_initializer(0)->set_data_type(99); },
            StatusCode::kInvalidInput, {"initializer 'w'", "unknown data type 99"});
  modelCase("a FLOAT8E8M0 initializer (IR 12), a type whittle does not hold",
            [](onnx::ModelProto& m) {
              m.set_ir_version(12);
              m.mutable_graph()->mutable_initializer(0)->set_data_type(24);
            },
            StatusCode::kUnimplemented, {"initializer 'w'", "FLOAT8E8M0", "IR version 12"});
  modelCase("an INT2 graph input (IR 13)",
            [](onnx::ModelProto& m) {
              m.set_ir_version(13);
              m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(26);
            },
            StatusCode::kUnimplemented, {"value 'x'", "INT2"});
  modelCase("an unknown data type in a graph input",
            [](onnx::ModelProto& m) {
              m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(99);
            },
            StatusCode::kInvalidInput, {"value 'x'", "unknown data type 99"});
  modelCase("an unknown data type in a tensor attribute",
            [](onnx::ModelProto& m) {
              auto* n = addNode(m.mutable_graph(), "Constant", {}, {"k"}, "const");
              auto* a = n->add_attribute();
              a->set_name("value");
              a->set_type(onnx::AttributeProto::TENSOR);
              a->mutable_t()->set_name("k_value");
              a->mutable_t()->set_data_type(1234);
            },
            StatusCode::kInvalidInput, {"Constant 'const'", "attribute 'value'", "unknown data type 1234"});
  modelCase("fewer typed values than the dims need",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_initializer(0)->mutable_float_data()->RemoveLast(); },
            StatusCode::kInvalidInput, {"tensor 'w'", "has 2 values, dims [3] need 3"});
  modelCase("raw data of the wrong size",
            [](onnx::ModelProto& m) {
              auto* w = m.mutable_graph()->mutable_initializer(0);
              w->clear_float_data();
              w->set_raw_data(std::string(10, '\0'));
            },
            StatusCode::kInvalidInput, {"tensor 'w'", "has 10 bytes of data, dims [3] of float32 need 12"});
  modelCase("a negative dimension",
            [](onnx::ModelProto& m) { m.mutable_graph()->mutable_initializer(0)->set_dims(0, -3); },
            StatusCode::kInvalidInput, {"tensor 'w'", "negative dimension"});
  modelCase("an attribute of an unknown type",
            [](onnx::ModelProto& m) {
              // No type and no value to infer one from.
              m.mutable_graph()->mutable_node(1)->add_attribute()->set_name("odd");
            },
            StatusCode::kInvalidInput, {"Relu 'relu'", "attribute 'odd'", "unknown type 0"});

  // ---- versions
  modelCase("no IR version", [](onnx::ModelProto& m) { m.clear_ir_version(); }, StatusCode::kInvalidInput,
            {"no ir_version"});
  modelCase("no graph", [](onnx::ModelProto& m) { m.clear_graph(); }, StatusCode::kInvalidInput, {"no graph"});
  modelCase("an IR version newer than whittle reads", [](onnx::ModelProto& m) { m.set_ir_version(99); },
            StatusCode::kUnimplemented, {"IR version 99"});
  return cases;
}

// ----------------------------------------------------------------------- helpers

struct FileState {
  bool exists = false;
  std::string bytes;
  int64_t mtimeNs = 0;
  bool operator==(const FileState&) const = default;
};

FileState fileState(const std::string& path) {
  FileState s;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.mtimeNs = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (S_ISREG(st.st_mode) && st.st_size < (1 << 20)) s.bytes = testing::readBytes(path);
  return s;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

struct CliResult {
  int exitCode = -1;
  std::string out;
  std::string err;
};

// Runs the whittle binary with `args`, capturing stdout and stderr into files of `scratch`.
CliResult runWhittle(const std::string& args, const TempDir& scratch) {
  std::string out = scratch.file("stdout.txt");
  std::string err = scratch.file("stderr.txt");
  std::string command = quote(WHITTLE_BINARY) + " " + args + " >" + quote(out) + " 2>" + quote(err);
  int status = std::system(command.c_str());
  CliResult r;
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = testing::readBytes(out);
  r.err = testing::readBytes(err);
  return r;
}

size_t countLines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_CASE("exit codes: 0 ok, 2 bad input, 1 internal error", "[bad_input]") {
  CHECK(exitCodeFor(Status::ok()) == 0);
  CHECK(exitCodeFor(invalidInput("x")) == 2);
  CHECK(exitCodeFor(notFound("x")) == 2);
  CHECK(exitCodeFor(unimplemented("x")) == 2);
  CHECK(exitCodeFor(ioError("x")) == 2);
  CHECK(exitCodeFor(internalError("x")) == 1);
  Status s = invalidInput("inner").withContext("outer");
  CHECK(s.message() == "outer: inner");
  CHECK(s.code() == StatusCode::kInvalidInput);
  CHECK(Status::ok().withContext("outer").isOk());
}

TEST_CASE("bad models fail to load with a one-line error naming the file and the culprit", "[bad_input]") {
  for (const BadCase& c : badCases()) {
    DYNAMIC_SECTION(c.title) {
      TempDir dir;
      std::string path = c.make(dir);
      const std::set<std::string> before = dir.list();
      const FileState input = fileState(path);

      auto model = onnx_io::load(path);
      REQUIRE_FALSE(model.isOk());
      const Status& s = model.status();
      INFO("message: " << s.message());
      CHECK(s.code() == c.code);
      CHECK(exitCodeFor(s) == 2);
      CHECK_THAT(s.message(), Catch::StartsWith(path + ": "));
      for (const std::string& part : c.mentions) CHECK_THAT(s.message(), Catch::Contains(part));
      CHECK(s.message().find('\n') == std::string::npos);
      CHECK(dir.list() == before);  // nothing written
      CHECK(fileState(path) == input);
    }
  }
}

TEST_CASE("loadFromBytes names the label it was given", "[bad_input]") {
  auto m = onnx_io::loadFromBytes("garbage that is no model", ".", "from-memory");
  REQUIRE_FALSE(m.isOk());
  CHECK_THAT(m.status().message(), Catch::StartsWith("from-memory: "));
  onnx::ModelProto proto = validModel();
  proto.mutable_graph()->mutable_node(1)->set_input(0, "ghost");
  auto broken = onnx_io::loadFromBytes(proto.SerializeAsString(), ".", "label.onnx");
  REQUIRE_FALSE(broken.isOk());
  CHECK_THAT(broken.status().message(), Catch::StartsWith("label.onnx: Relu 'relu': input 'ghost'"));
}

TEST_CASE("whittle inspect: exit code 2 and one line on stderr for each bad model", "[bad_input]") {
  TempDir scratch;
  for (const BadCase& c : badCases()) {
    DYNAMIC_SECTION(c.title) {
      TempDir dir;
      std::string path = c.make(dir);
      const std::set<std::string> before = dir.list();
      const FileState input = fileState(path);

      CliResult r = runWhittle("inspect " + quote(path), scratch);
      INFO("stderr: " << r.err);
      CHECK(r.exitCode == 2);
      CHECK(countLines(r.err) == 1);
      CHECK((!r.err.empty() && r.err.back() == '\n'));
      CHECK_THAT(r.err, Catch::StartsWith("whittle: error: " + path + ": "));
      for (const std::string& part : c.mentions) CHECK_THAT(r.err, Catch::Contains(part));
      CHECK(r.out.empty());
      CHECK(dir.list() == before);  // no output, no temporary file
      CHECK(fileState(path) == input);  // the input is untouched: same bytes, same mtime
    }
  }
}

TEST_CASE("whittle inspect: a good model exits 0 and an unknown option exits 2", "[bad_input]") {
  TempDir dir;
  TempDir scratch;
  testing::writeBytes(dir.file("good.onnx"), validModel().SerializeAsString());
  const FileState input = fileState(dir.file("good.onnx"));
  CliResult ok = runWhittle("inspect " + quote(dir.file("good.onnx")), scratch);
  INFO("stderr: " << ok.err);
  CHECK(ok.exitCode == 0);
  CHECK(ok.err.empty());
  CHECK_FALSE(ok.out.empty());
  CHECK(fileState(dir.file("good.onnx")) == input);
  CHECK(dir.list() == std::set<std::string>{"good.onnx"});

  CliResult bad = runWhittle("inspect --no-such-option " + quote(dir.file("good.onnx")), scratch);
  CHECK(bad.exitCode == 2);
  CHECK(countLines(bad.err) == 1);
}
