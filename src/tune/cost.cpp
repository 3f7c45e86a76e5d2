// The fallback's speed cost (see cost.h).
#include "tune/cost.h"

#include <algorithm>
#include <set>

#include "whittle/ir/match.h"
#include "whittle/runtime/session.h"

namespace whittle::tune {
namespace {

/// Elements of `v` with unknown dims (a free batch) counted as 1; 0 without a shape.
double elements(const ir::Value* v) {
  if (v == nullptr || !v->type().shape) return 0;
  double n = 1;
  for (const ir::Dim& d : *v->type().shape) {
    if (d.isKnown()) n *= static_cast<double>(d.value);
  }
  return n;
}

double lookup(const std::unordered_map<std::string, double>& times, const std::string& name) {
  auto it = times.find(name);
  return it != times.end() ? it->second : 0.0;
}

/// The estimate for `n` alone (0 without constant weights).
double estimateOneUs(const ir::Node& n) {
  if (n.numInputs() < 2) return 0.0;
  const ir::Tensor* w = ir::constantOf(n.input(1));
  if (w == nullptr) return 0.0;
  double positions = 1;
  if (n.output(0) != nullptr && n.output(0)->type().shape && n.output(0)->type().shape->size() >= 2) {
    // Conv: every output position reuses the weights; MatMul/Gemm: every row. A dim not
    // known (a free batch) counts as 1.
    const std::vector<ir::Dim>& dims = *n.output(0)->type().shape;
    const bool conv = n.opType() == "Conv" || n.opType() == "ConvTranspose";
    for (size_t d = conv ? 2 : 0; d + (conv ? 0 : 1) < dims.size(); ++d) {
      if (dims[d].isKnown()) positions *= static_cast<double>(dims[d].value);
    }
  }
  const double macs = static_cast<double>(w->numel()) * positions;
  return macs / 40e3 + static_cast<double>(w->numel()) * 4.0 / 8e3;
}

}  // namespace

bool isComputeOp(const std::string& op) { return op == "Conv" || op == "ConvTranspose" || op == "MatMul" || op == "Gemm"; }

double estimatedFloatCostUs(const ir::Node& node) {
  double cost = 0;
  for (const ir::Node* n : FallbackCost::affected(node)) cost += estimateOneUs(*n);
  return cost;
}

std::vector<const ir::Node*> FallbackCost::affected(const ir::Node& node) {
  std::vector<const ir::Node*> out = {&node};
  // The ops with weights downstream of its float output (through ops without weights).
  std::vector<const ir::Value*> todo(node.outputs().begin(), node.outputs().end());
  std::set<const ir::Node*> seen;
  while (!todo.empty()) {
    const ir::Value* v = todo.back();
    todo.pop_back();
    if (v == nullptr) continue;
    for (const auto& use : v->uses()) {
      if (use.user == nullptr || !seen.insert(use.user).second) continue;
      if (isComputeOp(use.user->opType())) {
        out.push_back(use.user);
      } else {
        for (const ir::Value* o : use.user->outputs()) todo.push_back(o);
      }
    }
  }
  return out;
}

Expected<std::unordered_map<std::string, double>> profileNodes(const ir::Model& model,
                                                               const std::vector<data::NamedTensor>& feeds,
                                                               int threads, int runs) {
  runtime::SessionOptions options;
  options.threads = std::max(1, threads);
  options.profile = true;
  WH_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Session> session, runtime::Session::create(model, options));
  WH_RETURN_IF_ERROR(session->run(feeds).status());  // warm-up: plans, packing
  auto totals = [&] {
    std::unordered_map<std::string, double> t;
    for (const runtime::NodeProfile& p : session->profile()) t[p.node] += p.selfMs;
    return t;
  };
  // Each node's median over the runs: on a shared machine one run may be preempted anywhere.
  std::unordered_map<std::string, std::vector<double>> perRun;
  std::unordered_map<std::string, double> before = totals();
  for (int i = 0; i < std::max(1, runs); ++i) {
    WH_RETURN_IF_ERROR(session->run(feeds).status());
    std::unordered_map<std::string, double> after = totals();
    for (const auto& [name, t] : after) perRun[name].push_back(t - lookup(before, name));
    before = std::move(after);
  }
  std::unordered_map<std::string, double> ms;
  for (auto& [name, v] : perRun) {
    std::sort(v.begin(), v.end());
    ms[name] = v.size() % 2 == 1 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  }
  return ms;
}

