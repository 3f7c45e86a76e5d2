// Shape rules of the sampling and detection ops (GridSample, AffineGrid, Col2Im, DeformConv,
// RoiAlign, NonMaxSuppression, CenterCropPad), the losses (NegativeLogLikelihoodLoss,
// SoftmaxCrossEntropyLoss), Det and Unique.
#include <algorithm>

#include "ir/shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

/// Input 0 [N, C, d...] without axis 1: the loss per element, or a scalar when reduced.
void loss(NodeContext& c) {
  bool none = c.node().attrString("reduction", "mean") == "none";
  const SymShape* x = c.shape(0);
  if (!none) {
    c.set(0, c.dtype(0), SymShape{});
  } else if (x != nullptr && x->size() >= 2) {
    SymShape y = {(*x)[0]};
    y.insert(y.end(), x->begin() + 2, x->end());
    c.set(0, c.dtype(0), y);
  } else {
    c.set(0, c.dtype(0), std::nullopt);
  }
  if (c.numOutputs() > 1) c.set(1, c.dtype(0), x != nullptr ? std::optional<SymShape>(*x) : std::nullopt);
}

/// [N, C, grid dims 1 .. -1].
void gridSample(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const SymShape* g = c.shape(1);
  if (g == nullptr || g->size() < 3) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  SymShape y(2);
  if (x != nullptr && x->size() >= 2) {
    y[0] = (*x)[0];
    y[1] = (*x)[1];
  } else {
    y[0] = (*g)[0];
  }
  y.insert(y.end(), g->begin() + 1, g->end() - 1);
  c.set(0, c.dtype(0), y);
}

/// size = [N, C, (D,) H, W] -> [N, (D,) H, W, 2 or 3].
void affineGrid(NodeContext& c) {
  const std::vector<SymInt>* size = c.values(1);
  const SymShape* sizeShape = c.shape(1);
  size_t n = size != nullptr ? size->size() : (sizeShape != nullptr && sizeShape->size() == 1 && (*sizeShape)[0].isConst()
                                                   ? static_cast<size_t>((*sizeShape)[0].value())
                                                   : 0);
  if (n != 4 && n != 5) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  SymShape y(n);
  if (size != nullptr) {
    y[0] = (*size)[0];
    for (size_t i = 2; i < n; ++i) y[i - 1] = (*size)[i];
  }
  y[n - 1] = SymInt::of(static_cast<int64_t>(n) - 2);
  c.set(0, c.dtype(0), y);
}

/// [N, C / prod(block_shape), image_shape...].
void col2im(NodeContext& c) {
  const SymShape* x = c.shape(0);
  auto image = c.ints(1);
  auto block = c.ints(2);
  size_t r = image ? image->size() : (c.shape(1) != nullptr && c.shape(1)->size() == 1 && (*c.shape(1))[0].isConst()
                                          ? static_cast<size_t>((*c.shape(1))[0].value())
                                          : 0);
  if (r == 0) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  SymShape y(2 + r);
  if (x != nullptr && x->size() == 3) {
    y[0] = (*x)[0];
    if (block) {
      int64_t k = 1;
      for (int64_t b : *block) k *= std::max<int64_t>(b, 1);
      y[1] = divExact((*x)[1], SymInt::of(k));
    }
  }
  if (image) {
    for (size_t i = 0; i < r; ++i) y[2 + i] = SymInt::of((*image)[i]);
  }
  c.set(0, c.dtype(0), y);
}

/// [N, oC, offset dims 2..].
void deformConv(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const SymShape* w = c.shape(1);
  const SymShape* offset = c.shape(2);
  if (offset == nullptr || offset->size() < 3) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  SymShape y(2);
  y[0] = x != nullptr && !x->empty() ? (*x)[0] : (*offset)[0];
  if (w != nullptr && !w->empty()) y[1] = (*w)[0];
  y.insert(y.end(), offset->begin() + 2, offset->end());
  c.set(0, c.dtype(0), y);
}

