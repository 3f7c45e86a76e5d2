// The string ops: StringConcat (broadcasting), StringSplit (Python's str.split), StringNormalizer
// (stop words and case) and RegexFullMatch (std::regex, ECMAScript grammar).
//
// Case changes and case-insensitive matching cover ASCII letters; StringNormalizer refuses a
// string with other bytes when it has to change or fold case (ONNX Runtime converts through
// the `locale`, which whittle does not carry), rather than leave such letters unchanged.
// RegexFullMatch compiles `pattern` once, when the session is created: a pattern std::regex
// cannot read (RE2-only syntax such as `(?P<name>...)` or `\pL`) is an error naming the node.
#include <regex>

#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {
namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

Status requireStrings(const KernelContext& ctx, const ir::Tensor& t, const std::string& what) {
  if (t.dtype() != ir::DataType::kString) {
    return ctx.error(what + " must be a string tensor, got " + std::string(ir::dataTypeName(t.dtype())));
  }
  return Status::ok();
}

bool isAscii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::string asciiCase(std::string s, bool upper) {
  for (char& c : s) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// ---- StringConcat ----

KernelPtr makeStringConcat(const KernelCreateInfo&) {
  return makeFunctionKernel([](KernelContext& ctx) -> Status {
    const ir::Tensor& a = ctx.input(0);
    const ir::Tensor& b = ctx.input(1);
    WH_RETURN_IF_ERROR(requireStrings(ctx, a, "X"));
    WH_RETURN_IF_ERROR(requireStrings(ctx, b, "Y"));
    auto dims = broadcastShapes(a.dims(), b.dims());
    if (!dims)
      return ctx.error("shapes " + shapeToString(a.dims()) + " and " + shapeToString(b.dims()) + " do not broadcast");
    std::vector<int64_t> sa = broadcastStrides(a.dims(), *dims), sb = broadcastStrides(b.dims(), *dims);
    int64_t n = 1;
    for (int64_t d : *dims) n *= d;
    std::vector<std::string> out(static_cast<size_t>(n));
    std::vector<int64_t> index(dims->size(), 0);
    for (int64_t i = 0; i < n; ++i) {
      int64_t oa = 0, ob = 0, rest = i;
      for (size_t d = dims->size(); d-- > 0;) {
        int64_t k = rest % (*dims)[d];
        rest /= (*dims)[d];
        oa += k * sa[d];
        ob += k * sb[d];
      }
      out[static_cast<size_t>(i)] =
          a.stringValues()[static_cast<size_t>(oa)] + b.stringValues()[static_cast<size_t>(ob)];
    }
    ctx.setOutput(0, ir::Tensor::strings(*dims, std::move(out)));
    return Status::ok();
  });
}

// ---- StringSplit ----

/// Python's s.split(delimiter, maxsplit) (maxsplit < 0: no limit); an empty delimiter is
/// str.split() on runs of whitespace, which drops leading and trailing whitespace. Two edge
/// cases follow ONNX Runtime 1.32 where it differs from Python (and the ONNX reference): an
/// empty string has no substrings with a delimiter too (Python: ['']), and the remainder after
/// maxsplit whitespace splits loses its trailing whitespace (Python keeps it).
std::vector<std::string> splitString(const std::string& s, const std::string& delimiter, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (s.empty()) return parts;
  if (!delimiter.empty()) {
    size_t begin = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      size_t at = s.find(delimiter, begin);
      if (at == std::string::npos) break;
      parts.push_back(s.substr(begin, at - begin));
      begin = at + delimiter.size();
    }
    parts.push_back(s.substr(begin));
    return parts;
  }
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  size_t i = 0;
  while (true) {
    while (i < s.size() && space(s[i])) ++i;
    if (i == s.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      size_t end = s.size();
      while (end > i && space(s[end - 1])) --end;
      parts.push_back(s.substr(i, end - i));
      break;
    }
    size_t end = i;
    while (end < s.size() && !space(s[end])) ++end;
    parts.push_back(s.substr(i, end - i));
    i = end;
  }
  return parts;
}

