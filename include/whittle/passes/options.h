#pragma once
// Typed pass options, declared once (after MLIR's Option<T>). A pass's options are a plain
// struct of typed fields; one OptionList beside it declares, for each field, the option's
// name, type, default, help and the values it admits (a range, or a set of words). From that
// one declaration come the parser and validator (parseOptions: one place, one-line errors
// that name the pass, the option and the value), the default values the struct starts from,
// and what `whittle optimize --list-passes` prints. Pipeline text and recipes carry options
// as text (PassOptions); the typed struct is what a pass factory receives.
//
//   struct PruneNmOptions {
//     int64_t n = 0;
//     int64_t m = 0;
//     static const OptionList<PruneNmOptions>& declare() {
//       static const auto list = OptionList<PruneNmOptions>()
//           .integer(&PruneNmOptions::n, "n", 2, "nonzero weights kept in every group", OptionRange::atLeast(0))
//           .integer(&PruneNmOptions::m, "m", 4, "group size along the reduction axis", OptionRange::atLeast(1));
//       return list;
//     }
//   };

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "whittle/common/status.h"

namespace whittle::passes {

/// The type of a pass option's value.
enum class OptionType {
  kBool,    ///< true/false (also 1/0, yes/no, on/off)
  kInt,     ///< a decimal integer
  kFloat,   ///< a finite number
  kString,  ///< any text (a path)
  kEnum,    ///< one of a fixed set of words
  kList,    ///< items separated by ';' or ':' (',' separates options in pipeline text)
};

/// The numbers an int or float option admits: an optional lower and upper bound, each
/// inclusive or exclusive.
struct OptionRange {
  std::optional<double> min;
  std::optional<double> max;
  bool minExclusive = false;
  bool maxExclusive = false;

  static OptionRange atLeast(double lo) { return {lo, std::nullopt, false, false}; }
  static OptionRange above(double lo) { return {lo, std::nullopt, true, false}; }
  /// [lo, hi]
  static OptionRange closed(double lo, double hi) { return {lo, hi, false, false}; }
  /// [lo, hi)
  static OptionRange closedOpen(double lo, double hi) { return {lo, hi, false, true}; }
  /// (lo, hi]
  static OptionRange openClosed(double lo, double hi) { return {lo, hi, true, false}; }

  bool bounded() const { return min.has_value() || max.has_value(); }
  bool contains(double v) const;
  /// ">= 0", "> 0", "in [0, 1)", "<= 8"; empty when unbounded.
  std::string text() const;
};

/// One declared option of a pass.
struct OptionSpec {
  std::string name;
  /// The default, as pipeline text writes it ("true", "4096", "Resize;TopK").
  std::string defaultValue;
  std::string help;
  OptionType type = OptionType::kString;
  /// kEnum: the words it admits, the first-listed order kept for messages.
  std::vector<std::string> allowed;
  /// kInt, kFloat: the numbers it admits.
  OptionRange range;

  /// The type as `--list-passes` shows it: "bool", "int >= 0", "float in [0, 1]",
  /// "minmax|percentile|entropy|mse", "list", "string".
  std::string typeText() const;
};

/// The typed value of one option.
using OptionValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>>;

/// The options given to a pass as text (from pipeline text or a recipe), before parsing.
class PassOptions {
 public:
  PassOptions() = default;
  explicit PassOptions(std::map<std::string, std::string> values) : values_(std::move(values)) {}

