// TreeEnsembleClassifier and TreeEnsembleRegressor (ai.onnx.ml opsets 1 and 3; 3 adds the
// *_as_tensor attributes) and TreeEnsemble (ai.onnx.ml opset 5, leaves apart from the nodes):
// the tree models sklearn, LightGBM and XGBoost convert to. The nodes of either form are
// flattened once into one array (children as indexes, each leaf a node whose weights are a range
// of one weight array) and each row walks it reading X in its own dtype. Scores accumulate in
// the dtype ONNX Runtime uses for them (float, double for a double X) so that a label decided
// by a threshold agrees with it. Where the spec is vague the kernel does what ONNX Runtime
// 1.32 does (checked in tests/kernels/cpu/ml_test.cpp against it):
//  - a tree's root is the first node of each run of nodes with one tree id;
//  - a one-target regressor applies PROBIT only (ONNX Runtime ignores the other post
//    transforms for one target) and adds base_values[0] when there is one;
//  - a two-label classifier whose weights name one class (sklearn's and LightGBM's binary
//    models) has one score s per row: the label is the second one when s > 0.5 (all weights
//    non-negative: a probability) or s > 0, and the scores are [1 - s, s], or with LOGISTIC
//    [σ(-s), σ(s)], or else [-s, s];
//  - a two-label classifier with two weight columns decides the label from the second score
//    alone (> 0: the label 1 — ONNX Runtime's literal 1, not the second label — for int64
//    labels, the second string for string labels).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "cpu/families.h"
#include "cpu/ml_common.h"
#include "cpu/value_io.h"

