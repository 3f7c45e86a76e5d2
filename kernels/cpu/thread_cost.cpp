#include "cpu/thread_cost.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

namespace whittle::runtime::cpu {
namespace {

std::optional<std::vector<int64_t>> dimsOf(const ir::Value* v) {
  if (v == nullptr) return std::nullopt;
  return v->type().staticDims();
}

int64_t product(const std::vector<int64_t>& dims, size_t from = 0) {
  int64_t n = 1;
  for (size_t i = from; i < dims.size(); ++i) n *= dims[i];
  return n;
}

/// The input holding the weights of a convolution-like op, or -1 when `op` is not one.
int convWeightInput(std::string_view op) {
  if (op == "Conv" || op == "FusedConv" || op == "ConvInteger" || op == "ConvTranspose") return 1;
  if (op == "QLinearConv") return 3;
  return -1;
}

bool isMatrixProduct(std::string_view op) {
  return op == "MatMul" || op == "Gemm" || op == "FusedMatMul" || op == "QLinearMatMul" || op == "MatMulInteger" ||
         op == "QGemm";
}

}  // namespace

NodeWork estimateWork(const ir::Node& node) {
  NodeWork work;
  const std::string_view op = node.opType();
  if (const int wi = convWeightInput(op); wi >= 0) {
    auto w = dimsOf(node.numInputs() > static_cast<size_t>(wi) ? node.input(static_cast<size_t>(wi)) : nullptr);
    auto x = dimsOf(node.numInputs() > 0 ? node.input(0) : nullptr);
    auto y = dimsOf(node.numOutputs() > 0 ? node.output(0) : nullptr);
    if (!w || !x || !y || w->size() < 3) return work;
    work.known = true;
    // Each output element of a convolution takes W[1] x kernel multiply-adds; each input
    // element of a transposed one scatters as many.
    work.macs = (op == "ConvTranspose" ? product(*x) : product(*y)) * product(*w, 1);
    return work;
  }
  if (isMatrixProduct(op)) {
    auto a = dimsOf(node.numInputs() > 0 ? node.input(0) : nullptr);
    auto y = dimsOf(node.numOutputs() > 0 ? node.output(0) : nullptr);
    if (!a || !y || a->empty()) return work;
    int64_t k = a->back();
    if (op == "Gemm" && a->size() == 2) {
      const ir::Attribute* transA = node.findAttribute("transA");
      if (transA != nullptr && transA->i != 0) k = (*a)[0];
    }
    work.known = true;
    work.macs = product(*y) * k;
    return work;
  }
  // Everything else is bounded by the memory it moves: the values it reads (constants are
  // cached across runs) and writes.
  auto addBytes = [&](const ir::Value* v) {
    if (v == nullptr || v->isInitializer()) return true;
    auto dims = dimsOf(v);
    if (!dims) return false;
    work.bytes += static_cast<int64_t>(ir::storageBytes(v->dtype(), product(*dims)));
    return true;
  };
  for (const ir::Value* in : node.inputs()) {
    if (!addBytes(in)) return work;
  }
  for (const ir::Value* out : node.outputs()) {
    if (!addBytes(out)) return work;
  }
  work.known = true;
  return work;
}

int threadsForWork(const NodeWork& work, int threads) {
  if (!work.known || threads <= 1) return threads;
  const int64_t fills = work.macs > 0 ? work.macs / kMinMacsPerThread : work.bytes / kMinBytesPerThread;
  return static_cast<int>(std::clamp<int64_t>(fills, 1, threads));
}

}  // namespace whittle::runtime::cpu
