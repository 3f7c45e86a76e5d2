#include <algorithm>

#include "whittle/runtime/kernel.h"

namespace whittle::runtime {

std::string_view canonicalDomain(std::string_view domain) { return domain == "ai.onnx" ? std::string_view{} : domain; }

namespace {

std::string key(std::string_view domain, std::string_view opType) {
  std::string k(canonicalDomain(domain));
  k += ':';
  k += opType;
  return k;
}

class FunctionKernel final : public Kernel {
 public:
  explicit FunctionKernel(std::function<Status(KernelContext&)> fn) : fn_(std::move(fn)) {}
  Status run(KernelContext& ctx) override { return fn_(ctx); }

 private:
  std::function<Status(KernelContext&)> fn_;
};

}  // namespace

std::unique_ptr<Kernel> makeFunctionKernel(std::function<Status(KernelContext&)> fn) {
  return std::make_unique<FunctionKernel>(std::move(fn));
}

const ir::Tensor* KernelCreateInfo::constantInput(size_t i) const {
  const ir::Value* v = node.input(i);
  return v != nullptr ? v->constant() : nullptr;
}

void KernelRegistry::add(std::string domain, std::string opType, int64_t sinceVersion, KernelFactory factory) {
  auto& list = entries_[key(domain, opType)];
  list.push_back({sinceVersion, std::move(factory)});
  std::sort(list.begin(), list.end(), [](const Entry& a, const Entry& b) { return a.sinceVersion < b.sinceVersion; });
}

const KernelFactory* KernelRegistry::find(std::string_view domain, std::string_view opType, int64_t opset) const {
  auto it = entries_.find(key(domain, opType));
  if (it == entries_.end()) return nullptr;
  const KernelFactory* best = nullptr;
  for (const Entry& e : it->second) {
    if (e.sinceVersion <= opset || best == nullptr) best = &e.factory;
  }
  return best;
}

bool KernelRegistry::has(std::string_view domain, std::string_view opType) const {
  return entries_.contains(key(domain, opType));
}

void KernelRegistry::markTakesValues(std::string_view domain, std::string_view opType) {
  takesValues_.insert(key(domain, opType));
}

bool KernelRegistry::takesValues(std::string_view domain, std::string_view opType) const {
  return takesValues_.contains(key(domain, opType));
}

std::vector<std::string> KernelRegistry::opNames() const {
  std::vector<std::string> names;
  for (const auto& [k, _] : entries_) names.push_back(k);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace whittle::runtime