namespace whittle::runtime::cpu {
namespace {

using namespace ml;
using KernelPtr = Expected<std::unique_ptr<Kernel>>;

enum class Aggregate { kAverage, kSum, kMin, kMax };

struct FlatNode {
  double split = 0;
  int64_t feature = 0;
  int32_t trueNode = -1, falseNode = -1;  // indexes into nodes
  int32_t weightBegin = 0, weightEnd = 0;  // into weightTarget / weightValue
  int32_t memberSet = -1;                   // BRANCH_MEMBER (opset 5): into Trees::memberSets
  NodeMode mode = NodeMode::kLeaf;
  bool missingTrue = false;
};

/// The parsed trees of either op. `targets` is n_targets (regressor) or the label count.
struct Trees {
  std::vector<FlatNode> nodes;
  std::vector<int32_t> roots;
  std::vector<int64_t> weightTarget;
  std::vector<double> weightValue;
  std::vector<double> base;
  std::vector<std::vector<double>> memberSets;
  int64_t targets = 0, maxFeature = -1;
  Aggregate aggregate = Aggregate::kSum;
  PostTransform post = PostTransform::kNone;
  /// The fast walk (prepareFastWalk): when every internal node is BRANCH_LEQ or BRANCH_LT (what
  /// sklearn, LightGBM and XGBoost write), each node with its two children and a leaf flag;
  /// empty otherwise.
  struct FastNode {
    double split = 0;
    int32_t feature = 0;
    int32_t child[2] = {0, 0};  // [0] the true side, [1] the false side
    uint8_t lessThan = 0;       // BRANCH_LT (else BRANCH_LEQ)
    uint8_t missingTrue = 0;
    uint8_t leaf = 0;
  };
  std::vector<FastNode> fast;
};

/// Fills trees.fast when every internal node compares with <= or < and no tree has a cycle;
/// leaves it empty (the general walk) for other modes or a tree that does not end (a cycle,
/// reported by the general walk when it runs).
void prepareFastWalk(Trees& trees) {
  const size_t count = trees.nodes.size();
  std::vector<Trees::FastNode> fast(count);
  for (size_t i = 0; i < count; ++i) {
    const FlatNode& n = trees.nodes[i];
    Trees::FastNode& f = fast[i];
    if (n.mode == NodeMode::kLeaf) {
      f.leaf = 1;
      continue;
    }
    if (n.mode != NodeMode::kLeq && n.mode != NodeMode::kLt) return;
    f.split = n.split;
    f.feature = static_cast<int32_t>(n.feature);
    f.child[0] = n.trueNode;
    f.child[1] = n.falseNode;
    f.lessThan = n.mode == NodeMode::kLt ? 1 : 0;
    f.missingTrue = n.missingTrue ? 1 : 0;
  }
  // A depth-first search over each tree, memoised (a node two parents share is walked once): a
  // node met again on its own path is a cycle.
  std::vector<int32_t> below(count, -1);
  std::vector<uint8_t> open(count, 0);
  for (int32_t root : trees.roots) {
    std::vector<int32_t> stack = {root};
    while (!stack.empty()) {
      const auto at = static_cast<size_t>(stack.back());
      if (below[at] >= 0) {
        stack.pop_back();
        continue;
      }
      if (trees.nodes[at].mode == NodeMode::kLeaf) {
        below[at] = 0;
        stack.pop_back();
        continue;
      }
      const auto a = static_cast<size_t>(fast[at].child[0]), b = static_cast<size_t>(fast[at].child[1]);
      if (below[a] >= 0 && below[b] >= 0) {
        below[at] = 1 + std::max(below[a], below[b]);
        open[at] = 0;
        stack.pop_back();
        continue;
      }
      if (open[at] != 0) return;  // back on a node whose children are still open: a cycle
      open[at] = 1;
      if (below[a] < 0) stack.push_back(static_cast<int32_t>(a));
      if (below[b] < 0) stack.push_back(static_cast<int32_t>(b));
    }
  }
  trees.fast = std::move(fast);
}

/// A tensor attribute's values as doubles (empty when absent).
std::vector<double> tensorAttrAsDoubles(const ir::Attribute* a) {
  std::vector<double> v;
  if (a == nullptr || a->kind != ir::Attribute::Kind::kTensor) return v;
  for (int64_t i = 0; i < a->t.numel(); ++i) v.push_back(a->t.valueAsDouble(i));
  return v;
}

/// `name` as floats, or `name`_as_tensor (opset 3) as doubles; both is an error.
Expected<std::vector<double>> floatsOrTensor(const KernelCreateInfo& info, const std::string& name) {
  const ir::Node& n = info.node;
  const ir::Attribute* t = n.findAttribute(name + "_as_tensor");
  if (t != nullptr) {
    if (n.hasAttribute(name)) return info.error("both " + name + " and " + name + "_as_tensor are set");
    if (t->kind != ir::Attribute::Kind::kTensor || !ir::isFloatingPoint(t->t.dtype()))
      return info.error(name + "_as_tensor must be a float or double tensor");
    return tensorAttrAsDoubles(t);
  }
  std::vector<double> v;
  for (float f : n.attrFloats(name)) v.push_back(f);
  return v;
}

std::optional<NodeMode> nodeModeByName(const std::string& s) {
  static const std::map<std::string, NodeMode, std::less<>> kModes = {
      {"BRANCH_LEQ", NodeMode::kLeq}, {"BRANCH_LT", NodeMode::kLt}, {"BRANCH_GTE", NodeMode::kGte},
      {"BRANCH_GT", NodeMode::kGt},   {"BRANCH_EQ", NodeMode::kEq}, {"BRANCH_NEQ", NodeMode::kNeq},
      {"LEAF", NodeMode::kLeaf}};
  auto it = kModes.find(s);
  return it == kModes.end() ? std::nullopt : std::optional(it->second);
}

/// Reads the nodes_* attributes and the weights (`prefix` class or target) into `trees`.
Status readTrees(const KernelCreateInfo& info, const std::string& prefix, Trees& trees) {
  const ir::Node& n = info.node;
  for (const std::string& required : {std::string("nodes_treeids"), std::string("nodes_nodeids"),
                                      std::string("nodes_featureids"), std::string("nodes_modes"),
                                      std::string("nodes_truenodeids"), std::string("nodes_falsenodeids")}) {
    if (!n.hasAttribute(required)) return info.error("attribute '" + required + "' is required");
  }
  std::vector<int64_t> treeIds = n.attrInts("nodes_treeids"), nodeIds = n.attrInts("nodes_nodeids");
  std::vector<int64_t> features = n.attrInts("nodes_featureids"), trueIds = n.attrInts("nodes_truenodeids");
  std::vector<int64_t> falseIds = n.attrInts("nodes_falsenodeids");
  std::vector<int64_t> missing = n.attrInts("nodes_missing_value_tracks_true");
  const std::vector<std::string>& modes = n.findAttribute("nodes_modes")->strings;
  WH_ASSIGN_OR_RETURN(std::vector<double> splits, floatsOrTensor(info, "nodes_values"));
  size_t count = treeIds.size();
  if (splits.empty()) splits.resize(count, 0.0);  // a model of leaves only needs none
  for (size_t size : {nodeIds.size(), features.size(), trueIds.size(), falseIds.size(), modes.size(), splits.size()}) {
    if (size != count) return info.error("the nodes_* attributes differ in length");
  }
  if (!missing.empty() && missing.size() != count) return info.error("the nodes_* attributes differ in length");
  if (count == 0) return info.error("the ensemble has no nodes");
  if (count > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return info.error("too many nodes");
  std::map<std::pair<int64_t, int64_t>, int32_t> index;
  trees.nodes.resize(count);
  for (size_t i = 0; i < count; ++i) {
    FlatNode& node = trees.nodes[i];
    auto mode = nodeModeByName(modes[i]);
    if (!mode) return info.error("nodes_modes[" + std::to_string(i) + "] is '" + modes[i] + "', not a known mode");
    node.mode = *mode;
    node.split = splits[i];
    node.feature = features[i];
    node.missingTrue = !missing.empty() && missing[i] == 1;
    if (node.mode != NodeMode::kLeaf) {
      if (node.feature < 0) return info.error("nodes_featureids[" + std::to_string(i) + "] is negative");
      trees.maxFeature = std::max(trees.maxFeature, node.feature);
    }
    if (!index.emplace(std::pair(treeIds[i], nodeIds[i]), static_cast<int32_t>(i)).second) {
      return info.error("node " + std::to_string(nodeIds[i]) + " of tree " + std::to_string(treeIds[i]) +
                        " is given twice");
    }
    if (i == 0 || treeIds[i] != treeIds[i - 1]) trees.roots.push_back(static_cast<int32_t>(i));
  }
  auto find = [&](int64_t tree, int64_t node) -> int32_t {
    auto it = index.find({tree, node});
    return it == index.end() ? -1 : it->second;
  };
  for (size_t i = 0; i < count; ++i) {
    FlatNode& node = trees.nodes[i];
    if (node.mode == NodeMode::kLeaf) continue;
    node.trueNode = find(treeIds[i], trueIds[i]);
    node.falseNode = find(treeIds[i], falseIds[i]);
    if (node.trueNode < 0 || node.falseNode < 0 || node.trueNode == static_cast<int32_t>(i) ||
        node.falseNode == static_cast<int32_t>(i)) {
      return info.error("node " + std::to_string(nodeIds[i]) + " of tree " + std::to_string(treeIds[i]) +
                        " points at a node not in its tree (or at itself)");
    }
  }
  // The weights, grouped by node in the order given.
  std::vector<int64_t> wTargets = n.attrInts(prefix + "_ids"), wNodes = n.attrInts(prefix + "_nodeids");
  std::vector<int64_t> wTrees = n.attrInts(prefix + "_treeids");
  WH_ASSIGN_OR_RETURN(std::vector<double> wValues, floatsOrTensor(info, prefix + "_weights"));
  if (wNodes.size() != wTargets.size() || wTrees.size() != wTargets.size() || wValues.size() != wTargets.size()) {
    return info.error("the " + prefix + "_* attributes differ in length");
  }
  std::vector<std::vector<size_t>> perNode(count);
  for (size_t k = 0; k < wTargets.size(); ++k) {
    int32_t at = find(wTrees[k], wNodes[k]);
    if (at < 0) {
      return info.error(prefix + " weight " + std::to_string(k) + " names node " + std::to_string(wNodes[k]) +
                        " of tree " + std::to_string(wTrees[k]) + ", which is not there");
    }
    if (wTargets[k] < 0 || wTargets[k] >= trees.targets) {
      return info.error(prefix + "_ids holds " + std::to_string(wTargets[k]) + ", not below " +
                        std::to_string(trees.targets));
    }
    perNode[static_cast<size_t>(at)].push_back(k);
  }
  for (size_t i = 0; i < count; ++i) {
    trees.nodes[i].weightBegin = static_cast<int32_t>(trees.weightTarget.size());
    for (size_t k : perNode[i]) {
      trees.weightTarget.push_back(wTargets[k]);
      trees.weightValue.push_back(wValues[k]);
    }
    trees.nodes[i].weightEnd = static_cast<int32_t>(trees.weightTarget.size());
  }
  WH_ASSIGN_OR_RETURN(trees.base, floatsOrTensor(info, "base_values"));
  WH_ASSIGN_OR_RETURN(trees.post, readPostTransform(info));
  prepareFastWalk(trees);
  return Status::ok();
}

/// The leaf row `x` reaches from `root`; -1 when the walk does not end (a cycle).
template <typename T>
int32_t walk(const Trees& trees, int32_t root, const T* x) {
  const FlatNode* nodes = trees.nodes.data();
  int32_t at = root;
  for (size_t step = 0; step <= trees.nodes.size(); ++step) {
    const FlatNode& node = nodes[at];
    if (node.mode == NodeMode::kLeaf) return at;
    auto v = static_cast<double>(x[node.feature]);
    bool yes = false;
    if (node.mode != NodeMode::kMember) {
      yes = compareSplit(node.mode, v, node.split, node.missingTrue);
    } else {
      const std::vector<double>& set = trees.memberSets[static_cast<size_t>(node.memberSet)];
      yes = (node.missingTrue && std::isnan(v)) || std::find(set.begin(), set.end(), v) != set.end();
    }
    at = yes ? node.trueNode : node.falseNode;
  }
  return -1;
}

/// Adds `leaf`'s weights into one row's scores by the ensemble's aggregate (`has`: which targets a
/// leaf reached already, for MIN and MAX).
template <typename Acc>
void addLeaf(const Trees& trees, const FlatNode& leaf, Acc* score, uint8_t* has) {
  for (int32_t k = leaf.weightBegin; k < leaf.weightEnd; ++k) {
    auto t = static_cast<size_t>(trees.weightTarget[static_cast<size_t>(k)]);
    auto w = static_cast<Acc>(trees.weightValue[static_cast<size_t>(k)]);
    switch (trees.aggregate) {
      case Aggregate::kAverage:
      case Aggregate::kSum:
        score[t] += w;
        break;
      case Aggregate::kMin:
        score[t] = has[t] != 0 && score[t] <= w ? score[t] : w;
        break;
      case Aggregate::kMax:
        score[t] = has[t] != 0 && score[t] >= w ? score[t] : w;
        break;
    }
    has[t] = 1;
  }
}

/// Sums (or takes the min/max of) the weights of the leaves row `x` reaches, per target.
template <typename T, typename Acc>
Status accumulate(const KernelContext& ctx, const Trees& trees, const T* x, std::vector<Acc>& score,
                  std::vector<uint8_t>& has) {
  std::fill(score.begin(), score.end(), Acc(0));
  std::fill(has.begin(), has.end(), uint8_t{0});
  for (int32_t root : trees.roots) {
    int32_t leaf = walk(trees, root, x);
    if (leaf < 0) return ctx.error("the tree at node " + std::to_string(root) + " has a cycle");
    addLeaf(trees, trees.nodes[static_cast<size_t>(leaf)], score.data(), has.data());
  }
  return Status::ok();
}

/// The leaf weights of every row, scores[r * targets + t] and has[...] as accumulate() leaves
/// them. With the fast walk, kLanes walks (a row and a tree each) step together, each step a
/// select rather than a branch, so their loads overlap; a walk that reaches its leaf records it
/// and its lane takes the next (row, tree) at once, so no lane steps past a short path and a
/// single row still has kLanes walks in flight (its trees). The walks go tree by tree, the rows
/// of a block side by side (one tree's nodes shared while they are in cache). Each row then adds
/// its leaves in tree order, so its sums are accumulate()'s, bit for bit.
template <typename T, typename Acc>
Status scoreRows(const KernelContext& ctx, const Trees& trees, const T* x, int64_t rows, int64_t columns,
                 std::vector<Acc>& scores, std::vector<uint8_t>& has) {
  const auto targets = static_cast<size_t>(trees.targets);
  scores.assign(static_cast<size_t>(rows) * targets, Acc(0));
  has.assign(scores.size(), uint8_t{0});
  if (trees.fast.empty() || columns < 1) {
    std::vector<Acc> score(targets);
    std::vector<uint8_t> hit(targets);
    for (int64_t r = 0; r < rows; ++r) {
      WH_RETURN_IF_ERROR(accumulate(ctx, trees, x + r * columns, score, hit));
      std::copy(score.begin(), score.end(), scores.begin() + r * static_cast<int64_t>(targets));
      std::copy(hit.begin(), hit.end(), has.begin() + r * static_cast<int64_t>(targets));
    }
    return Status::ok();
  }
  constexpr int kLanes = 16;
  constexpr int64_t kBlockRows = 64;  // bounds the leaf record at 64 x trees
  const Trees::FastNode* nodes = trees.fast.data();
  const auto treeCount = static_cast<int64_t>(trees.roots.size());
  std::vector<int32_t> leafOf;  // [tree * n + row in block]: the leaf each walk reached
  for (int64_t r0 = 0; r0 < rows; r0 += kBlockRows) {
    const int64_t n = std::min(kBlockRows, rows - r0);
    const int64_t walks = n * treeCount;
    leafOf.assign(static_cast<size_t>(walks), 0);
    int32_t at[kLanes];
    int64_t walk[kLanes];  // the walk a lane runs (tree * n + row), -1 when idle
    const T* row[kLanes];
    int64_t next = 0;
    int busy = 0;
    auto start = [&](int j) {
      if (next == walks) {
        walk[j] = -1;
        return;
      }
      walk[j] = next++;
      at[j] = trees.roots[static_cast<size_t>(walk[j] / n)];
      row[j] = x + (r0 + walk[j] % n) * columns;
      ++busy;
    };
    for (int j = 0; j < kLanes; ++j) start(j);
    while (busy > 0) {
      for (int j = 0; j < kLanes; ++j) {
        if (walk[j] < 0) continue;
        const Trees::FastNode& node = nodes[at[j]];
        if (node.leaf != 0) {
          leafOf[static_cast<size_t>(walk[j])] = at[j];
          --busy;
          start(j);
          continue;
        }
        const auto v = static_cast<double>(row[j][node.feature]);
        const bool yes = (node.lessThan != 0 ? v < node.split : v <= node.split) || (node.missingTrue != 0 && v != v);
        at[j] = node.child[yes ? 0 : 1];
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      const int64_t out = (r0 + j) * static_cast<int64_t>(targets);
      for (int64_t t = 0; t < treeCount; ++t) {
        const int32_t leaf = leafOf[static_cast<size_t>(t * n + j)];
        addLeaf(trees, trees.nodes[static_cast<size_t>(leaf)], scores.data() + out, has.data() + out);
      }
    }
  }
  return Status::ok();
}

/// Calls fn(const T* x, rows, columns, Acc{}) with X read in its dtype; Acc is the score dtype.
template <typename Fn>
Status withInput(const KernelContext& ctx, const Trees& trees, Fn&& fn) {
  const ir::Tensor& x = ctx.input(0);
  WH_ASSIGN_OR_RETURN(auto rc, rowsAndColumns(ctx, x));
  auto [rows, columns] = rc;
  if (trees.maxFeature >= columns) {
    return ctx.error("a node reads feature " + std::to_string(trees.maxFeature) + " of " + std::to_string(columns));
  }
  switch (x.dtype()) {
    case ir::DataType::kFloat:
      return fn(x.data<float>(), rows, columns, float{});
    case ir::DataType::kDouble:
      return fn(x.data<double>(), rows, columns, double{});
    case ir::DataType::kInt64:
      return fn(x.data<int64_t>(), rows, columns, float{});
    case ir::DataType::kInt32:
      return fn(x.data<int32_t>(), rows, columns, float{});
    default:
      return ctx.error("X has dtype " + dtypeName(x.dtype()) + "; float, double, int64 and int32 are supported");
  }
}

// ---- TreeEnsembleRegressor ----

KernelPtr makeTreeEnsembleRegressor(const KernelCreateInfo& info) {
  auto trees = std::make_shared<Trees>();
  trees->targets = info.node.attrInt("n_targets", 1);
  if (trees->targets < 1) return info.error("n_targets must be positive");
  std::string aggregate = info.node.attrString("aggregate_function", "SUM");
  static const std::map<std::string, Aggregate, std::less<>> kAggregates = {
      {"AVERAGE", Aggregate::kAverage}, {"SUM", Aggregate::kSum}, {"MIN", Aggregate::kMin}, {"MAX", Aggregate::kMax}};
  auto it = kAggregates.find(aggregate);
  if (it == kAggregates.end()) return info.error("aggregate_function '" + aggregate + "' is not known");
  trees->aggregate = it->second;
  WH_RETURN_IF_ERROR(readTrees(info, "target", *trees));
  auto targets = static_cast<size_t>(trees->targets);
  if (!trees->base.empty() && trees->base.size() != targets && !(targets == 1 && trees->base.size() == 1)) {
    return info.error("base_values holds " + std::to_string(trees->base.size()) + " values for " +
                      std::to_string(targets) + " targets");
  }
  return makeFunctionKernel([trees](KernelContext& ctx) -> Status {
    const Trees& t = *trees;
    return withInput(ctx, t, [&](const auto* x, int64_t rows, int64_t columns, auto acc) -> Status {
      using Acc = decltype(acc);
      ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kFloat, {rows, t.targets});  // float for any X
      std::vector<Acc> scores;
      std::vector<uint8_t> hits;
      WH_RETURN_IF_ERROR(scoreRows(ctx, t, x, rows, columns, scores, hits));
      std::vector<double> out(static_cast<size_t>(t.targets));
      for (int64_t r = 0; r < rows; ++r) {
        const Acc* score = scores.data() + r * t.targets;
        const uint8_t* has = hits.data() + r * t.targets;
        for (size_t k = 0; k < out.size(); ++k) {
          Acc v = score[k];
          if (t.aggregate == Aggregate::kAverage) v /= static_cast<Acc>(t.roots.size());
          if ((t.aggregate == Aggregate::kMin || t.aggregate == Aggregate::kMax) && has[k] == 0) v = 0;
          if (!t.base.empty()) v += static_cast<Acc>(t.base[k]);
          out[k] = static_cast<double>(v);
        }
        // One target: ONNX Runtime applies PROBIT and no other transform.
        if (t.targets > 1 || t.post == PostTransform::kProbit) postTransform(t.post, out.data(), t.targets);
        for (size_t k = 0; k < out.size(); ++k) storeDouble(y, r * t.targets + static_cast<int64_t>(k), out[k]);
      }
      return Status::ok();
    });
  });
}

// ---- TreeEnsembleClassifier ----

struct ClassifierConfig {
  Trees trees;
  std::vector<int64_t> intLabels;
  std::vector<std::string> stringLabels;
  bool binaryCase = false;   // two labels, weights for one class id only
  bool allPositive = true;   // no negative class weight
};

/// One row's label index (into the labels; for int64 labels with two weight columns, the
/// label value itself is 0 or 1, see the file comment) and its scores, as ONNX Runtime does.
struct ClassifierRow {
  int64_t label = 0;
  bool literalLabel = false;  // `label` is the label value, not an index
};

template <typename Acc>
ClassifierRow finishClassifierRow(const ClassifierConfig& c, std::vector<Acc>& s, std::vector<uint8_t>& has,
                                  double* z) {
  const Trees& t = c.trees;
  auto labels = static_cast<size_t>(t.targets);
  ClassifierRow row;
  if (labels > 2) {
    for (size_t k = 0; k < t.base.size() && k < labels; ++k) {
      s[k] = has[k] != 0 ? s[k] + static_cast<Acc>(t.base[k]) : static_cast<Acc>(t.base[k]);
      has[k] = 1;
    }
    int64_t best = -1;
    for (size_t k = 0; k < labels; ++k) {
      if (has[k] != 0 && (best < 0 || s[k] > s[static_cast<size_t>(best)])) best = static_cast<int64_t>(k);
    }
    row.label = std::max<int64_t>(best, 0);
    for (size_t k = 0; k < labels; ++k) z[k] = static_cast<double>(s[k]);
    postTransform(t.post, z, t.targets);
    return row;
  }
  // Two labels.
  bool single = false;  // one score column
  int mode = -1;        // how the second column is made from one score
  if (t.base.size() == 2) {
    if (has[1] != 0) {
      s[1] = static_cast<Acc>(t.base[1]) + s[0];
      s[0] = -s[1];
    } else {
      s[1] += static_cast<Acc>(t.base[1]);
      s[0] += static_cast<Acc>(t.base[0]);
    }
  } else if (t.base.size() == 1) {
    s[0] += static_cast<Acc>(t.base[0]);
    single = has[1] == 0;
  } else if (t.base.empty()) {
    mode = 3;
    single = has[1] == 0;
  }
  Acc positive = !single && has[1] != 0 ? s[1] : (has[0] != 0 ? s[0] : Acc(0));
  if (c.binaryCase) {
    bool second = c.allPositive ? positive > Acc(0.5) : positive > Acc(0);
    mode = c.allPositive ? (second ? 0 : 1) : (second ? 2 : 3);
    row.label = second ? 1 : 0;
  } else {
    row.label = positive > 0 ? 1 : 0;
    row.literalLabel = !c.intLabels.empty();
  }
  if (!single) {
    z[0] = static_cast<double>(s[0]);
    z[1] = static_cast<double>(s[1]);
    postTransform(t.post, z, 2);
    return row;
  }
  widenBinaryScore(t.post, mode, static_cast<double>(s[0]), z);
  return row;
}

KernelPtr makeTreeEnsembleClassifier(const KernelCreateInfo& info) {
  auto c = std::make_shared<ClassifierConfig>();
  WH_RETURN_IF_ERROR(readClassLabels(info, "classlabels_int64s", c->intLabels, c->stringLabels));
  c->trees.targets = static_cast<int64_t>(std::max(c->intLabels.size(), c->stringLabels.size()));
  if (c->trees.targets < 2) return info.error("a classifier needs at least two class labels");
  WH_RETURN_IF_ERROR(readTrees(info, "class", c->trees));
  std::set<int64_t> weightClasses(c->trees.weightTarget.begin(), c->trees.weightTarget.end());
  c->binaryCase = c->trees.targets == 2 && weightClasses.size() == 1;
  for (double w : c->trees.weightValue) c->allPositive = c->allPositive && w >= 0;
  if (c->trees.base.size() > static_cast<size_t>(c->trees.targets)) {
    return info.error("base_values holds " + std::to_string(c->trees.base.size()) + " values for " +
                      std::to_string(c->trees.targets) + " classes");
  }
  return makeFunctionKernel([c](KernelContext& ctx) -> Status {
    const Trees& t = c->trees;
    return withInput(ctx, t, [&](const auto* x, int64_t rows, int64_t columns, auto acc) -> Status {
      using Acc = decltype(acc);
      LabelOutput labels(ctx, rows, c->intLabels, c->stringLabels);
      ir::Tensor& z = ctx.allocateOutput(1, ir::DataType::kFloat, {rows, t.targets});
      auto* zOut = z.mutableData<float>();
      std::vector<Acc> scores, score(static_cast<size_t>(t.targets));
      std::vector<uint8_t> hits, has(score.size());
      WH_RETURN_IF_ERROR(scoreRows(ctx, t, x, rows, columns, scores, hits));
      std::vector<double> zRow(score.size());
      for (int64_t r = 0; r < rows; ++r) {
        std::copy_n(scores.begin() + r * t.targets, t.targets, score.begin());
        std::copy_n(hits.begin() + r * t.targets, t.targets, has.begin());
        ClassifierRow row = finishClassifierRow(*c, score, has, zRow.data());
        for (size_t k = 0; k < zRow.size(); ++k) zOut[r * t.targets + static_cast<int64_t>(k)] = static_cast<float>(zRow[k]);
        if (row.literalLabel) {
          labels.setValue(r, row.label);
        } else {
          labels.set(r, static_cast<size_t>(row.label));
        }
      }
      labels.finish();
      return Status::ok();
    });
  });
}

// ---- TreeEnsemble (opset 5) ----

/// Reads opset 5's attributes into `trees`: its nodes first, then one leaf node per leaf weight,
/// a child that is a leaf pointing past the nodes. A root whose two branches are the same leaf
/// is that leaf.
Status readTreeEnsemble(const KernelCreateInfo& info, Trees& trees) {
  const ir::Node& n = info.node;
  for (const char* required :
       {"nodes_splits", "nodes_featureids", "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids", "nodes_trueleafs",
        "nodes_falseleafs", "leaf_targetids", "leaf_weights", "tree_roots", "n_targets"}) {
    if (!n.hasAttribute(required)) return info.error("attribute '" + std::string(required) + "' is required");
  }
  std::vector<int64_t> features = n.attrInts("nodes_featureids"), trueIds = n.attrInts("nodes_truenodeids");
  std::vector<int64_t> falseIds = n.attrInts("nodes_falsenodeids"), trueLeaf = n.attrInts("nodes_trueleafs");
  std::vector<int64_t> falseLeaf = n.attrInts("nodes_falseleafs"), roots = n.attrInts("tree_roots");
  std::vector<int64_t> leafTarget = n.attrInts("leaf_targetids");
  std::vector<int64_t> missing = n.attrInts("nodes_missing_value_tracks_true");
  std::vector<double> splits = tensorAttrAsDoubles(n.findAttribute("nodes_splits"));
  std::vector<double> leafWeight = tensorAttrAsDoubles(n.findAttribute("leaf_weights"));
  std::vector<double> modes = tensorAttrAsDoubles(n.findAttribute("nodes_modes"));
  trees.targets = n.attrInt("n_targets", 0);
  const size_t count = splits.size(), leaves = leafWeight.size();
  for (const auto* v : {&features, &trueIds, &falseIds, &trueLeaf, &falseLeaf}) {
    if (v->size() != count) return info.error("the nodes_* attributes differ in length");
  }
  if (modes.size() != count || (!missing.empty() && missing.size() != count)) {
    return info.error("the nodes_* attributes differ in length");
  }
  if (leafTarget.size() != leaves) return info.error("leaf_targetids and leaf_weights differ in length");
  if (trees.targets < 1) return info.error("n_targets must be positive");
  if (count + leaves > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return info.error("too many nodes");
  int64_t aggregate = n.attrInt("aggregate_function", 1);
  int64_t post = n.attrInt("post_transform", 0);
  if (aggregate < 0 || aggregate > 3) {
    return info.error("aggregate_function " + std::to_string(aggregate) + " is not 0 to 3");
  }
  if (post < 0 || post > 4) return info.error("post_transform " + std::to_string(post) + " is not 0 to 4");
  trees.aggregate = static_cast<Aggregate>(aggregate);  // 0 AVERAGE, 1 SUM, 2 MIN, 3 MAX
  trees.post = static_cast<PostTransform>(post);        // the spec's numbering: 1 SOFTMAX, 2 LOGISTIC
  // Membership sets follow each other in membership_values, NaN after each, in node order.
  std::vector<double> memberValues = tensorAttrAsDoubles(n.findAttribute("membership_values"));
  size_t nextMember = 0;
  trees.nodes.resize(count + leaves);
  auto child = [&](int64_t id, int64_t leaf) { return static_cast<int32_t>(leaf != 0 ? count + id : id); };
  for (size_t i = 0; i < count; ++i) {
    FlatNode& node = trees.nodes[i];
    if (modes[i] < 0 || modes[i] > 6) return info.error("nodes_modes[" + std::to_string(i) + "] is not 0 to 6");
    node.mode = static_cast<NodeMode>(static_cast<int>(modes[i]));
    node.split = splits[i];
    node.feature = features[i];
    node.missingTrue = !missing.empty() && missing[i] != 0;
    if (node.feature < 0) return info.error("nodes_featureids[" + std::to_string(i) + "] is negative");
    trees.maxFeature = std::max(trees.maxFeature, node.feature);
    if (node.mode == NodeMode::kMember) {
      std::vector<double> set;
      while (nextMember < memberValues.size() && !std::isnan(memberValues[nextMember])) {
        set.push_back(memberValues[nextMember++]);
      }
      if (nextMember >= memberValues.size()) {
        return info.error("membership_values has no NaN-terminated set for member node " + std::to_string(i));
      }
      ++nextMember;
      node.memberSet = static_cast<int32_t>(trees.memberSets.size());
      trees.memberSets.push_back(std::move(set));
    }
    for (auto [id, leaf] : {std::pair{trueIds[i], trueLeaf[i]}, std::pair{falseIds[i], falseLeaf[i]}}) {
      const auto limit = static_cast<int64_t>(leaf != 0 ? leaves : count);
      if (id < 0 || id >= limit) {
        return info.error("node " + std::to_string(i) + " points at " + std::to_string(id) + ", out of range");
      }
    }
    node.trueNode = child(trueIds[i], trueLeaf[i]);
    node.falseNode = child(falseIds[i], falseLeaf[i]);
  }
  for (size_t k = 0; k < leaves; ++k) {
    if (leafTarget[k] < 0 || leafTarget[k] >= trees.targets) {
      return info.error("leaf_targetids holds " + std::to_string(leafTarget[k]) + ", not below n_targets");
    }
    FlatNode& leaf = trees.nodes[count + k];
    leaf.weightBegin = static_cast<int32_t>(k);
    leaf.weightEnd = static_cast<int32_t>(k + 1);
  }
  trees.weightTarget = std::move(leafTarget);
  trees.weightValue = std::move(leafWeight);
  for (int64_t r : roots) {
    if (r < 0 || r >= static_cast<int64_t>(count)) {
      return info.error("tree_roots holds " + std::to_string(r) + ", out of range");
    }
    const auto i = static_cast<size_t>(r);
    const bool isLeaf = trueLeaf[i] != 0 && falseLeaf[i] != 0 && trueIds[i] == falseIds[i];
    trees.roots.push_back(isLeaf ? child(trueIds[i], 1) : static_cast<int32_t>(r));
  }
  prepareFastWalk(trees);
  return Status::ok();
}

/// Scores in double, Y in X's dtype; MIN and MAX over the leaves that reached a target, one no
/// leaf reached stays 0 (ONNX Runtime; the ONNX reference leaves the float type's extreme there);
/// the post transform on every target.
KernelPtr makeTreeEnsemble(const KernelCreateInfo& info) {
  auto trees = std::make_shared<Trees>();
  WH_RETURN_IF_ERROR(readTreeEnsemble(info, *trees));
  return makeFunctionKernel([trees](KernelContext& ctx) -> Status {
    const Trees& t = *trees;
    const ir::Tensor& x = ctx.input(0);
    WH_ASSIGN_OR_RETURN(auto rc, rowsAndColumns(ctx, x));
    auto [rows, columns] = rc;
    if (t.maxFeature >= columns) {
      return ctx.error("a node reads feature " + std::to_string(t.maxFeature) + " of " + std::to_string(columns));
    }
    std::vector<double> scores;
    std::vector<uint8_t> hits;
    std::vector<float> widened;  // float16 X, read as float (exact)
    switch (x.dtype()) {
      case ir::DataType::kFloat:
        WH_RETURN_IF_ERROR(scoreRows(ctx, t, x.data<float>(), rows, columns, scores, hits));
        break;
      case ir::DataType::kDouble:
        WH_RETURN_IF_ERROR(scoreRows(ctx, t, x.data<double>(), rows, columns, scores, hits));
        break;
      case ir::DataType::kFloat16:
        widened.resize(static_cast<size_t>(x.numel()));
        for (int64_t i = 0; i < x.numel(); ++i) widened[static_cast<size_t>(i)] = static_cast<float>(x.valueAsDouble(i));
        WH_RETURN_IF_ERROR(scoreRows(ctx, t, widened.data(), rows, columns, scores, hits));
        break;
      default:
        return ctx.error("X has dtype " + dtypeName(x.dtype()) + "; float, double and float16 are supported");
    }
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), {rows, t.targets});
    const auto targets = static_cast<size_t>(t.targets);
    for (int64_t r = 0; r < rows; ++r) {
      double* score = scores.data() + static_cast<size_t>(r) * targets;
      if (t.aggregate == Aggregate::kAverage && !t.roots.empty()) {
        for (size_t k = 0; k < targets; ++k) score[k] /= static_cast<double>(t.roots.size());
      }
      postTransform(t.post, score, t.targets);
      for (size_t k = 0; k < targets; ++k) storeDouble(y, r * t.targets + static_cast<int64_t>(k), score[k]);
    }
    return Status::ok();
  });
}

}  // namespace

void registerMlTreeKernels(KernelRegistry& r) {
  // Opset 3 adds the *_as_tensor attributes, which one kernel reads.
  r.add("ai.onnx.ml", "TreeEnsembleClassifier", 1, makeTreeEnsembleClassifier);
  r.add("ai.onnx.ml", "TreeEnsembleRegressor", 1, makeTreeEnsembleRegressor);
  r.add("ai.onnx.ml", "TreeEnsemble", 5, makeTreeEnsemble);
}

}  // namespace whittle::runtime::cpu
