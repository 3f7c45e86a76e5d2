#include "whittle/passes/pass.h"
#include "subgraph_note.h"

#include <cstdlib>

namespace whittle::passes {

std::string PassOptions::getString(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

Expected<double> PassOptions::getDouble(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') return invalidInput("option " + name + "='" + it->second + "' is not a number");
  return v;
}

Expected<int64_t> PassOptions::getInt(const std::string& name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0') return invalidInput("option " + name + "='" + it->second + "' is not an integer");
  return static_cast<int64_t>(v);
}

std::vector<std::string> PassOptions::getList(const std::string& name, const std::string& fallback) const {
  std::vector<std::string> items;
  std::string current;
  auto flush = [&] {
    const size_t first = current.find_first_not_of(" \t");
    if (first != std::string::npos) items.push_back(current.substr(first, current.find_last_not_of(" \t") - first + 1));
    current.clear();
  };
  for (char c : getString(name, fallback)) {
    if (c == ';' || c == ':') {
      flush();
    } else {
      current += c;
    }
  }
  flush();
  return items;
}

Expected<bool> PassOptions::getBool(const std::string& name, bool fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& v = it->second;
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return invalidInput("option " + name + "='" + v + "' is not true or false");
}

void noteSubgraphsLeftAlone(const ir::Graph& graph, PassContext& ctx, std::string_view pass, std::string_view what) {
  std::vector<std::string> nodes;
  for (const ir::Node* n : graph.nodes()) {
    if (n->hasSubgraphs()) nodes.push_back(n->describe());
  }
  if (nodes.empty()) return;
  std::string list;
  for (size_t i = 0; i < nodes.size() && i < 3; ++i) list += (i ? ", " : "") + nodes[i];
  if (nodes.size() > 3) list += ", ...";
  ctx.note(std::string(pass) + ": the subgraphs of " + std::to_string(nodes.size()) + " control-flow node" +
           (nodes.size() == 1 ? "" : "s") + " (" + list + ") are left " + std::string(what) +
           " (passes do not rewrite inside subgraphs)");
}

Status PatternPass::run(ir::Model& model, PassContext& ctx) {
  std::vector<const Pattern*> raw;
  raw.reserve(patterns_.size());
  for (const auto& p : patterns_) raw.push_back(p.get());
  WH_ASSIGN_OR_RETURN(ir::GreedyRewriteStats stats, ir::applyPatternsGreedily(*model.graph, raw, ctx));
  ctx.stats().rewrites += stats.rewrites;
  return Status::ok();
}

}  // namespace whittle::passes
