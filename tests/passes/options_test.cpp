// Typed pass options: declared once (passes/pass_options.h), parsed and checked in one place
// (passes/options.cpp), shown by --list-passes with their types and defaults.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "half_ops.h"
#include "pass_options.h"
#include "whittle/passes/registry.h"

using namespace whittle;
using passes::PassOptions;

namespace {

// The error parsePipeline gives for `text`, or "" when it parses.
std::string pipelineError(const std::string& text) {
  auto pipeline = passes::parsePipeline(text);
  return pipeline.isOk() ? std::string() : pipeline.status().message();
}

std::string joined(const auto& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ";") + std::string(i);
  return out;
}

}  // namespace

TEST_CASE("pass options: an unknown option names the pass and suggests the nearest", "[passes][options]") {
  const std::string e = pipelineError("quantize-int8{methd=entropy}");
  CHECK(e.rfind("quantize-int8: no option 'methd'; did you mean 'method'?", 0) == 0);
  CHECK(e.find("(options: method, p, per-channel,") != std::string::npos);
  CHECK(pipelineError("cse{fast=true}") == "cse: no option 'fast' (it takes no options)");
}

TEST_CASE("pass options: a value of the wrong type is a one-line error naming pass, option and value",
          "[passes][options]") {
  CHECK(pipelineError("initializers-to-constants{keep=maybe}") ==
        "initializers-to-constants: option 'keep' must be true or false; got 'maybe'");
  CHECK(pipelineError("prune-nm{n=two}") == "prune-nm: option 'n' must be an integer >= 0; got 'two'");
  CHECK(pipelineError("prune-nm{n=2.5}") == "prune-nm: option 'n' must be an integer >= 0; got '2.5'");
  CHECK(pipelineError("fold-constants{max-growth-bytes=99999999999999999999}") ==
        "fold-constants: option 'max-growth-bytes' must be an integer >= 0; got '99999999999999999999'");
  CHECK(pipelineError("prune-magnitude{sparsity=half}") ==
        "prune-magnitude: option 'sparsity' must be a number in [0, 1]; got 'half'");
  CHECK(pipelineError("convert-fp16{tolerance=nan}") == "convert-fp16: option 'tolerance' must be a number >= 0; got 'nan'");
  CHECK(pipelineError("convert-bf16{tolerance=}") == "convert-bf16: option 'tolerance' must be a number >= 0; got ''");
  // The forms a bool takes.
  for (const char* yes : {"true", "1", "yes", "on"}) CHECK(pipelineError(std::string("initializers-to-constants{keep=") + yes + "}").empty());
  for (const char* no : {"false", "0", "no", "off"}) CHECK(pipelineError(std::string("initializers-to-constants{keep=") + no + "}").empty());
}

TEST_CASE("pass options: a number out of its declared range is refused", "[passes][options]") {
  CHECK(pipelineError("prune-magnitude{sparsity=1.5}") == "prune-magnitude: option 'sparsity' must be in [0, 1]; got '1.5'");
  CHECK(pipelineError("prune-channels{ratio=1}") == "prune-channels: option 'ratio' must be in [0, 1); got '1'");
  CHECK(pipelineError("quantize-int8{p=50}") == "quantize-int8: option 'p' must be in (50, 100]; got '50'");
  CHECK(pipelineError("convert-fp16{tolerance-samples=0}") == "convert-fp16: option 'tolerance-samples' must be >= 1; got '0'");
  CHECK(pipelineError("fold-constants{max-growth-bytes=-1}") == "fold-constants: option 'max-growth-bytes' must be >= 0; got '-1'");
  // The bounds themselves, where closed.
  CHECK(pipelineError("prune-magnitude{sparsity=1}").empty());
  CHECK(pipelineError("prune-channels{ratio=0}").empty());
  CHECK(pipelineError("quantize-int8{p=100}").empty());
  // A check across options is the factory's, named the same way.
  CHECK(pipelineError("prune-nm{n=5,m=4}") == "prune-nm: options n=5 and m=4: n must be at most m");
}

TEST_CASE("pass options: an enum admits only its words", "[passes][options]") {
  CHECK(pipelineError("quantize-int8{method=foo}") ==
        "quantize-int8: option 'method' must be one of minmax, percentile, entropy, mse; got 'foo'");
  CHECK(pipelineError("quantize-int8{format=QDQ}") == "quantize-int8: option 'format' must be one of qdq, qoperator; got 'QDQ'");
  CHECK(pipelineError("prune-wanda{scope=global}") == "prune-wanda: option 'scope' must be one of output, layer; got 'global'");
  CHECK(pipelineError("prune-magnitude{scope=global}").empty());
  // Recipes go through the same check, with the entry in front.
  auto direct = passes::findPass("quantize-int8")->factory(PassOptions(std::map<std::string, std::string>{{"activation-type", "int4"}}));
  REQUIRE_FALSE(direct.isOk());
  CHECK(direct.status().message() ==
        "quantize-int8: option 'activation-type' must be one of uint8, int8; got 'int4'");
}

