// whittle inspect MODEL [--json] [--shapes]: what a model holds and what it costs.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "whittle/analysis/model_stats.h"
#include "whittle/analysis/sparsity.h"
#include "whittle/common/text.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::tools {
namespace {

using analysis::ModelStats;
using nlohmann::json;

constexpr const char* kSchema = "whittle.inspect/1";

// ---------------------------------------------------------------- JSON

json shapeJson(const std::optional<std::vector<ir::Dim>>& shape) {
  if (!shape) return nullptr;
  json out = json::array();
  for (const ir::Dim& d : *shape) {
    if (d.isKnown())
      out.push_back(d.value);
    else
      out.push_back(d.param.empty() ? "?" : d.param);
  }
  return out;
}

json tensorsJson(const std::vector<analysis::TensorInfo>& tensors) {
  json out = json::array();
  for (const auto& t : tensors) {
    out.push_back({{"name", t.name}, {"dtype", std::string(ir::dataTypeName(t.dtype))}, {"shape", shapeJson(t.shape)}});
  }
  return out;
}

json nullIfEmpty(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

json toJson(const ModelStats& s, bool withShapes) {
  json j;
  j["schema"] = kSchema;
  j["file"] = {{"path", s.path},
               {"sizeBytes", s.file.sizeBytes},
               {"externalDataBytes", s.file.externalDataBytes},
               {"externalDataFiles", s.file.externalDataFiles}};
  j["model"] = {{"irVersion", s.irVersion},
                {"producerName", s.producerName},
                {"producerVersion", s.producerVersion},
                {"opsets", s.opsets}};
  j["inputs"] = tensorsJson(s.inputs);
  j["outputs"] = tensorsJson(s.outputs);
  json ops = json::object();
  for (const auto& [op, count] : s.opHistogram) ops[op] = count;
  j["nodes"] = {{"count", s.nodeCount}, {"withSubgraphs", s.nodesWithSubgraphs}, {"byOpType", ops}};

  json byDtype = json::object();
  for (const auto& [dtype, c] : s.parameters.byDtype) byDtype[dtype] = {{"count", c.count}, {"bytes", c.bytes}};
  j["parameters"] = {{"total", s.parameters.total},
                     {"bytes", s.parameters.bytes},
                     {"tensors", s.parameters.tensors},
                     {"byDtype", byDtype}};

  json macNodes = json::array();
  for (const auto& n : s.macs.nodes) macNodes.push_back({{"node", n.node}, {"op", n.opType}, {"macs", n.macs}});
  j["macs"] = {{"total", s.macs.total},
               {"batch", 1},
               {"approximate", s.macs.approximate},
               {"notes", s.macs.notes},
               {"byOpType", json(s.macs.byOpType)},
               {"uncountedNodes", s.macs.uncountedNodes},
               {"nodes", macNodes}};

  json layers = json::array();
  for (const auto& l : s.sparsity.layers) {
    double fraction = l.elements > 0 ? static_cast<double>(l.zeros) / static_cast<double>(l.elements) : 0.0;
    layers.push_back({{"node", l.node},
                      {"op", l.opType},
                      {"weight", l.weight},
                      {"elements", l.elements},
                      {"zeros", l.zeros},
                      {"fraction", fraction}});
  }
  j["sparsity"] = {{"weightElements", s.sparsity.weightElements},
                   {"zeroElements", s.sparsity.zeroElements},
                   {"fraction", s.sparsity.fraction()},
                   {"layers", layers}};

  const auto& q = s.quantization;
  j["quantization"] = {{"form", std::string(analysis::quantFormName(q.form))},
                       {"quantizeLinearCount", q.quantizeLinear},
                       {"dequantizeLinearCount", q.dequantizeLinear},
                       {"dynamicQuantizeLinearCount", q.dynamicQuantizeLinear},
                       {"qlinearCount", q.qlinearOps},
                       {"weightDtype", nullIfEmpty(q.weightDtype())},
                       {"weightDtypes", json(q.weightDtypes)},
                       {"granularity", nullIfEmpty(q.granularity())},
                       {"perChannelWeights", q.perChannelWeights},
                       {"perTensorWeights", q.perTensorWeights}};
  if (withShapes) {
    json shapes = json::array();
    for (const auto& v : s.valueShapes) {
      shapes.push_back(
          {{"name", v.name},
           {"dtype", v.dtype == ir::DataType::kUndefined ? json(nullptr) : json(ir::dataTypeName(v.dtype))},
           {"shape", v.dims ? json(*v.dims) : json(nullptr)}});
    }
    j["shapes"] = shapes;
  }
  return j;
}

// ---------------------------------------------------------------- text

/// 1234567 -> "1,234,567".
std::string grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

/// 349151936 -> "349.2 M".
std::string scaled(int64_t v) {
  const char* units[] = {"", " k", " M", " G", " T"};
  double x = static_cast<double>(v);
  int u = 0;
  while (x >= 1000.0 && u < 4) {
    x /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", x, units[u]);
  return buf;
}

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %%", 100.0 * fraction);
  return buf;
}

std::string shapeText(const std::optional<std::vector<ir::Dim>>& shape) {
  if (!shape) return "(rank unknown)";
  std::string out = "[";
  for (size_t i = 0; i < shape->size(); ++i) {
    const ir::Dim& d = (*shape)[i];
    out += (i ? ", " : "") + (d.isKnown() ? std::to_string(d.value) : d.param.empty() ? "?" : d.param);
  }
  return out + "]";
}

std::string dimsText(const std::optional<std::vector<int64_t>>& dims) {
  if (!dims) return "?";
  std::string out = "[";
  for (size_t i = 0; i < dims->size(); ++i) out += (i ? ", " : "") + std::to_string((*dims)[i]);
  return out + "]";
}

/// Long exporter-made names keep their end, which tells layers apart: "...conv2d_1/Conv2D".
std::string shortened(const std::string& name) {
  constexpr size_t kMax = 48;
  return name.size() <= kMax ? name : "..." + name.substr(name.size() - (kMax - 3));
}

/// Rows of cells printed with every column padded to its widest cell; numbers are right
/// aligned. Title rows start a section: "title        summary" at the left margin.
class Table {
 public:
  void title(std::string name, std::string summary = "") {
    rows_.push_back({true, {std::move(name), std::move(summary)}});
  }
  void row(std::vector<std::string> cells) { rows_.push_back({false, std::move(cells)}); }

  void print() const {
    std::vector<size_t> widths;
    for (const auto& r : rows_) {
      for (size_t i = 0; !r.isTitle && i < r.cells.size(); ++i) {
        if (widths.size() <= i) widths.push_back(0);
        // A trailing text cell needs no padding: it does not widen its column.
        if (i + 1 < r.cells.size() || isNumber(r.cells[i])) widths[i] = std::max(widths[i], r.cells[i].size());
      }
    }
    for (const auto& r : rows_) {
      std::string line;
      if (r.isTitle) {
        line = r.cells[0];
        if (!r.cells[1].empty())
          line += std::string(line.size() < kTitleWidth ? kTitleWidth - line.size() : 1, ' ') + r.cells[1];
      } else {
        line = "  ";
        for (size_t i = 0; i < r.cells.size(); ++i) {
          const std::string& c = r.cells[i];
          std::string pad(widths[i] > c.size() ? widths[i] - c.size() : 0, ' ');
          line += (isNumber(c) ? pad + c : c + pad) + "  ";
        }
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::printf("%s\n", line.c_str());
    }
  }

 private:
  static constexpr size_t kTitleWidth = 14;
  struct Row {
    bool isTitle;
    std::vector<std::string> cells;
  };
  static bool isNumber(const std::string& c) {
    return !c.empty() && std::all_of(c.begin(), c.end(), [](char ch) {
      return std::isdigit(static_cast<unsigned char>(ch)) != 0 || ch == ',' || ch == '.' || ch == ' ' || ch == '%';
    });
  }
  std::vector<Row> rows_;
};

void printText(const ModelStats& s, bool withShapes) {
  Table model;
  model.title("model", s.path);
  model.row({"IR version", std::to_string(s.irVersion)});
  std::string producer = s.producerName + (s.producerVersion.empty() ? "" : " " + s.producerVersion);
  model.row({"producer", producer.empty() ? "-" : producer});
  std::string opsets;
  for (const auto& [domain, version] : s.opsets)
    opsets += (opsets.empty() ? "" : ", ") + domain + " " + std::to_string(version);
  model.row({"opsets", opsets.empty() ? "-" : opsets});
  model.print();

  Table io;
  io.title("inputs");
  for (const auto& t : s.inputs) io.row({t.name, std::string(ir::dataTypeName(t.dtype)), shapeText(t.shape)});
  io.title("outputs");
  for (const auto& t : s.outputs) io.row({t.name, std::string(ir::dataTypeName(t.dtype)), shapeText(t.shape)});
  io.print();

  Table ops;
  std::string nodes = grouped(s.nodeCount) + " nodes, " + std::to_string(s.opHistogram.size()) + " op types";
  if (s.nodesWithSubgraphs > 0)
    nodes += " (subgraphs of " + std::to_string(s.nodesWithSubgraphs) + " nodes not counted)";
  ops.title("ops", nodes);
  for (const auto& [op, count] : s.opHistogram) ops.row({op, grouped(count)});
  ops.print();

  Table params;
  params.title("parameters", grouped(s.parameters.total) + " (" + scaled(s.parameters.total) + "), " +
                                 bytesText(s.parameters.bytes) + " in " + std::to_string(s.parameters.tensors) +
                                 " tensors");
  for (const auto& [dtype, c] : s.parameters.byDtype) params.row({dtype, grouped(c.count), bytesText(c.bytes)});
  params.print();

  Table macs;
  macs.title("MACs", scaled(s.macs.total) + " (" + grouped(s.macs.total) + ") at batch 1" +
                         (s.macs.approximate ? ", approximate" : ""));
  std::vector<std::pair<std::string, int64_t>> byOp(s.macs.byOpType.begin(), s.macs.byOpType.end());
  std::stable_sort(byOp.begin(), byOp.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [op, count] : byOp) {
    double share = s.macs.total > 0 ? static_cast<double>(count) / static_cast<double>(s.macs.total) : 0.0;
    macs.row({op, grouped(count), percent(share)});
  }
  for (const auto& note : s.macs.notes) macs.row({"note: " + note});
  macs.print();

  Table sparsity;
  sparsity.title("sparsity", percent(s.sparsity.fraction()) + " of " + grouped(s.sparsity.weightElements) +
                                 " weights are zero (" + std::to_string(s.sparsity.layers.size()) + " layers)");
  std::vector<const analysis::LayerSparsity*> sparse;
  for (const auto& l : s.sparsity.layers) {
    if (l.zeros > 0) sparse.push_back(&l);
  }
  auto fraction = [](const analysis::LayerSparsity* l) {
    return static_cast<double>(l->zeros) / static_cast<double>(l->elements);
  };
  std::stable_sort(sparse.begin(), sparse.end(), [&](auto* a, auto* b) { return fraction(a) > fraction(b); });
  constexpr size_t kMaxLayers = 10;
  for (size_t i = 0; i < std::min(sparse.size(), kMaxLayers); ++i) {
    sparsity.row({shortened(sparse[i]->node), sparse[i]->opType, percent(fraction(sparse[i])),
                  "of " + grouped(sparse[i]->elements)});
  }
  if (sparse.size() > kMaxLayers) {
    sparsity.row({"... " + std::to_string(sparse.size() - kMaxLayers) + " more layers with zeros (see --json)"});
  }
  sparsity.print();

  const auto& q = s.quantization;
  Table quant;
  std::string form(analysis::quantFormName(q.form));
  if (!q.weightDtype().empty()) form += ", " + q.weightDtype() + " weights, " + q.granularity();
  quant.title("quantization", form);
  if (q.quantizeLinear > 0) quant.row({"QuantizeLinear", grouped(q.quantizeLinear)});
  if (q.dequantizeLinear > 0) quant.row({"DequantizeLinear", grouped(q.dequantizeLinear)});
  if (q.dynamicQuantizeLinear > 0) quant.row({"DynamicQuantizeLinear", grouped(q.dynamicQuantizeLinear)});
  if (q.qlinearOps > 0) quant.row({"quantized ops", grouped(q.qlinearOps)});
  if (q.perChannelWeights + q.perTensorWeights > 0) {
    quant.row({"weights", std::to_string(q.perChannelWeights) + " per-channel, " + std::to_string(q.perTensorWeights) +
                              " per-tensor"});
  }
  quant.print();

  Table file;
  std::string size =
      s.file.sizeBytes >= 0 ? grouped(s.file.sizeBytes) + " B (" + bytesText(s.file.sizeBytes) + ")" : "-";
  if (s.file.externalDataBytes > 0) {
    size += ", external data " + grouped(s.file.externalDataBytes) + " B in " +
            std::to_string(s.file.externalDataFiles.size()) + " file(s)";
  }
  file.title("file", size);
  file.print();

  if (withShapes) {
    Table shapes;
    shapes.title("shapes", "at batch 1");
    for (const auto& v : s.valueShapes) {
      shapes.row({v.name, v.dtype == ir::DataType::kUndefined ? "?" : std::string(ir::dataTypeName(v.dtype)),
                  dimsText(v.dims)});
    }
    shapes.print();
  }
}

// The 2:4 structure of the prunable layers (src/analysis/sparsity.cpp), for the JSON's
// sparsity.nm and a line of the text output.
json nmJson(const std::vector<analysis::NmLayer>& layers) {
  json out = json::array();
  int64_t compliant = 0, applicable = 0;
  for (const auto& l : layers) {
    compliant += l.compliant() ? 1 : 0;
    applicable += l.applicable ? 1 : 0;
    out.push_back({{"node", l.node}, {"op", l.opType}, {"weight", l.weight}, {"applicable", l.applicable},
                   {"groups", l.groups}, {"compliantGroups", l.compliantGroups}, {"compliant", l.compliant()}});
  }
  return {{"n", 2}, {"m", 4}, {"applicableLayers", applicable}, {"compliantLayers", compliant}, {"layers", out}};
}

void printNm(const std::vector<analysis::NmLayer>& layers) {
  int64_t compliant = 0, applicable = 0;
  for (const auto& l : layers) {
    compliant += l.compliant() ? 1 : 0;
    applicable += l.applicable ? 1 : 0;
  }
  std::printf("2:4 pattern   %lld of %lld layers comply (%lld have a reduction length that is a multiple of 4)\n",
              static_cast<long long>(compliant), static_cast<long long>(layers.size()), static_cast<long long>(applicable));
}

}  // namespace

void registerInspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe a model: interface, ops, parameters, MACs, quantization");
  auto path = std::make_shared<std::string>();
  auto asJson = std::make_shared<bool>(false);
  auto shapes = std::make_shared<bool>(false);
  cmd->add_option("model", *path, "The .onnx file")->required();
  cmd->add_flag("--json", *asJson, "Print one JSON object (schema: docs/inspect-schema.md)");
  cmd->add_flag("--shapes", *shapes, "Also list the inferred shape of every value, at batch 1");
  cmd->callback([path, asJson, shapes] {
    auto model = onnx_io::load(*path);
    if (!model.isOk()) return setExitCode(reportError(model.status()));
    analysis::StatsOptions options;
    options.valueShapes = *shapes;
    auto stats = analysis::computeStats(*model, *path, options);
    if (!stats.isOk()) return setExitCode(reportError(stats.status().withContext(*path)));
    auto nm = analysis::nmStructure(*model->graph, 2, 4);
    if (*asJson) {
      json j = toJson(*stats, *shapes);
      j["sparsity"]["nm"] = nmJson(nm);
      std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    } else {
      printText(*stats, *shapes);
      printNm(nm);
    }
    setExitCode(0);
  });
}

}  // namespace whittle::tools
