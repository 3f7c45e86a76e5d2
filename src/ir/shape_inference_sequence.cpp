// Shape rules for the sequence and optional ops. Inference tracks tensors only: a sequence,
// map or optional output stays unknown (its declared type, when the model gives one, is kept),
// and so do the tensors read out of one (SequenceAt, ConcatFromSequence, OptionalGetElement).
//   SequenceLength:     an int64 scalar.
//   OptionalHasElement: a bool scalar.
#include "shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

void notATensor(NodeContext&) {}

void sequenceLength(NodeContext& c) { c.set(0, DataType::kInt64, SymShape{}); }

void optionalHasElement(NodeContext& c) { c.set(0, DataType::kBool, SymShape{}); }

}  // namespace

void addSequenceRules(std::vector<RuleEntry>& rules) {
  for (std::string_view op : {"SequenceEmpty", "SequenceConstruct", "SequenceInsert", "SequenceErase", "SequenceAt",
                              "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement"}) {
    rules.push_back({"", op, notATensor});
  }
  rules.push_back({"", "SequenceLength", sequenceLength});
  rules.push_back({"", "OptionalHasElement", optionalHasElement});
  rules.push_back({"ai.onnx.ml", "ZipMap", notATensor});
}

}  // namespace whittle::ir::shape