TEST_CASE("pass options: the factory receives a typed struct, defaults from the declaration", "[passes][options]") {
  using passes::QuantizeInt8Options;
  const QuantizeInt8Options d = QuantizeInt8Options::declare().defaults();
  CHECK(d.method == "minmax");
  CHECK(d.p == 99.99);
  CHECK(d.perChannel);
  CHECK(d.format == "qdq");
  CHECK(d.activationType == "uint8");
  CHECK_FALSE(d.reduceRange);
  CHECK(d.opTypes.empty());
  CHECK(d.overrides.empty());
  auto parsed = QuantizeInt8Options::declare().parse(
      "quantize-int8", PassOptions(std::map<std::string, std::string>{
                                {"method", "entropy"}, {"p", "99.9"}, {"per-channel", "off"}, {"op-types", " Conv; MatMul:"}}));
  REQUIRE(parsed.isOk());
  CHECK(parsed->method == "entropy");
  CHECK(parsed->p == 99.9);
  CHECK_FALSE(parsed->perChannel);
  CHECK(parsed->opTypes == std::vector<std::string>{"Conv", "MatMul"});
  CHECK(parsed->format == "qdq");  // not given: the default

  const passes::ConvertHalfOptions half = passes::ConvertHalfOptions::declare().defaults();
  CHECK(half.keepIoTypes);
  CHECK(half.blockOps == std::vector<std::string>(passes::kHalfBlockOps.begin(), passes::kHalfBlockOps.end()));
  CHECK(half.longReduction == 4096);
  CHECK(half.toleranceSamples == 8);
}

TEST_CASE("pass options: every declaration is complete and its default parses", "[passes][options]") {
  for (const passes::PassInfo& p : passes::allPasses()) {
    INFO("pass " << p.name);
    auto defaults = passes::parseOptions(p.name, p.options, PassOptions());
    REQUIRE(defaults.isOk());
    std::set<std::string> names;
    for (const passes::OptionSpec& o : p.options) {
      INFO("option " << o.name);
      CHECK(names.insert(o.name).second);
      CHECK_FALSE(o.help.empty());
      CHECK(o.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos);
      if (o.type == passes::OptionType::kEnum) {
        CHECK(std::find(o.allowed.begin(), o.allowed.end(), o.defaultValue) != o.allowed.end());
      }
      // The default prints back as itself: pipeline text can carry it.
      CHECK(pipelineError(p.name + "{" + o.name + "=" + o.defaultValue + "}").empty());
    }
  }
}

TEST_CASE("describePasses shows each option once, with its default and type", "[passes][options]") {
  const std::string text = passes::describePasses();
  const auto& all = passes::allPasses();
  for (size_t i = 0; i < all.size(); ++i) {
    const passes::PassInfo& p = all[i];
    INFO("pass " << p.name);
    // The pass's block: from its line to the next pass's line.
    const size_t begin = text.find("\n  " + p.name + " ");
    REQUIRE(begin != std::string::npos);
    const size_t end = i + 1 < all.size() ? text.find("\n  " + all[i + 1].name + " ", begin) : text.size();
    REQUIRE(end != std::string::npos);
    const std::string block = text.substr(begin, end - begin);
    for (const passes::OptionSpec& o : p.options) {
      INFO("option " << o.name);
      const std::string shown = " " + o.name + "=" + o.defaultValue + "  [" + o.typeText() + "]  " + o.help;
      size_t count = 0;
      for (size_t at = block.find(" " + o.name + "="); at != std::string::npos; at = block.find(" " + o.name + "=", at + 1)) ++count;
      CHECK(count == 1);
      CHECK(block.find(shown) != std::string::npos);
    }
  }
  CHECK(text.find("method=minmax  [minmax|percentile|entropy|mse]") != std::string::npos);
  CHECK(text.find("p=99.99  [float in (50, 100]]") != std::string::npos);
  CHECK(text.find("keep-io-types=true  [bool]") != std::string::npos);
  // The half block list: in each conversion pass's block, nowhere else.
  const std::string blockOps = "block-ops=" + joined(passes::kHalfBlockOps) + "  [list]";
  size_t count = 0;
  for (size_t at = text.find(blockOps); at != std::string::npos; at = text.find(blockOps, at + 1)) ++count;
  CHECK(count == 2);
}

TEST_CASE("the half-precision op lists live in passes/half_ops.h alone", "[passes][options]") {
  // Every file of the passes, the optimize driver and the command line; only half_ops.h may
  // spell the list's op types as string literals.
  namespace fs = std::filesystem;
  const fs::path root(WHITTLE_SOURCE_DIR);
  std::set<std::string> holders;
  for (const char* dir : {"passes", "src/optimize", "tools", "include/whittle/passes"}) {
    for (const auto& entry : fs::directory_iterator(root / dir)) {
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      const std::string s = text.str();
      // Other passes name these ops for their own reasons (the opset history lists every op);
      // a copy of a list shows as its neighbours spelled side by side.
      if (s.find("\"CumSum\", \"RoiAlign\"") != std::string::npos ||
          s.find("\"OptionalHasElement\", \"LSTM\"") != std::string::npos || s.find("RoiAlign;") != std::string::npos) {
        holders.insert(fs::relative(entry.path(), root).string());
      }
    }
  }
  CHECK(holders == std::set<std::string>{"passes/half_ops.h"});
  // Both lists hold each op once, and no op is in both.
  std::set<std::string_view> fixed(passes::kHalfFixedFloatOps.begin(), passes::kHalfFixedFloatOps.end());
  CHECK(fixed.size() == passes::kHalfFixedFloatOps.size());
  for (std::string_view op : passes::kHalfBlockOps) CHECK_FALSE(fixed.contains(op));
  for (const char* op : {"LSTM", "GRU", "RNN", "If", "Loop", "Scan"}) CHECK(fixed.contains(op));
}