KernelPtr makeStringSplit(const KernelCreateInfo& info) {
  std::string delimiter = info.node.attrString("delimiter", "");
  int64_t maxsplit = info.node.hasAttribute("maxsplit") ? info.node.attrInt("maxsplit", -1) : -1;
  if (info.node.hasAttribute("maxsplit") && maxsplit < 0) {
    return info.error("maxsplit must not be negative, got " + std::to_string(maxsplit));
  }
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireStrings(ctx, x, "X"));
    std::vector<std::vector<std::string>> split;
    split.reserve(x.stringValues().size());
    size_t widest = 0;
    for (const std::string& s : x.stringValues()) {
      split.push_back(splitString(s, delimiter, maxsplit));
      widest = std::max(widest, split.back().size());
    }
    std::vector<int64_t> dims = x.dims();
    dims.push_back(static_cast<int64_t>(widest));
    std::vector<std::string> out(split.size() * widest);
    for (size_t i = 0; i < split.size(); ++i) {
      for (size_t j = 0; j < split[i].size(); ++j) out[i * widest + j] = std::move(split[i][j]);
    }
    ctx.setOutput(0, ir::Tensor::strings(dims, std::move(out)));
    if (ctx.hasOutput(1)) {
      ir::Tensor& counts = ctx.allocateOutput(1, ir::DataType::kInt64, x.dims());
      auto* c = counts.mutableData<int64_t>();
      for (size_t i = 0; i < split.size(); ++i) c[i] = static_cast<int64_t>(split[i].size());
    }
    return Status::ok();
  });
}

// ---- StringNormalizer ----

KernelPtr makeStringNormalizer(const KernelCreateInfo& info) {
  std::string action = info.node.attrString("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER") {
    return info.error("case_change_action must be NONE, LOWER or UPPER, got '" + action + "'");
  }
  bool caseSensitive = info.node.attrInt("is_case_sensitive", 0) != 0;
  std::vector<std::string> stopwords;
  if (const ir::Attribute* a = info.node.findAttribute("stopwords")) stopwords = a->strings;
  if (!caseSensitive) {
    for (const std::string& w : stopwords) {
      if (!isAscii(w)) return info.unsupported("case-insensitive stop word '" + w + "' is not ASCII");
    }
    for (std::string& w : stopwords) w = asciiCase(w, /*upper=*/false);
  }
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireStrings(ctx, x, "X"));
    if (!(x.rank() == 1 || (x.rank() == 2 && x.dims()[0] == 1))) {
      return ctx.error("X must be [C] or [1, C], got " + shapeToString(x.dims()));
    }
    std::vector<std::string> kept;
    for (const std::string& s : x.stringValues()) {
      if ((action != "NONE" || !caseSensitive) && !isAscii(s)) {
        return ctx.unsupported("case change of the non-ASCII string '" + s + "' is not supported");
      }
      std::string key = caseSensitive ? s : asciiCase(s, /*upper=*/false);
      if (std::find(stopwords.begin(), stopwords.end(), key) != stopwords.end()) continue;
      kept.push_back(action == "NONE" ? s : asciiCase(s, action == "UPPER"));
    }
    // Everything removed: one empty string (as ONNX Runtime and the ONNX reference give).
    if (kept.empty()) kept.emplace_back();
    std::vector<int64_t> dims = x.rank() == 1 ? std::vector<int64_t>{static_cast<int64_t>(kept.size())}
                                              : std::vector<int64_t>{1, static_cast<int64_t>(kept.size())};
    ctx.setOutput(0, ir::Tensor::strings(dims, std::move(kept)));
    return Status::ok();
  });
}

// ---- RegexFullMatch ----

KernelPtr makeRegexFullMatch(const KernelCreateInfo& info) {
  if (!info.node.hasAttribute("pattern")) return info.error("attribute 'pattern' is required");
  std::string pattern = info.node.attrString("pattern", "");
  std::shared_ptr<const std::regex> re;
  try {
    re = std::make_shared<const std::regex>(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return info.unsupported("pattern '" + pattern + "' is not a regular expression std::regex reads: " + e.what());
  }
  return makeFunctionKernel([re](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireStrings(ctx, x, "X"));
    ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kBool, x.dims());
    auto* out = y.mutableData<uint8_t>();
    for (size_t i = 0; i < x.stringValues().size(); ++i) out[i] = std::regex_match(x.stringValues()[i], *re) ? 1 : 0;
    return Status::ok();
  });
}

}  // namespace

void registerStringKernels(KernelRegistry& r) {
  r.add("", "StringConcat", 20, makeStringConcat);
  r.add("", "StringSplit", 20, makeStringSplit);
  r.add("", "StringNormalizer", 10, makeStringNormalizer);
  r.add("", "RegexFullMatch", 20, makeRegexFullMatch);
}

}  // namespace whittle::runtime::cpu