  bool has(const std::string& name) const { return values_.contains(name); }
  /// The option's text, or `fallback`.
  std::string getString(const std::string& name, const std::string& fallback) const;
  /// A list option: items separated by ';' or ':' (the pipeline text uses ',' between options),
  /// surrounding spaces trimmed, empty items dropped; `fallback` when the option is absent.
  std::vector<std::string> getList(const std::string& name, const std::string& fallback = "") const;
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

/// Parses one option's text as `spec` declares it. The error is one line naming the pass,
/// the option and the value: "quantize-int8: option 'method' must be one of minmax,
/// percentile, entropy, mse; got 'foo'".
Expected<OptionValue> parseOptionValue(std::string_view pass, const OptionSpec& spec, const std::string& text);

/// Parses and checks `given` against `specs`, the one place options are validated: an option
/// that `specs` does not declare is an error suggesting the nearest name; every value must
/// parse as its declared type and lie in its range or set. Returns one value per spec, in
/// spec order, the declared default where `given` has none.
Expected<std::vector<OptionValue>> parseOptions(std::string_view pass, const std::vector<OptionSpec>& specs,
                                                const PassOptions& given);

/// The declaration of a pass's options struct S: one call per field, in the order
/// `--list-passes` shows them. A default is written once, here, typed.
template <typename S>
class OptionList {
 public:
  OptionList& flag(bool S::*field, std::string name, bool defaultValue, std::string help) {
    return add(field, {std::move(name), defaultValue ? "true" : "false", std::move(help), OptionType::kBool, {}, {}});
  }
  OptionList& integer(int64_t S::*field, std::string name, int64_t defaultValue, std::string help,
                      OptionRange range = {}) {
    return add(field, {std::move(name), std::to_string(defaultValue), std::move(help), OptionType::kInt, {}, range});
  }
  OptionList& real(double S::*field, std::string name, double defaultValue, std::string help, OptionRange range = {}) {
    return add(field, {std::move(name), formatNumber(defaultValue), std::move(help), OptionType::kFloat, {}, range});
  }
  OptionList& text(std::string S::*field, std::string name, std::string defaultValue, std::string help) {
    return add(field, {std::move(name), std::move(defaultValue), std::move(help), OptionType::kString, {}, {}});
  }
  OptionList& oneOf(std::string S::*field, std::string name, std::string defaultValue, std::vector<std::string> allowed,
                    std::string help) {
    return add(field, {std::move(name), std::move(defaultValue), std::move(help), OptionType::kEnum, std::move(allowed), {}});
  }
  OptionList& list(std::vector<std::string> S::*field, std::string name, const std::vector<std::string>& defaultValue,
                   std::string help) {
    std::string joined;
    for (const std::string& item : defaultValue) joined += (joined.empty() ? "" : ";") + item;
    return add(field, {std::move(name), std::move(joined), std::move(help), OptionType::kList, {}, {}});
  }

  const std::vector<OptionSpec>& specs() const { return specs_; }

  /// The struct with every option's declared default.
  S defaults() const {
    auto parsed = parse("", PassOptions());
    WH_CHECK(parsed.isOk(), "a declared default does not parse: " + parsed.status().message());
    return std::move(parsed).value();
  }

  /// `given` parsed and checked (parseOptions), as the typed struct.
  Expected<S> parse(std::string_view pass, const PassOptions& given) const {
    WH_ASSIGN_OR_RETURN(std::vector<OptionValue> values, parseOptions(pass, specs_, given));
    S options{};
    for (size_t i = 0; i < values.size(); ++i) setters_[i](options, values[i]);
    return options;
  }

 private:
  template <typename T>
  OptionList& add(T S::*field, OptionSpec spec) {
    specs_.push_back(std::move(spec));
    setters_.push_back([field](S& s, const OptionValue& v) { s.*field = std::get<T>(v); });
    return *this;
  }
  static std::string formatNumber(double v);

  std::vector<OptionSpec> specs_;
  std::vector<std::function<void(S&, const OptionValue&)>> setters_;
};

/// The shortest text that reads back as `v` ("0.5", "99.99", "1e-05").
std::string formatOptionNumber(double v);

template <typename S>
std::string OptionList<S>::formatNumber(double v) {
  return formatOptionNumber(v);
}

/// The options struct of a pass that takes none.
struct NoOptions {
  static const OptionList<NoOptions>& declare() {
    static const OptionList<NoOptions> list;
    return list;
  }
};

}  // namespace whittle::passes
