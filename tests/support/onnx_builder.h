#pragma once
// Builds small ONNX models as protobuf, for tests whose models the IR cannot make itself:
// control flow, whose subgraphs the IR keeps serialized. Usage:
//   testing::ProtoGraph thenBranch("then");
//   thenBranch.node("Add", {"x", "w"}, {"y"});
//   thenBranch.output("y", onnx::TensorProto::FLOAT);
//   testing::ProtoGraph main("main");
//   main.input("c", onnx::TensorProto::BOOL, {});
//   main.node("If", {"c"}, {"z"}, {testing::onnxGraph("then_branch", thenBranch), ...});
//   ir::Model model = testing::loadProtoModel(main, 13);

#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "whittle/onnx_io/onnx_io.h"

namespace whittle::testing {

class ProtoGraph {
 public:
  explicit ProtoGraph(const std::string& name) { graph_.set_name(name); }

  /// A typed value info; `dims` empty with `rankKnown` false leaves the shape out.
  static void setType(onnx::ValueInfoProto* info, const std::string& name, int elemType,
                      const std::vector<int64_t>& dims, bool rankKnown) {
    info->set_name(name);
    if (elemType == 0) return;
    auto* tensor = info->mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(elemType);
    if (!rankKnown) return;
    auto* shape = tensor->mutable_shape();
    for (int64_t d : dims) {
      if (d >= 0) {
        shape->add_dim()->set_dim_value(d);
      } else {
        shape->add_dim();
      }
    }
  }
  ProtoGraph& input(const std::string& name, int elemType, const std::vector<int64_t>& dims, bool rankKnown = true) {
    setType(graph_.add_input(), name, elemType, dims, rankKnown);
    return *this;
  }
  /// An output; elemType 0 leaves its type out.
  ProtoGraph& output(const std::string& name, int elemType = 0, const std::vector<int64_t>& dims = {},
                     bool rankKnown = false) {
    setType(graph_.add_output(), name, elemType, dims, rankKnown);
    return *this;
  }
  ProtoGraph& floats(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& values) {
    auto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
    return *this;
  }
  ProtoGraph& int64s(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int64_t>& values) {
    auto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    for (int64_t d : dims) t->add_dims(d);
    for (int64_t v : values) t->add_int64_data(v);
    return *this;
  }
  ProtoGraph& node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
                   const std::vector<onnx::AttributeProto>& attributes = {}, const std::string& name = "") {
    auto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? outputs.front() + "_" + op : name);
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    for (const auto& a : attributes) *n->add_attribute() = a;
    return *this;
  }
  const onnx::GraphProto& proto() const { return graph_; }

 private:
  onnx::GraphProto graph_;
};

inline onnx::AttributeProto onnxGraph(const std::string& name, const ProtoGraph& g) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::GRAPH);
  *a.mutable_g() = g.proto();
  return a;
}

inline onnx::AttributeProto onnxInt(const std::string& name, int64_t v) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(v);
  return a;
}

inline onnx::AttributeProto onnxInts(const std::string& name, const std::vector<int64_t>& v) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a.add_ints(x);
  return a;
}

/// The model around `main` at default-domain `opset`, serialized.
inline std::string serializeProtoModel(const ProtoGraph& main, int64_t opset) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("whittle-tests");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  *m.mutable_graph() = main.proto();
  return m.SerializeAsString();
}

/// The model around `main` at `opset`, loaded into the IR; REQUIREs that it loads.
inline ir::Model loadProtoModel(const ProtoGraph& main, int64_t opset) {
  auto model = onnx_io::loadFromBytes(serializeProtoModel(main, opset), "", "test model");
  INFO(model.status().message());
  REQUIRE(model.isOk());
  return std::move(model).value();
}

}  // namespace whittle::testing
