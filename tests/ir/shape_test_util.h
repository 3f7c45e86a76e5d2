#pragma once
// Helpers for the shape inference tests: types written as "float32[batch,3,?,4]" ("?" an
// unknown dim, "float32[*]" an unknown rank), and dims written as Dim lists.

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "support/graph_builder.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/shape_inference.h"

namespace whittle::testing {

/// "float32[batch,3,?,4]"; "float32[*]" when the rank is unknown.
inline std::string typeText(const ir::ValueType& t) {
  std::string s(ir::dataTypeName(t.dtype));
  if (!t.shape) return s + "[*]";
  s += "[";
  for (size_t i = 0; i < t.shape->size(); ++i) {
    const ir::Dim& d = (*t.shape)[i];
    if (i > 0) s += ",";
    s += d.isKnown() ? std::to_string(d.value) : d.param.empty() ? "?" : d.param;
  }
  return s + "]";
}

inline std::string typeOf(const ir::Value* v) {
  return typeText(v->type());
}

/// Dims from a mixed list: numbers are known dims, names symbolic ones, "?" unknown.
inline std::vector<ir::Dim> dims(std::initializer_list<std::string> spec) {
  std::vector<ir::Dim> out;
  for (const std::string& s : spec) {
    if (s == "?") {
      out.push_back(ir::Dim{});
    } else if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) != 0)) {
      out.push_back(ir::Dim::known(std::stoll(s)));
    } else {
      out.push_back(ir::Dim::symbolic(s));
    }
  }
  return out;
}

inline ir::Attribute ints(const std::string& name, std::vector<int64_t> v) {
  return ir::Attribute::makeInts(name, std::move(v));
}

inline ir::Attribute intAttr(const std::string& name, int64_t v) {
  return ir::Attribute::makeInt(name, v);
}

inline ir::Attribute stringAttr(const std::string& name, std::string v) {
  return ir::Attribute::makeString(name, std::move(v));
}

/// Builds the model at `opset` and runs the IR's shape inference on it.
inline ir::ShapeInferenceResult buildAndInfer(GraphBuilder& b, ir::Model& model, int64_t opset) {
  model = b.build(opset);
  return ir::inferShapes(model);
}

}  // namespace whittle::testing
