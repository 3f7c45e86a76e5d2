// Typed pass options (include/whittle/passes/options.h): the one parser and validator.
#include "whittle/passes/options.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "whittle/passes/registry.h"

namespace whittle::passes {

std::string formatOptionNumber(double v) {
  char text[64];
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {  // whole numbers without an exponent: 50, not 5e+01
    std::snprintf(text, sizeof(text), "%.0f", v);
    return text;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, v);
    if (std::strtod(text, nullptr) == v) break;
  }
  return text;
}

bool OptionRange::contains(double v) const {
  if (min && (minExclusive ? !(v > *min) : !(v >= *min))) return false;
  if (max && (maxExclusive ? !(v < *max) : !(v <= *max))) return false;
  return true;
}

std::string OptionRange::text() const {
  if (min && max) {
    return "in " + std::string(minExclusive ? "(" : "[") + formatOptionNumber(*min) + ", " + formatOptionNumber(*max) +
           (maxExclusive ? ")" : "]");
  }
  if (min) return (minExclusive ? "> " : ">= ") + formatOptionNumber(*min);
  if (max) return (maxExclusive ? "< " : "<= ") + formatOptionNumber(*max);
  return "";
}

std::string OptionSpec::typeText() const {
  switch (type) {
    case OptionType::kBool:
      return "bool";
    case OptionType::kInt:
      return range.bounded() ? "int " + range.text() : "int";
    case OptionType::kFloat:
      return range.bounded() ? "float " + range.text() : "float";
    case OptionType::kEnum: {
      std::string words;
      for (const std::string& w : allowed) words += (words.empty() ? "" : "|") + w;
      return words;
    }
    case OptionType::kList:
      return "list";
    case OptionType::kString:
      return "string";
  }
  return "string";
}

std::string PassOptions::getString(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

namespace {

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> items;
  std::string current;
  auto flush = [&] {
    const size_t first = current.find_first_not_of(" \t");
    if (first != std::string::npos) items.push_back(current.substr(first, current.find_last_not_of(" \t") - first + 1));
    current.clear();
  };
  for (char c : text) {
    if (c == ';' || c == ':') {
      flush();
    } else {
      current += c;
    }
  }
  flush();
  return items;
}

}  // namespace

std::vector<std::string> PassOptions::getList(const std::string& name, const std::string& fallback) const {
  return splitList(getString(name, fallback));
}

Expected<OptionValue> parseOptionValue(std::string_view pass, const OptionSpec& spec, const std::string& text) {
  auto bad = [&](const std::string& expected) {
    return invalidInput(std::string(pass) + (pass.empty() ? "" : ": ") + "option '" + spec.name + "' must be " +
                        expected + "; got '" + text + "'");
  };
  switch (spec.type) {
    case OptionType::kBool:
      if (text == "true" || text == "1" || text == "yes" || text == "on") return OptionValue(true);
      if (text == "false" || text == "0" || text == "no" || text == "off") return OptionValue(false);
      return bad("true or false");
    case OptionType::kInt: {
      char* end = nullptr;
      errno = 0;
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE) return bad(spec.range.bounded() ? "an integer " + spec.range.text() : "an integer");
      if (!spec.range.contains(static_cast<double>(v))) return bad(spec.range.text());
      return OptionValue(static_cast<int64_t>(v));
    }
    case OptionType::kFloat: {
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(v)) {
        return bad(spec.range.bounded() ? "a number " + spec.range.text() : "a finite number");
      }
      if (!spec.range.contains(v)) return bad(spec.range.text());
      return OptionValue(v);
    }
    case OptionType::kEnum: {
      for (const std::string& w : spec.allowed) {
        if (w == text) return OptionValue(text);
      }
      std::string words;
      for (const std::string& w : spec.allowed) words += (words.empty() ? "" : ", ") + w;
      return bad("one of " + words);
    }
    case OptionType::kList:
      return OptionValue(splitList(text));
    case OptionType::kString:
      return OptionValue(text);
  }
  return bad("a value");
}

Expected<std::vector<OptionValue>> parseOptions(std::string_view pass, const std::vector<OptionSpec>& specs,
                                                const PassOptions& given) {
  const std::string prefix = pass.empty() ? "" : std::string(pass) + ": ";
  std::vector<std::string> known;
  for (const OptionSpec& s : specs) known.push_back(s.name);
  for (const auto& [key, value] : given.values()) {
    bool declared = false;
    for (const std::string& k : known) declared = declared || k == key;
    if (declared) continue;
    std::string hint = nearestName(key, known);
    std::string list;
    for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
    return invalidInput(prefix + "no option '" + key + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?") +
                        (list.empty() ? " (it takes no options)" : " (options: " + list + ")"));
  }
  std::vector<OptionValue> values;
  values.reserve(specs.size());
  for (const OptionSpec& s : specs) {
    const bool set = given.has(s.name);
    auto value = parseOptionValue(pass, s, set ? given.values().at(s.name) : s.defaultValue);
    if (!value.isOk()) {
      if (set) return value.status();
      return internalError(prefix + "the declared default of option '" + s.name + "' does not parse: " +
                           value.status().message());
    }
    values.push_back(std::move(value).value());
  }
  return values;
}

}  // namespace whittle::passes
