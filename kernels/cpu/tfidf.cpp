// TfIdfVectorizer: counts the n-grams of a pool in each row of tokens (int32, int64 or
// strings), n from min_gram_length to max_gram_length, an n-gram of n >= 2 taken with every
// gap of 0 to max_skip_count tokens between its items (a unigram once), and weighs the counts
// (TF: the count; IDF: weight if present; TFIDF: weight · count; a missing `weights` is 1).
// `ngram_counts[i]` is where the (i+1)-grams start in the pool; the k-th pooled n-gram (in
// pool order) counts into output column ngram_indexes[k]. Output [max(ngram_indexes) + 1], or
// [N, that] for an [N, C] input.
#include <map>

#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {
namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

enum class Weighting { kTf, kIdf, kTfIdf };

struct TfIdfConfig {
  int64_t minN = 1, maxN = 1, maxSkip = 0, outputSize = 0;
  Weighting weighting = Weighting::kTf;
  std::vector<float> weights;
  bool strings = false;
  std::map<std::vector<int64_t>, int64_t> intPool;  // n-gram -> output column
  std::map<std::vector<std::string>, int64_t> stringPool;
};

template <typename Key>
Status buildPool(const KernelCreateInfo& info, const std::vector<Key>& pool, const std::vector<int64_t>& counts,
                 const std::vector<int64_t>& indexes, std::map<std::vector<Key>, int64_t>& out) {
  size_t k = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    auto n = static_cast<int64_t>(i + 1);
    int64_t begin = counts[i];
    int64_t end = i + 1 < counts.size() ? counts[i + 1] : static_cast<int64_t>(pool.size());
    if (begin < 0 || end < begin || end > static_cast<int64_t>(pool.size()) || (end - begin) % n != 0) {
      return info.error("ngram_counts " + shapeToString(counts) + " does not split a pool of " +
                        std::to_string(pool.size()) + " items into whole n-grams");
    }
    for (int64_t at = begin; at < end; at += n, ++k) {
      if (k >= indexes.size()) return info.error("ngram_indexes has fewer entries than the pool has n-grams");
      std::vector<Key> gram(pool.begin() + at, pool.begin() + at + n);
      out.emplace(std::move(gram), indexes[k]);
    }
  }
  if (k != indexes.size()) {
    return info.error("ngram_indexes has " + std::to_string(indexes.size()) + " entries for " + std::to_string(k) +
                      " pooled n-grams");
  }
  return Status::ok();
}

template <typename Key, typename Read>
void countRow(const TfIdfConfig& c, const std::map<std::vector<Key>, int64_t>& pool, int64_t length, Read read,
              int64_t* counts) {
  std::vector<Key> gram;
  for (int64_t start = 0; start < length; ++start) {
    for (int64_t n = c.minN; n <= c.maxN; ++n) {
      int64_t skips = n == 1 ? 0 : c.maxSkip;
      for (int64_t skip = 0; skip <= skips; ++skip) {
        int64_t lastAt = start + (n - 1) * (skip + 1);
        if (lastAt >= length) break;
        gram.clear();
        for (int64_t j = 0; j < n; ++j) gram.push_back(read(start + j * (skip + 1)));
        auto it = pool.find(gram);
        if (it != pool.end()) ++counts[it->second];
      }
    }
  }
}

