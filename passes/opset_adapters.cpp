// The adapters of upgrade-opset: one function per schema change that altered an operator's
// signature or meaning between opset 7 and onnx_io::kMaxOpset (the table in
// opset_history.cpp says which change each one serves). An adapter either rewrites the node
// so that the new schema computes what the old one did, or refuses with a one-line reason;
// it never approximates. Adapters run on a copy of the model (upgradeOpset swaps it in only
// when every node converted), so a refusal after other rewrites leaves the model unchanged.
#include <algorithm>
#include <cmath>

#include "opset_history.h"
#include "whittle/ir/fold.h"
#include "whittle/ir/match.h"

namespace whittle::passes::opset {

// ---- The Upgrade's helpers ----

ir::Node* Upgrade::addNode(const std::string& op, const std::vector<ir::Value*>& inputs,
                           const std::vector<std::string>& outputNames, const std::string& name, ir::Node* before) {
  ir::Node* n = graph_.addNode(op, inputs, outputNames, graph_.uniqueNodeName(name), "", before);
  pending.emplace_back(n, version_);
  return n;
}

ir::Node* Upgrade::replace(ir::Node& node, const std::string& op, const std::vector<ir::Value*>& inputs,
                           size_t keepOutputs, const std::vector<std::string>& dropAttributes) {
  std::vector<std::string> names;
  for (size_t i = 0; i < keepOutputs; ++i) {
    ir::Value* out = node.output(i);
    names.push_back(out == nullptr ? "" : graph_.uniqueValueName(out->name() + "_upgraded"));
  }
  ir::Node* n = graph_.addNode(op, inputs, names, node.name(), "", &node);
  for (const ir::Attribute& a : node.attributes()) {
    if (std::find(dropAttributes.begin(), dropAttributes.end(), a.name) == dropAttributes.end()) n->setAttribute(a);
  }
  n->setDocString(node.docString());
  std::vector<std::string> original;
  for (size_t i = 0; i < keepOutputs; ++i) {
    ir::Value* out = node.output(i);
    original.push_back(out == nullptr ? "" : out->name());
    if (out == nullptr) continue;
    n->output(i)->mutableType() = out->type();
    graph_.replaceAllUsesWith(out, n->output(i));
  }
  erase(node);
  for (size_t i = 0; i < keepOutputs; ++i) {
    ir::Value* out = n->output(i);
    if (out != nullptr && out->name() != original[i] && graph_.findValue(original[i]) == nullptr) {
      WH_CHECK(graph_.renameValue(out, original[i]).isOk());
    }
  }
  pending.emplace_back(n, version_);
  return n;
}

void Upgrade::replaceOutput(ir::Node& node, ir::Value* by) {
  ir::Value* out = node.output(0);
  std::string name = out->name();
  if (by->type().dtype == ir::DataType::kUndefined) by->mutableType() = out->type();
  graph_.replaceAllUsesWith(out, by);
  erase(node);
  if (by->name() != name && graph_.findValue(name) == nullptr) WH_CHECK(graph_.renameValue(by, name).isOk());
}

void Upgrade::erase(ir::Node& node) {
  // Only the node being adapted is ever erased. Its address may be reused by a later node, so
  // nothing keyed by it may survive.
  WH_CHECK(&node == current_, "an adapter erased a node other than its own");
  currentErased_ = true;
  fromUpsample.erase(&node);
  graph_.eraseNode(&node);
}

ir::Value* Upgrade::int64s(const std::string& base, const std::vector<int64_t>& values, bool scalar) {
  std::vector<int64_t> dims;
  if (!scalar) dims.push_back(static_cast<int64_t>(values.size()));
  return graph_.addInitializer(graph_.uniqueValueName(base), ir::Tensor::fromVector(ir::DataType::kInt64, dims, values));
}

ir::Value* Upgrade::floats(const std::string& base, const std::vector<float>& values) {
  return graph_.addInitializer(graph_.uniqueValueName(base),
                               ir::Tensor::fromVector(ir::DataType::kFloat, {static_cast<int64_t>(values.size())}, values));
}

ir::Value* Upgrade::scalar(const std::string& base, ir::DataType dtype, double value) {
  return graph_.addInitializer(graph_.uniqueValueName(base), ir::fromDoubles(dtype, {}, {value}));
}

Status Upgrade::refuse(const ir::Node& node, const std::string& why) const {
  return unimplemented("upgrade-opset: " + node.describe() + " cannot go from its opset-" + std::to_string(nodeVersion_) +
                       " form to opset " + std::to_string(version_) + ": " + why);
}

namespace {

std::string baseName(const ir::Node& n) { return n.name().empty() ? n.output(0)->name() : n.name(); }

// The element type of a float input the new inputs must match, or an error.
Expected<ir::DataType> floatTypeOf(const ir::Node& node, const Upgrade& up) {
  ir::DataType t = node.input(0)->dtype();
  if (!ir::isFloatingPoint(t)) {
    return up.refuse(node, "the element type of input '" + node.input(0)->name() +
                               "' is unknown, and the new scalar inputs must have it");
  }
  return t;
}

// Moves the ints attribute `attr` to an int64 input at `index` (absent when the attribute is).
void intsAttributeToInput(ir::Node& node, Upgrade& up, const std::string& attr, size_t index) {
  const ir::Attribute* a = node.findAttribute(attr);
  if (a == nullptr) return;
  std::vector<int64_t> values = a->ints;
  node.removeAttribute(attr);
  node.setInput(index, up.int64s(baseName(node) + "_" + attr, values));
}

}  // namespace

// Slice-1 -> Slice-10: starts, ends (and axes) are inputs; steps default to 1, as before.
Status sliceAttributesToInputs(ir::Node& node, Upgrade& up) {
  if (!node.hasAttribute("starts") || !node.hasAttribute("ends")) {
    return up.refuse(node, "attributes starts and ends are required at opset 1 and missing");
  }
  intsAttributeToInput(node, up, "starts", 1);
  intsAttributeToInput(node, up, "ends", 2);
  intsAttributeToInput(node, up, "axes", 3);
  return Status::ok();
}

// TopK-1 -> TopK-10: k is a 1-element int64 input.
Status topKAttributeToInput(ir::Node& node, Upgrade& up) {
  const ir::Attribute* k = node.findAttribute("k");
  if (k == nullptr) return up.refuse(node, "attribute k is required at opset 1 and missing");
  int64_t value = k->i;
  node.removeAttribute("k");
  node.setInput(1, up.int64s(baseName(node) + "_k", {value}));
  return Status::ok();
}

// Upsample-7 -> Upsample-9: scales is a float input.
Status upsampleScalesToInput(ir::Node& node, Upgrade& up) {
  const ir::Attribute* s = node.findAttribute("scales");
  if (s == nullptr) return up.refuse(node, "attribute scales is required at opset 7 and missing");
  std::vector<float> scales = s->floats;
  node.removeAttribute("scales");
  node.setInput(1, up.floats(baseName(node) + "_scales", scales));
  return Status::ok();
}

// Upsample-9 -> Resize-10: the same inputs (X, scales) and mode; Resize-10 is Upsample renamed.
Status upsampleToResize(ir::Node& node, Upgrade& up) {
  if (node.input(1) == nullptr) return up.refuse(node, "input scales is missing");
  ir::Node* resize = up.replace(node, "Resize", {node.input(0), node.input(1)}, 1);
  up.fromUpsample.insert(resize);
  return Status::ok();
}

// Resize-10 -> Resize-11. Opset 10 maps output x to input x / scale (asymmetric) and, for
// nearest, takes the pixel at floor(x / scale) when upsampling (scale >= 1) and at
// ceil(x / scale) when downsampling (what ONNX Runtime and whittle's runtime do for the old
// form). Opset 11 needs both said: coordinate_transformation_mode=asymmetric and nearest_mode
// floor or ceil, which needs the scales to be constant unless the node was an Upsample (whose
// scales are >= 1 by definition). roi becomes an empty input: only tf_crop_and_resize reads it.
Status resize10To11(ir::Node& node, Upgrade& up) {
  ir::Value* scales = node.input(1);
  if (scales == nullptr) return up.refuse(node, "input scales is missing");
  std::string mode = node.attrString("mode", "nearest");
  if (mode == "nearest") {
    std::string nearest = "floor";
    if (!up.fromUpsample.contains(&node)) {
      const ir::Tensor* s = ir::constantOf(scales);
      if (s == nullptr) {
        return up.refuse(node, "nearest with scales that are not constant: opset 10 rounds down when upsampling and up "
                               "when downsampling, and opset 11 has one rounding for all scales");
      }
      bool down = false, upsampling = false;
      for (double v : ir::toDoubles(*s)) {
        down = down || v < 1.0;
        upsampling = upsampling || v > 1.0;
      }
      if (down && upsampling) {
        return up.refuse(node, "nearest that upsamples some axes and downsamples others: opset 10 rounds differently "
                               "per axis, opset 11 has one rounding for all axes");
      }
      if (down) nearest = "ceil";
    }
    node.setAttribute(ir::Attribute::makeString("nearest_mode", nearest));
  } else if (mode != "linear") {
    return up.refuse(node, "mode '" + mode + "' is not an opset-10 mode");
  }
  node.setAttribute(ir::Attribute::makeString("coordinate_transformation_mode", "asymmetric"));
  node.setInput(1, up.floats(baseName(node) + "_roi", {}));
  node.setInput(2, scales);
  return Status::ok();
}

// Resize-11 -> Resize-13: tf_half_pixel_for_nn (x = (y + 0.5) / scale) is gone. With nearest it
// equals half_pixel (x = (y + 0.5) / scale - 0.5) with the rounding moved by half a pixel:
// floor(x + 0.5) is round_prefer_ceil(x), round_prefer_floor(x + 0.5) is ceil(x). The other
// roundings have no counterpart, nor has linear or cubic interpolation.
Status resizeTfHalfPixelForNn(ir::Node& node, Upgrade& up) {
  if (node.attrString("coordinate_transformation_mode", "half_pixel") != "tf_half_pixel_for_nn") return Status::ok();
  if (node.attrString("mode", "nearest") != "nearest") {
    return up.refuse(node, "coordinate_transformation_mode tf_half_pixel_for_nn was removed and has no counterpart "
                           "for mode '" + node.attrString("mode", "nearest") + "'");
  }
  std::string nearest = node.attrString("nearest_mode", "round_prefer_floor");
  std::string moved;
  if (nearest == "floor") moved = "round_prefer_ceil";
  if (nearest == "round_prefer_floor") moved = "ceil";
  if (moved.empty()) {
    return up.refuse(node, "coordinate_transformation_mode tf_half_pixel_for_nn was removed and has no counterpart "
                           "with nearest_mode '" + nearest + "'");
  }
  node.setAttribute(ir::Attribute::makeString("coordinate_transformation_mode", "half_pixel"));
  node.setAttribute(ir::Attribute::makeString("nearest_mode", moved));
  return Status::ok();
}

// Pad-2 -> Pad-11: pads is an int64 input and value a scalar input of the data's type.
Status padAttributesToInputs(ir::Node& node, Upgrade& up) {
  const ir::Attribute* pads = node.findAttribute("pads");
  if (pads == nullptr) return up.refuse(node, "attribute pads is required at opset 2 and missing");
  float value = node.attrFloat("value", 0.0f);
  bool constantMode = node.attrString("mode", "constant") == "constant";
  ir::DataType t = ir::DataType::kUndefined;
  if (constantMode && value != 0.0f) {
    WH_ASSIGN_OR_RETURN(t, floatTypeOf(node, up));
  }
  intsAttributeToInput(node, up, "pads", 1);
  node.removeAttribute("value");
  if (constantMode && value != 0.0f) node.setInput(2, up.scalar(baseName(node) + "_value", t, value));
  return Status::ok();
}

// Clip-6 -> Clip-11: min and max are optional scalar inputs of the input's type.
Status clipAttributesToInputs(ir::Node& node, Upgrade& up) {
  const ir::Attribute* lo = node.findAttribute("min");
  const ir::Attribute* hi = node.findAttribute("max");
  if (lo == nullptr && hi == nullptr) return Status::ok();
  WH_ASSIGN_OR_RETURN(ir::DataType t, floatTypeOf(node, up));
  float loValue = lo != nullptr ? lo->f : 0.0f;
  float hiValue = hi != nullptr ? hi->f : 0.0f;
  bool hasLo = lo != nullptr, hasHi = hi != nullptr;
  node.removeAttribute("min");
  node.removeAttribute("max");
  if (hasLo) node.setInput(1, up.scalar(baseName(node) + "_min", t, loValue));
  if (hasHi) node.setInput(2, up.scalar(baseName(node) + "_max", t, hiValue));
  return Status::ok();
}

// Dropout-7 -> Dropout-10: the mask output became bool. An unread mask is dropped; a read one
// cannot keep its type.
Status dropoutBoolMask(ir::Node& node, Upgrade& up) {
  if (node.numOutputs() < 2 || node.output(1) == nullptr) return Status::ok();
  if (node.output(1)->hasUses() || node.output(1)->isGraphOutput()) {
    return up.refuse(node, "its mask output is read, and the mask became tensor(bool) at opset 10");
  }
  up.replace(node, "Dropout", node.inputs(), 1);
  return Status::ok();
}

// Dropout-10 -> Dropout-12: ratio is an optional float scalar input (inference ignores it, but
// it is kept for what the model says).
Status dropoutRatioToInput(ir::Node& node, Upgrade& up) {
  const ir::Attribute* ratio = node.findAttribute("ratio");
  if (ratio == nullptr) return Status::ok();
  double value = ratio->f;
  node.removeAttribute("ratio");
  node.setInput(1, up.scalar(baseName(node) + "_ratio", ir::DataType::kFloat, value));
  return Status::ok();
}

// Split-11 -> Split-13: split is an optional int64 input.
Status splitAttributeToInput(ir::Node& node, Upgrade& up) {
  intsAttributeToInput(node, up, "split", 1);
  return Status::ok();
}

// Split-13 -> Split-18: without a split input, num_outputs says how many equal parts.
Status splitNumOutputs(ir::Node& node, Upgrade& up) {
  (void)up;
  if (node.input(1) != nullptr || node.hasAttribute("num_outputs")) return Status::ok();
  node.setAttribute(ir::Attribute::makeInt("num_outputs", static_cast<int64_t>(node.numOutputs())));
  return Status::ok();
}

// Squeeze/Unsqueeze -> 13, ReduceSum -> 13, the other reductions -> 18: axes is an optional
// int64 input. An absent or empty attribute means all axes (Squeeze: all 1-dims), which no
// input (and noop_with_empty_axes = 0) still means.
Status axesAttributeToInput(ir::Node& node, Upgrade& up) {
  const ir::Attribute* axes = node.findAttribute("axes");
  if (axes == nullptr) return Status::ok();
  if (axes->ints.empty()) {
    if (node.opType() == "Unsqueeze") return up.refuse(node, "attribute axes is empty");
    node.removeAttribute("axes");
    return Status::ok();
  }
  intsAttributeToInput(node, up, "axes", 1);
  return Status::ok();
}

// Softmax/LogSoftmax/Hardmax -> 13. Before, the op worked on the input flattened to 2-D at
// `axis` (default 1); from 13 along `axis` only (default -1). Where the dims after axis are all
// 1 (or axis is the last) the two agree and axis is only made explicit; elsewhere the old
// meaning is written out: Reshape(op(Flatten(x, axis), axis=1), Shape(x)).
Status softmaxAlongOneAxis(ir::Node& node, Upgrade& up) {
  int64_t axis = node.attrInt("axis", 1);
  ir::Value* x = node.input(0);
  if (axis == -1) return Status::ok();  // the last axis: the same either way, whatever the rank
  if (x->type().shape) {
    const auto& dims = *x->type().shape;
    int64_t rank = static_cast<int64_t>(dims.size());
    int64_t a = axis < 0 ? axis + rank : axis;
    bool onlyOnes = true;
    for (int64_t d = a + 1; d < rank; ++d) onlyOnes = onlyOnes && dims[d].isKnown() && dims[d].value == 1;
    if (onlyOnes) {
      node.setAttribute(ir::Attribute::makeInt("axis", axis));
      return Status::ok();
    }
  }
  std::string base = baseName(node);
  ir::Value* out = node.output(0);
  ir::Node* flat = up.addNode("Flatten", {x}, {x->name() + "_2d"}, base + "_flatten", &node);
  flat->setAttribute(ir::Attribute::makeInt("axis", axis));
  flat->output(0)->mutableType().dtype = x->dtype();
  ir::Node* shape = up.addNode("Shape", {x}, {x->name() + "_shape"}, base + "_shape", &node);
  shape->output(0)->mutableType().dtype = ir::DataType::kInt64;
  ir::Node* op = up.addNode(node.opType(), {flat->output(0)}, {out->name() + "_2d"}, base + "_2d", &node);
  op->setAttribute(ir::Attribute::makeInt("axis", 1));
  op->output(0)->mutableType().dtype = x->dtype();
  ir::Node* back = up.addNode("Reshape", {op->output(0), shape->output(0)}, {out->name() + "_nd"}, base + "_reshape", &node);
  back->output(0)->mutableType() = out->type();
  up.replaceOutput(node, back->output(0));
  return Status::ok();
}

// BatchNormalization-7 -> 9: spatial is gone (always 1). spatial = 0 normalized with
// statistics of shape [C, D1, ...] per element; it is written out, in the input's type:
//   a = scale / Sqrt(var + epsilon), b = B - mean * a, Y = X * a + b
// (the parameters broadcast against X = [N, C, D1, ...] from the right).
Status batchNormalizationSpatial(ir::Node& node, Upgrade& up) {
  const ir::Attribute* spatial = node.findAttribute("spatial");
  if (spatial == nullptr || spatial->i == 1) {
    node.removeAttribute("spatial");
    return Status::ok();
  }
  for (size_t i = 1; i < node.numOutputs(); ++i) {
    if (node.output(i) != nullptr && (node.output(i)->hasUses() || node.output(i)->isGraphOutput())) {
      return up.refuse(node, "spatial = 0 with its training outputs read");
    }
  }
  WH_ASSIGN_OR_RETURN(ir::DataType t, floatTypeOf(node, up));
  std::string base = baseName(node);
  auto add = [&](const std::string& op, std::vector<ir::Value*> in, const std::string& suffix) {
    ir::Node* n = up.addNode(op, in, {base + suffix}, base + suffix, &node);
    n->output(0)->mutableType().dtype = t;
    return n->output(0);
  };
  ir::Value* eps = up.scalar(base + "_epsilon", t, node.attrFloat("epsilon", 1e-5f));
  ir::Value* stdDev = add("Sqrt", {add("Add", {node.input(4), eps}, "_var_eps")}, "_std");
  ir::Value* a = add("Div", {node.input(1), stdDev}, "_a");
  ir::Value* b = add("Sub", {node.input(2), add("Mul", {node.input(3), a}, "_mean_a")}, "_b");
  ir::Value* y = add("Add", {add("Mul", {node.input(0), a}, "_xa"), b}, "_y");
  y->mutableType() = node.output(0)->type();
  up.replaceOutput(node, y);  // the unread training outputs go with the node
  return Status::ok();
}

// BatchNormalization-9 -> 14: the optional outputs 2-5 (mean, var, saved_mean, saved_var)
// became running_mean and running_var, allowed only with training_mode = 1. Unread ones are
// dropped; read ones mean the model trains, which whittle does not convert.
Status batchNormalizationTrainingOutputs(ir::Node& node, Upgrade& up) {
  if (node.numOutputs() <= 1) return Status::ok();
  for (size_t i = 1; i < node.numOutputs(); ++i) {
    if (node.output(i) != nullptr && (node.output(i)->hasUses() || node.output(i)->isGraphOutput())) {
      return up.refuse(node, "its training output '" + node.output(i)->name() +
                                 "' is read; from opset 14 those outputs exist only with training_mode = 1");
    }
  }
  up.replace(node, "BatchNormalization", node.inputs(), 1);
  return Status::ok();
}

// Scatter-9 -> ScatterElements-11 (Scatter is deprecated from 11; same inputs and axis).
Status scatterToScatterElements(ir::Node& node, Upgrade& up) {
  up.replace(node, "ScatterElements", node.inputs(), 1);
  return Status::ok();
}

// RoiAlign-10 -> 16: coordinate_transformation_mode appeared with default half_pixel; opset 10
// behaves as output_half_pixel.
Status roiAlignOutputHalfPixel(ir::Node& node, Upgrade& up) {
  (void)up;
  if (!node.hasAttribute("coordinate_transformation_mode")) {
    node.setAttribute(ir::Attribute::makeString("coordinate_transformation_mode", "output_half_pixel"));
  }
  return Status::ok();
}

// GridSample-16 -> 20: modes bilinear and bicubic are called linear and cubic.
Status gridSampleModeNames(ir::Node& node, Upgrade& up) {
  (void)up;
  std::string mode = node.attrString("mode", "bilinear");
  if (mode == "bilinear") node.setAttribute(ir::Attribute::makeString("mode", "linear"));
  if (mode == "bicubic") node.setAttribute(ir::Attribute::makeString("mode", "cubic"));
  return Status::ok();
}

// GroupNormalization-18 -> 21: scale and bias have one value per channel instead of one per
// group. Constant ones are repeated C / G times each.
Status groupNormalizationPerChannel(ir::Node& node, Upgrade& up) {
  int64_t groups = node.attrInt("num_groups", 0);
  const ir::Tensor* scale = ir::constantOf(node.input(1));
  const ir::Tensor* bias = ir::constantOf(node.input(2));
  const auto& shape = node.input(0)->type().shape;
  if (scale == nullptr || bias == nullptr || !shape || shape->size() < 2 || !(*shape)[1].isKnown() || groups <= 0) {
    return up.refuse(node, "scale and bias went from per group to per channel, which needs them constant and the "
                           "channel count known");
  }
  int64_t channels = (*shape)[1].value;
  if (channels % groups != 0 || scale->numel() != groups || bias->numel() != groups) {
    return up.refuse(node, "channels " + std::to_string(channels) + " are not num_groups " + std::to_string(groups) +
                               " groups of scale/bias values");
  }
  auto repeat = [&](const ir::Tensor& t, const std::string& suffix) {
    std::vector<double> g = ir::toDoubles(t), c;
    for (int64_t i = 0; i < channels; ++i) c.push_back(g[i / (channels / groups)]);
    return up.graph().addInitializer(up.graph().uniqueValueName(baseName(node) + suffix),
                                     ir::fromDoubles(t.dtype(), {channels}, c));
  };
  node.setInput(1, repeat(*scale, "_scale_per_channel"));
  node.setInput(2, repeat(*bias, "_bias_per_channel"));
  return Status::ok();
}

// DFT-17 -> 20: axis (attribute, default 1) is an optional scalar input whose default is -2,
// so it is always given.
Status dftAxisToInput(ir::Node& node, Upgrade& up) {
  int64_t axis = node.attrInt("axis", 1);
  node.removeAttribute("axis");
  node.setInput(2, up.int64s(baseName(node) + "_axis", {axis}, /*scalar=*/true));
  return Status::ok();
}

}  // namespace whittle::passes::opset