/// [num_rois, C, output_height, output_width].
void roiAlign(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const SymShape* rois = c.shape(1);
  SymShape y(4);
  if (rois != nullptr && rois->size() == 2) y[0] = (*rois)[0];
  if (x != nullptr && x->size() == 4) y[1] = (*x)[1];
  y[2] = SymInt::of(c.node().attrInt("output_height", 1));
  y[3] = SymInt::of(c.node().attrInt("output_width", 1));
  c.set(0, c.dtype(0), y);
}

void nonMaxSuppression(NodeContext& c) {
  c.set(0, DataType::kInt64, SymShape{SymInt(), SymInt::of(3)});
}

/// The input's shape with the dims of `axes` set to `shape`.
void centerCropPad(NodeContext& c) {
  const SymShape* x = c.shape(0);
  if (x == nullptr) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  auto rank = static_cast<int64_t>(x->size());
  std::vector<int64_t> axes = c.node().attrInts("axes");
  if (!c.node().hasAttribute("axes")) {
    for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
  }
  const std::vector<SymInt>* shape = c.values(1);
  SymShape y = *x;
  for (size_t k = 0; k < axes.size(); ++k) {
    auto a = normalizeAxis(axes[k], rank);
    if (!a) {
      c.set(0, c.dtype(0), std::nullopt);
      return;
    }
    y[static_cast<size_t>(*a)] = shape != nullptr && k < shape->size() ? (*shape)[k] : SymInt();
  }
  c.set(0, c.dtype(0), y);
}

/// [..., M, M] -> [...].
void det(NodeContext& c) {
  const SymShape* x = c.shape(0);
  if (x == nullptr || x->size() < 2) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  c.set(0, c.dtype(0), SymShape(x->begin(), x->end() - 2));
}

/// Y: the input with the axis (or the flattened input) of unknown size; indices and counts
/// [U]; inverse_indices [size of the axis or numel].
void unique(NodeContext& c) {
  const SymShape* x = c.shape(0);
  bool hasAxis = c.node().hasAttribute("axis");
  SymInt n;
  if (!hasAxis) {
    c.set(0, c.dtype(0), SymShape(1));
    if (x != nullptr) n = product(*x);
  } else if (x != nullptr) {
    auto a = normalizeAxis(c.node().attrInt("axis", 0), static_cast<int64_t>(x->size()));
    if (a) {
      SymShape y = *x;
      y[static_cast<size_t>(*a)] = SymInt();
      n = (*x)[static_cast<size_t>(*a)];
      c.set(0, c.dtype(0), y);
    } else {
      c.set(0, c.dtype(0), std::nullopt);
    }
  } else {
    c.set(0, c.dtype(0), std::nullopt);
  }
  if (c.numOutputs() > 1) c.set(1, DataType::kInt64, SymShape(1));
  if (c.numOutputs() > 2) c.set(2, DataType::kInt64, SymShape{n});
  if (c.numOutputs() > 3) c.set(3, DataType::kInt64, SymShape(1));
}

}  // namespace

void addVisionLossRules(std::vector<RuleEntry>& rules) {
  rules.push_back({"", "NegativeLogLikelihoodLoss", loss});
  rules.push_back({"", "SoftmaxCrossEntropyLoss", loss});
  rules.push_back({"", "GridSample", gridSample});
  rules.push_back({"", "AffineGrid", affineGrid});
  rules.push_back({"", "Col2Im", col2im});
  rules.push_back({"", "DeformConv", deformConv});
  rules.push_back({"", "RoiAlign", roiAlign});
  rules.push_back({"", "NonMaxSuppression", nonMaxSuppression});
  rules.push_back({"", "CenterCropPad", centerCropPad});
  rules.push_back({"", "Det", det});
  rules.push_back({"", "Unique", unique});
}

}  // namespace whittle::ir::shape
