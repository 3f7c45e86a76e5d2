#include "whittle/passes/pass_manager.h"

#include <chrono>
#include <sstream>

#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::passes {

int64_t parameterBytes(const ir::Graph& graph) {
  int64_t total = 0;
  for (const ir::Value* v : graph.initializers()) total += static_cast<int64_t>(v->constant()->byteSize());
  for (const ir::Node* n : graph.nodes()) {
    if (n->opType() != "Constant") continue;
    if (const ir::Attribute* a = n->findAttribute("value")) total += static_cast<int64_t>(a->t.byteSize());
  }
  return total;
}

std::string dumpGraph(const ir::Graph& graph) {
  std::ostringstream out;
  auto typeText = [](const ir::Value* v) {
    std::string s(ir::dataTypeName(v->dtype()));
    if (v->type().shape) {
      s += "[";
      for (size_t i = 0; i < v->type().shape->size(); ++i) {
        const ir::Dim& d = (*v->type().shape)[i];
        s += (i ? "," : "") + (d.isKnown() ? std::to_string(d.value) : d.param.empty() ? "?" : d.param);
      }
      s += "]";
    }
    return s;
  };
  out << "graph " << graph.name() << " (" << graph.numNodes() << " nodes)\n";
  for (const ir::Value* v : graph.inputs()) out << "  input  " << v->name() << ": " << typeText(v) << "\n";
  for (const ir::Node* n : graph.nodes()) {
    out << "  ";
    for (size_t i = 0; i < n->numOutputs(); ++i) out << (i ? ", " : "") << (n->output(i) ? n->output(i)->name() : "_");
    out << " = " << n->describe() << "(";
    for (size_t i = 0; i < n->numInputs(); ++i) {
      const ir::Value* in = n->input(i);
      out << (i ? ", " : "") << (in == nullptr ? "_" : in->name() + (in->isInitializer() ? "*" : ""));
    }
    out << ")";
    for (const ir::Attribute& a : n->attributes()) {
      out << " " << a.name << "=";
      switch (a.kind) {
        case ir::Attribute::Kind::kInt: out << a.i; break;
        case ir::Attribute::Kind::kFloat: out << a.f; break;
        case ir::Attribute::Kind::kString: out << '"' << a.s << '"'; break;
        case ir::Attribute::Kind::kInts: {
          out << "[";
          for (size_t i = 0; i < a.ints.size(); ++i) out << (i ? "," : "") << a.ints[i];
          out << "]";
          break;
        }
        default: out << "<" << ir::attributeKindName(a.kind) << ">";
      }
    }
    out << "\n";
  }
  for (const ir::Value* v : graph.outputs()) out << "  output " << v->name() << ": " << typeText(v) << "\n";
  return out.str();
}

Expected<std::vector<PassStats>> runPipeline(ir::Model& model, const std::vector<PipelineEntry>& pipeline,
                                             PassContext& ctx, const PipelineRunOptions& options) {
  std::vector<PassStats> all;
  all.reserve(pipeline.size());
  for (const PipelineEntry& entry : pipeline) {
    PassStats stats;
    stats.pass = entry.info->name;
    stats.nodesBefore = static_cast<int64_t>(model.graph->numNodes());
    stats.parameterBytesBefore = parameterBytes(*model.graph);
    ctx.setCurrentStats(&stats);
    auto start = std::chrono::steady_clock::now();
    auto pass = entry.info->factory(entry.options);
    if (!pass.isOk()) return pass.status().withContext("pass " + entry.info->name);
    Status status = (*pass)->run(model, ctx);
    stats.milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ctx.setCurrentStats(nullptr);
    if (!status.isOk()) return status.withContext("pass " + entry.info->name);
    stats.nodesAfter = static_cast<int64_t>(model.graph->numNodes());
    stats.parameterBytesAfter = parameterBytes(*model.graph);
    if (options.verifyEach) {
      Status verified = ir::verify(*model.graph);
      if (!verified.isOk()) return internalError("after pass " + entry.info->name + ": " + verified.message());
      onnx_io::CheckResult check = onnx_io::checkModel(model);
      if (check.ran && !check.status.isOk()) {
        return internalError("after pass " + entry.info->name + ": " + check.status.message());
      }
    }
    if (options.dump) {
      for (const std::string& name : options.printAfter) {
        if (name == entry.info->name || name == "all") options.dump(entry.info->name, dumpGraph(*model.graph));
      }
    }
    all.push_back(std::move(stats));
  }
  return all;
}

}  // namespace whittle::passes
