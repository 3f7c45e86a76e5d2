#include "whittle/passes/registry.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "pass_factories.h"
#include "whittle/common/file_util.h"

namespace whittle::passes {

const std::vector<PassInfo>& allPasses() {
  static const std::vector<PassInfo> passes = {
// Each entry's factory parses the text options into the pass's struct, then makes the pass.
#define WH_PASS(factory, Options, name, level, description)                                     \
  PassInfo{name, description, Options::declare().specs(),                                       \
           +[](const PassOptions& given) -> Expected<std::unique_ptr<Pass>> {                   \
             WH_ASSIGN_OR_RETURN(Options typed, Options::declare().parse(name, given));        \
             return factory(typed);                                                             \
           },                                                                                   \
           level},
#include "passes.def"
#undef WH_PASS
  };
  return passes;
}

const OptionSpec* PassInfo::option(std::string_view optionName) const {
  for (const OptionSpec& o : options) {
    if (o.name == optionName) return &o;
  }
  return nullptr;
}

const OptionSpec& passOption(std::string_view pass, std::string_view option) {
  const PassInfo* info = findPass(pass);
  WH_CHECK(info != nullptr, "no pass " + std::string(pass));
  const OptionSpec* spec = info->option(option);
  WH_CHECK(spec != nullptr, "pass " + std::string(pass) + " declares no option " + std::string(option));
  return *spec;
}

const PassInfo* findPass(std::string_view name) {
  for (const PassInfo& p : allPasses()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

namespace {

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> passNames() {
  std::vector<std::string> names;
  for (const PassInfo& p : allPasses()) names.push_back(p.name);
  return names;
}

Expected<PipelineEntry> makeEntry(const std::string& name, std::map<std::string, std::string> options) {
  const PassInfo* info = findPass(name);
  if (info == nullptr) {
    std::string hint = nearestName(name, passNames());
    return invalidInput("unknown pass '" + name + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?") +
                        " (whittle optimize --list-passes lists them)");
  }
  PipelineEntry entry{info, PassOptions(std::move(options))};
  // Parses and checks the options now, not mid-pipeline; the errors name the pass already.
  WH_RETURN_IF_ERROR(parseOptions(name, info->options, entry.options).status());
  auto probe = info->factory(entry.options);  // the checks across options a factory makes
  if (!probe.isOk()) return probe.status();
  return entry;
}

}  // namespace

std::string nearestName(std::string_view name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t bestDistance = std::max<size_t>(3, name.size() / 3) + 1;
  for (const std::string& c : candidates) {
    size_t d = editDistance(name, c);
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  if (!best.empty() || name.size() < 3) return best;
  // A truncated name ("max-growth" for "max-growth-bytes"): the shortest name it begins.
  for (const std::string& c : candidates) {
    if (c.rfind(name, 0) == 0 && (best.empty() || c.size() < best.size())) best = c;
  }
  return best;
}

Expected<std::vector<PipelineEntry>> parsePipeline(std::string_view text) {
  std::vector<PipelineEntry> pipeline;
  size_t i = 0;
  while (i < text.size()) {
    size_t nameEnd = text.find_first_of(",{", i);
    std::string name = trim(text.substr(i, nameEnd == std::string_view::npos ? std::string_view::npos : nameEnd - i));
    std::map<std::string, std::string> options;
    i = nameEnd == std::string_view::npos ? text.size() : nameEnd;
    if (i < text.size() && text[i] == '{') {
      size_t close = text.find('}', i);
      if (close == std::string_view::npos) return invalidInput("pipeline: missing '}' after options of '" + name + "'");
      std::string_view body = text.substr(i + 1, close - i - 1);
      size_t j = 0;
      while (j <= body.size()) {
        size_t comma = body.find(',', j);
        std::string item = trim(body.substr(j, comma == std::string_view::npos ? std::string_view::npos : comma - j));
        if (!item.empty()) {
          size_t eq = item.find('=');
          std::string key = trim(item.substr(0, eq));
          std::string value = eq == std::string::npos ? "true" : trim(item.substr(eq + 1));
          if (key.empty()) return invalidInput("pipeline: empty option name in '" + name + "'");
          options[key] = value;
        }
        if (comma == std::string_view::npos) break;
        j = comma + 1;
      }
      i = close + 1;
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    }
    if (i < text.size()) {
      if (text[i] != ',') return invalidInput("pipeline: expected ',' after '" + name + "'");
      ++i;
    }
    if (name.empty()) {
      if (options.empty()) continue;  // tolerate "a,,b" and a trailing comma
      return invalidInput("pipeline: options without a pass name");
    }
    WH_ASSIGN_OR_RETURN(PipelineEntry entry, makeEntry(name, std::move(options)));
    pipeline.push_back(std::move(entry));
  }
  return pipeline;
}

namespace {

// A YAML subset for recipes: a list of mappings with scalar values.
//   - pass: fuse-conv-bn
//   - pass: quantize-int8
//     method: entropy
Expected<nlohmann::json> parseYamlRecipe(const std::string& text, const std::string& path) {
  nlohmann::json list = nlohmann::json::array();
  std::istringstream in(text);
  std::string line;
  int lineNo = 0;
  while (std::getline(in, line)) {
    ++lineNo;
    auto hash = line.find(" #");
    if (hash != std::string::npos) line = line.substr(0, hash);
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t == "---") continue;
    bool startsItem = t.rfind("- ", 0) == 0 || t == "-";
    if (startsItem) {
      list.push_back(nlohmann::json::object());
      t = trim(t.substr(1));
      if (t.empty()) continue;
    }
    if (list.empty()) return invalidInput(path + ":" + std::to_string(lineNo) + ": expected a list item ('- pass: NAME')");
    auto colon = t.find(':');
    if (colon == std::string::npos) return invalidInput(path + ":" + std::to_string(lineNo) + ": expected 'key: value'");
    std::string key = trim(t.substr(0, colon));
    std::string value = trim(t.substr(colon + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    list.back()[key] = value;
  }
  return list;
}

}  // namespace

Expected<std::vector<PipelineEntry>> parseRecipe(const std::string& path) {
  WH_ASSIGN_OR_RETURN(std::string text, readFile(path));
  nlohmann::json doc;
  std::string first = trim(text).substr(0, 1);
  if (first == "[" || first == "{") {
    doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return invalidInput(path + ": not valid JSON");
    if (doc.is_object() && doc.contains("passes")) doc = doc["passes"];
  } else {
    WH_ASSIGN_OR_RETURN(doc, parseYamlRecipe(text, path));
  }
  if (!doc.is_array()) return invalidInput(path + ": a recipe is a list of passes");
  std::vector<PipelineEntry> pipeline;
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& item = doc[i];
    std::string where = path + ": entry " + std::to_string(i + 1);
    if (item.is_string()) {
      auto entry = makeEntry(item.get<std::string>(), {});
      if (!entry.isOk()) return entry.status().withContext(where);
      pipeline.push_back(std::move(entry).value());
      continue;
    }
    if (!item.is_object() || !item.contains("pass") || !item["pass"].is_string()) {
      return invalidInput(where + ": expected {\"pass\": NAME, options...}");
    }
    std::map<std::string, std::string> options;
    for (const auto& [key, value] : item.items()) {
      if (key == "pass") continue;
      // Options are recorded as pipeline text (printPipeline, in the optimized model's
      // metadata), which trims a value and ends it at ',' or '}': trim it here too, and refuse
      // what that text cannot carry, so that the recorded pipeline parses back to this one.
      std::string text = trim(value.is_string() ? value.get<std::string>() : value.dump());
      if (text.find_first_of(",}") != std::string::npos) {
        return invalidInput(where + ": option " + key + "='" + text +
                            "': a value cannot hold ',' or '}' (list items are separated by ';')");
      }
      options[key] = std::move(text);
    }
    auto entry = makeEntry(item["pass"].get<std::string>(), std::move(options));
    if (!entry.isOk()) return entry.status().withContext(where);
    pipeline.push_back(std::move(entry).value());
  }
  return pipeline;
}

std::string printPipeline(const std::vector<PipelineEntry>& pipeline) {
  std::string out;
  for (const PipelineEntry& e : pipeline) {
    if (!out.empty()) out += ',';
    out += e.info->name;
    if (e.options.values().empty()) continue;
    out += '{';
    bool first = true;
    for (const auto& [k, v] : e.options.values()) {
      if (!first) out += ',';
      first = false;
      out += k + "=" + v;
    }
    out += '}';
  }
  return out;
}

std::string describePasses() {
  std::string out =
      "Passes (name, -O level that runs it by default, description; options as name=default [type] help):\n\n";
  char line[1024];
  for (const PassInfo& p : allPasses()) {
    std::string level = p.level == 0 ? "named only" : "-O" + std::to_string(p.level);
    std::snprintf(line, sizeof(line), "  %-28s %-11s %s\n", p.name.c_str(), level.c_str(), p.description.c_str());
    out += line;
    for (const OptionSpec& o : p.options) {
      std::snprintf(line, sizeof(line), "  %-28s %-11s   %s=%s  [%s]  %s\n", "", "", o.name.c_str(),
                    o.defaultValue.c_str(), o.typeText().c_str(), o.help.c_str());
      out += line;
    }
  }
  return out;
}

std::vector<PipelineEntry> pipelineForLevel(int level) {
  std::vector<PipelineEntry> pipeline;
  for (const PassInfo& p : allPasses()) {
    if (p.level > 0 && p.level <= level) pipeline.push_back({&p, PassOptions()});
  }
  return pipeline;
}

}  // namespace whittle::passes
