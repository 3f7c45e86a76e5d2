// The CPU lowering's step S (see lowering.h): data movement that picks channels.
//
// Before: y = Reshape(Transpose(Reshape(x, [N, g, C/g, H, W]), [0, 2, 1, 3, 4]), [N, C, H, W])
//         (ShuffleNet's channel shuffle), or y = Gather(Reshape(Transpose(Reshape(x, [C/2, 2, H*W]),
//         [1, 0, 2]), [2, -1, C/2, H, W]), k) (ShuffleNetV2's channel split), or a Slice of channels
// After:  y = ChannelGather(x), channels = the input channel of each output channel
//
// Any chain of Reshape, Squeeze, Unsqueeze, Flatten, Identity, Transpose, Gather and Slice with
// constant operands from a 4-D x [N, C, H, W] to a 4-D y [N, C', H, W] whose every element is
// x[n, m(c'), h, w] is one: the chain is run once on the element indices of x to find m. The
// channels-last lowering passes a ChannelGather through (a per-pixel gather of channels), where
// the Transpose forced the convolutions around it to channels first (two reorders each).
// Requires: static shapes on the chain (shape inference ran).
#include <algorithm>
#include <numeric>
#include <optional>
#include <unordered_set>

#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {
namespace {

constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;
constexpr int64_t kMaxElements = int64_t{1} << 24;  // the index run's size, elements of x

/// Element indices of x under the dims of one value of the chain.
struct Indices {
  std::vector<int64_t> dims;
  std::vector<int32_t> at;
};

bool isMovement(const ir::Node& n) {
  return ir::isDefaultDomainOp(n, {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Transpose", "Gather",
                                   "Slice"}) &&
         n.output(0) != nullptr && n.numOutputs() == 1;
}

std::optional<std::vector<int64_t>> constantInts(const ir::Value* v) {
  const ir::Tensor* t = ir::constantOf(v, kSession);
  if (t == nullptr || t->rank() > 1) return std::nullopt;
  std::vector<int64_t> out;
  if (t->dtype() == ir::DataType::kInt64) {
    out.assign(t->data<int64_t>(), t->data<int64_t>() + t->numel());
  } else if (t->dtype() == ir::DataType::kInt32) {
    out.assign(t->data<int32_t>(), t->data<int32_t>() + t->numel());
  } else {
    return std::nullopt;
  }
  return out;
}

/// `in` with axis `axis` replaced by the positions `picks` (kept as an axis of that length).
Indices pick(const Indices& in, size_t axis, const std::vector<int64_t>& picks) {
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < axis; ++i) outer *= in.dims[i];
  for (size_t i = axis + 1; i < in.dims.size(); ++i) inner *= in.dims[i];
  const int64_t len = in.dims[axis];
  Indices out{in.dims, {}};
  out.dims[axis] = static_cast<int64_t>(picks.size());
  out.at.reserve(static_cast<size_t>(outer * inner) * picks.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t p : picks) {
      const int32_t* row = in.at.data() + (o * len + p) * inner;
      out.at.insert(out.at.end(), row, row + inner);
    }
  }
  return out;
}

Indices transpose(const Indices& in, const std::vector<int64_t>& perm) {
  const size_t rank = in.dims.size();
  std::vector<int64_t> inStrides(rank, 1);
  for (size_t i = rank; i-- > 1;) inStrides[i - 1] = inStrides[i] * in.dims[i];
  Indices out{std::vector<int64_t>(rank), std::vector<int32_t>(in.at.size())};
  for (size_t i = 0; i < rank; ++i) out.dims[i] = in.dims[static_cast<size_t>(perm[i])];
  std::vector<int64_t> pos(rank, 0);
  for (size_t k = 0; k < out.at.size(); ++k) {
    int64_t src = 0;
    for (size_t i = 0; i < rank; ++i) src += pos[i] * inStrides[static_cast<size_t>(perm[i])];
    out.at[k] = in.at[static_cast<size_t>(src)];
    for (size_t i = rank; i-- > 0;) {
      if (++pos[i] < out.dims[i]) break;
      pos[i] = 0;
    }
  }
  return out;
}

/// What `n` does to the element indices `in`, or nullopt when it is not a constant movement
/// this step understands. `outDims` are n's static output dims.
std::optional<Indices> apply(const ir::Node& n, Indices in, const std::vector<int64_t>& outDims) {
  const std::string& op = n.opType();
  const auto rank = static_cast<int64_t>(in.dims.size());
  auto axisOf = [rank](int64_t a) -> std::optional<size_t> {
    if (a < -rank || a >= rank) return std::nullopt;
    return static_cast<size_t>(a < 0 ? a + rank : a);
  };
  if (op == "Transpose") {
    std::vector<int64_t> perm = n.attrInts("perm");
    if (perm.empty()) {
      for (int64_t i = rank; i-- > 0;) perm.push_back(i);
    }
    if (static_cast<int64_t>(perm.size()) != rank) return std::nullopt;
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < rank; ++i) {
      if (sorted[static_cast<size_t>(i)] != i) return std::nullopt;
    }
    in = transpose(in, perm);
  } else if (op == "Gather") {
    auto axis = axisOf(n.attrInt("axis", 0));
    auto idx = constantInts(n.input(1));
    if (!axis || !idx) return std::nullopt;
    const int64_t len = in.dims[*axis];
    for (int64_t& i : *idx) {
      if (i < -len || i >= len) return std::nullopt;
      if (i < 0) i += len;
    }
    in = pick(in, *axis, *idx);  // a scalar index drops the axis: the reshape below does it
  } else if (op == "Slice") {
    if (n.numInputs() < 3) return std::nullopt;
    auto starts = constantInts(n.input(1)), ends = constantInts(n.input(2));
    std::optional<std::vector<int64_t>> axes, steps;
    if (n.input(3) != nullptr) axes = constantInts(n.input(3));
    if (n.input(4) != nullptr) steps = constantInts(n.input(4));
    if (!starts || !ends || (n.input(3) != nullptr && !axes) || (n.input(4) != nullptr && !steps) ||
        outDims.size() != in.dims.size()) {
      return std::nullopt;
    }
    if (!axes) {
      axes.emplace(starts->size());
      std::iota(axes->begin(), axes->end(), 0);
    }
    for (size_t k = 0; k < starts->size(); ++k) {
      auto axis = axisOf((*axes)[k]);
      if (!axis) return std::nullopt;
      const int64_t len = in.dims[*axis], step = steps ? (*steps)[k] : 1;
      if (step == 0) return std::nullopt;
      int64_t start = (*starts)[k];
      if (start < 0) start += len;
      start = step > 0 ? std::clamp<int64_t>(start, 0, len) : std::clamp<int64_t>(start, 0, len - 1);
      std::vector<int64_t> picks;
      for (int64_t i = 0; i < outDims[*axis]; ++i) picks.push_back(start + i * step);
      for (int64_t p : picks) {
        if (p < 0 || p >= len) return std::nullopt;
      }
      in = pick(in, *axis, picks);
    }
  }
  // Every op also gives its output dims to the same elements in order (Reshape and the like
  // only that).
  int64_t numel = 1;
  for (int64_t d : outDims) numel *= d;
  if (numel != static_cast<int64_t>(in.at.size())) return std::nullopt;
  in.dims = outDims;
  return in;
}