Status runTfIdf(KernelContext& ctx, const TfIdfConfig& c) {
  const ir::Tensor& x = ctx.input(0);
  bool isString = x.dtype() == ir::DataType::kString;
  if (isString != c.strings || (!isString && x.dtype() != ir::DataType::kInt32 && x.dtype() != ir::DataType::kInt64)) {
    return ctx.error("input dtype " + std::string(ir::dataTypeName(x.dtype())) + " does not fit a pool of " +
                     (c.strings ? "strings" : "integers"));
  }
  if (x.rank() > 2 || (x.rank() == 2 && x.dims()[0] < 1)) {
    return ctx.error("input must be [C] or [N, C] with N > 0, got " + shapeToString(x.dims()));
  }
  int64_t rows = x.rank() == 2 ? x.dims()[0] : 1;
  int64_t length = x.rank() == 0 ? 1 : x.dims().back();
  std::vector<int64_t> outDims =
      x.rank() == 2 ? std::vector<int64_t>{rows, c.outputSize} : std::vector<int64_t>{c.outputSize};
  std::vector<int64_t> counts(static_cast<size_t>(rows * c.outputSize), 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t* row = counts.data() + r * c.outputSize;
    int64_t base = r * length;
    if (isString) {
      countRow<std::string>(
          c, c.stringPool, length, [&](int64_t i) { return x.stringValues()[static_cast<size_t>(base + i)]; }, row);
    } else {
      countRow<int64_t>(
          c, c.intPool, length, [&](int64_t i) { return static_cast<int64_t>(x.valueAsDouble(base + i)); }, row);
    }
  }
  ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kFloat, outDims);
  auto* out = y.mutableData<float>();
  for (size_t i = 0; i < counts.size(); ++i) {
    auto column = static_cast<size_t>(static_cast<int64_t>(i) % c.outputSize);
    float w = c.weights.empty() ? 1.0f : c.weights[column];
    auto n = static_cast<float>(counts[i]);
    switch (c.weighting) {
      case Weighting::kTf:
        out[i] = n;
        break;
      case Weighting::kIdf:
        out[i] = counts[i] > 0 ? w : 0.0f;
        break;
      case Weighting::kTfIdf:
        out[i] = w * n;
        break;
    }
  }
  return Status::ok();
}

KernelPtr makeTfIdf(const KernelCreateInfo& info) {
  const ir::Node& node = info.node;
  auto c = std::make_shared<TfIdfConfig>();
  for (const char* required :
       {"mode", "min_gram_length", "max_gram_length", "max_skip_count", "ngram_counts", "ngram_indexes"}) {
    if (!node.hasAttribute(required)) return info.error("attribute '" + std::string(required) + "' is required");
  }
  std::string mode = node.attrString("mode", "");
  if (mode == "TF") {
    c->weighting = Weighting::kTf;
  } else if (mode == "IDF") {
    c->weighting = Weighting::kIdf;
  } else if (mode == "TFIDF") {
    c->weighting = Weighting::kTfIdf;
  } else {
    return info.error("mode must be TF, IDF or TFIDF, got '" + mode + "'");
  }
  c->minN = node.attrInt("min_gram_length", 1);
  c->maxN = node.attrInt("max_gram_length", 1);
  c->maxSkip = node.attrInt("max_skip_count", 0);
  if (c->minN < 1 || c->maxN < c->minN || c->maxSkip < 0) {
    return info.error("need 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0");
  }
  std::vector<int64_t> counts = node.attrInts("ngram_counts");
  std::vector<int64_t> indexes = node.attrInts("ngram_indexes");
  for (int64_t i : indexes) {
    if (i < 0) return info.error("ngram_indexes holds the negative index " + std::to_string(i));
    c->outputSize = std::max(c->outputSize, i + 1);
  }
  c->weights = node.attrFloats("weights");
  if (!c->weights.empty() && static_cast<int64_t>(c->weights.size()) < c->outputSize) {
    return info.error("weights has " + std::to_string(c->weights.size()) + " entries for " +
                      std::to_string(c->outputSize) + " output columns");
  }
  const ir::Attribute* ints = node.findAttribute("pool_int64s");
  const ir::Attribute* strings = node.findAttribute("pool_strings");
  if ((ints != nullptr) == (strings != nullptr))
    return info.error("exactly one of pool_int64s and pool_strings is required");
  c->strings = strings != nullptr;
  if (c->strings) {
    WH_RETURN_IF_ERROR(buildPool(info, strings->strings, counts, indexes, c->stringPool));
  } else {
    WH_RETURN_IF_ERROR(buildPool(info, ints->ints, counts, indexes, c->intPool));
  }
  return makeFunctionKernel([c](KernelContext& ctx) { return runTfIdf(ctx, *c); });
}

}  // namespace

void registerTfIdfKernels(KernelRegistry& r) {
  r.add("", "TfIdfVectorizer", 9, makeTfIdf);
}

}  // namespace whittle::runtime::cpu