FallbackCost::FallbackCost(const ir::Model& floatModel, std::unordered_map<std::string, double> floatMs,
                           std::unordered_map<std::string, double> int8Ms, double quantizeMs, double quantizeElements)
    : float_(std::move(floatMs)), int8_(std::move(int8Ms)) {
  perElementMs_ = quantizeElements > 0 ? quantizeMs / quantizeElements : 0.0;
  // Float ms per estimated us, over the compute nodes the float profile has.
  double measured = 0, estimated = 0;
  for (const ir::Node* n : floatModel.graph->nodes()) {
    if (!isComputeOp(n->opType()) || !float_.contains(n->name())) continue;
    const double e = estimateOneUs(*n);
    if (e <= 0) continue;
    measured += float_.at(n->name());
    estimated += e;
  }
  scale_ = estimated > 0 ? measured / estimated : 0.0;
}

double FallbackCost::floatMsOf(const ir::Node& n) const {
  auto it = float_.find(n.name());
  if (it != float_.end()) {
    double ms = it->second;
    // A Relu/Clip the float session did not fuse runs on its own; the int8 op absorbs it.
    for (const auto& use : n.output(0) != nullptr ? n.output(0)->uses() : std::vector<ir::Value::Use>{}) {
      if (use.user != nullptr && (use.user->opType() == "Relu" || use.user->opType() == "Clip")) {
        ms += lookup(float_, use.user->name());
      }
    }
    return ms;
  }
  // Not in the profile (a fusion renamed it): the estimate at the measured float speed.
  return isComputeOp(n.opType()) ? estimateOneUs(n) * scale_ : 0.0;
}

double FallbackCost::costUs(const ir::Node& node) const {
  double ms = 0;
  for (const ir::Node* n : affected(node)) ms += floatMsOf(*n) - lookup(int8_, n->name());
  // Dequantize its input, quantize its output.
  ms += perElementMs_ * (elements(node.numInputs() > 0 ? node.input(0) : nullptr) + elements(node.output(0)));
  return ms * 1000.0;
}

Expected<FallbackCost> FallbackCost::measure(const ir::Model& floatModel, const ir::Model& quantized,
                                             const std::vector<data::NamedTensor>& feeds, int threads, int runs) {
  WH_ASSIGN_OR_RETURN(auto floatMs, profileNodes(floatModel, feeds, threads, runs));
  WH_ASSIGN_OR_RETURN(auto int8Ms, profileNodes(quantized, feeds, threads, runs));
  // The conversion speed: the QuantizeLinear of a graph input.
  double qMs = 0, qElements = 0;
  for (const ir::Node* n : quantized.graph->nodes()) {
    if (n->opType() != "QuantizeLinear" || n->input(0) == nullptr || !n->input(0)->isGraphInput()) continue;
    if (!int8Ms.contains(n->name()) || elements(n->input(0)) <= 0) continue;
    qMs = int8Ms.at(n->name());
    qElements = elements(n->input(0));
    break;
  }
  return FallbackCost(floatModel, std::move(floatMs), std::move(int8Ms), qMs, qElements);
}

double FallbackCost::floatTotalMs() const {
  double sum = 0;
  for (const auto& [name, ms] : float_) sum += ms;
  return sum;
}

double FallbackCost::int8TotalMs() const {
  double sum = 0;
  for (const auto& [name, ms] : int8_) sum += ms;
  return sum;
}

}  // namespace whittle::tune