/// The channel each output channel reads when `indices` (under y's dims [N, C', H, W]) are
/// x[n, m(c'), h, w] of x's dims [N, C, H, W]; nullopt otherwise.
std::optional<std::vector<int64_t>> channelMap(const Indices& indices, const std::vector<int64_t>& x) {
  const std::vector<int64_t>& y = indices.dims;
  if (y.size() != 4 || y[0] != x[0] || y[2] != x[2] || y[3] != x[3]) return std::nullopt;
  const int64_t plane = x[2] * x[3];
  std::vector<int64_t> map(static_cast<size_t>(y[1]));
  for (int64_t c = 0; c < y[1]; ++c) map[static_cast<size_t>(c)] = indices.at[static_cast<size_t>(c * plane)] / plane;
  size_t k = 0;
  for (int64_t n = 0; n < y[0]; ++n) {
    for (int64_t c = 0; c < y[1]; ++c) {
      const int64_t base = (n * x[1] + map[static_cast<size_t>(c)]) * plane;
      for (int64_t p = 0; p < plane; ++p) {
        if (indices.at[k++] != base + p) return std::nullopt;
      }
    }
  }
  return map;
}

}  // namespace

int64_t lowerChannelGathers(ir::Graph& graph, const std::vector<std::string>& keep) {
  std::unordered_set<const ir::Value*> kept;
  for (const std::string& name : keep) {
    if (const ir::Value* v = graph.findValue(name)) kept.insert(v);
  }
  auto staticDims = [](const ir::Value* v) { return v == nullptr ? std::nullopt : v->type().staticDims(); };
  int64_t made = 0;
  for (ir::Node* last : graph.nodes()) {
    if (!isMovement(*last)) continue;
    ir::Value* y = last->output(0);
    auto yDims = staticDims(y);
    if (!yDims || yDims->size() != 4) continue;
    // Back to the first 4-D value with y's N, H and W: the chain, last node first.
    std::vector<ir::Node*> chain;
    ir::Value* x = nullptr;
    size_t chainToX = 0;
    bool picks = false, picksToX = false;
    for (ir::Node* n = last; n != nullptr && isMovement(*n) && chain.size() < 16;) {
      chain.push_back(n);
      picks = picks || !ir::isDefaultDomainOp(*n, {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"});
      ir::Value* in = n->input(0);
      auto d = staticDims(in);
      if (!d) break;
      if (d->size() == 4 && (*d)[0] == (*yDims)[0] && (*d)[2] == (*yDims)[2] && (*d)[3] == (*yDims)[3]) {
        x = in;
        chainToX = chain.size();
        picksToX = picks;
      }
      n = in->producer();
    }
    if (x == nullptr || !picksToX) continue;
    chain.resize(chainToX);
    auto xDims = staticDims(x);
    int64_t numel = 1;
    for (int64_t d : *xDims) numel *= d;
    if (numel > kMaxElements) continue;
    Indices indices{*xDims, std::vector<int32_t>(static_cast<size_t>(numel))};
    std::iota(indices.at.begin(), indices.at.end(), 0);
    bool ok = true;
    for (size_t i = chain.size(); ok && i-- > 0;) {
      auto out = staticDims(chain[i]->output(0));
      std::optional<Indices> next = out ? apply(*chain[i], std::move(indices), *out) : std::nullopt;
      ok = next.has_value();
      if (ok) indices = std::move(*next);
    }
    if (!ok) continue;
    auto map = channelMap(indices, *xDims);
    if (!map) continue;
    ir::replaceChain(graph, {last}, y, "ChannelGather", "com.whittle.internal",
                     graph.uniqueNodeName(last->name().empty() ? "channel_gather" : last->name()), {x},
                     {ir::Attribute::makeInts("channels", *map)});
    ++made;
    // The rest of the chain goes where nothing else reads it.
    for (size_t i = 1; i < chain.size(); ++i) {
      ir::Value* out = chain[i]->output(0);
      if (out->hasUses() || out->isGraphOutput() || kept.contains(out)) break;
      graph.eraseNode(chain[i]);
    }
  }
  return made;
}

}  // namespace whittle::runtime
