// The pass infrastructure: the registry, textual pipelines and recipes, -O levels, the
// pipeline runner's statistics, --verify-each and --print-after.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "passes/pass_test_util.h"
#include "support/temp_dir.h"
#include "whittle/passes/registry.h"

using namespace whittle;
using ir::DataType;

namespace {

std::vector<std::string> names(const std::vector<passes::PipelineEntry>& pipeline) {
  std::vector<std::string> out;
  for (const auto& e : pipeline) out.push_back(e.info->name);
  return out;
}

// x -> Identity -> Conv -> BN -> y: every -O level has something to do.
ir::Model smallModel() {
  testing::GraphBuilder b(181);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 6, 6});
  ir::Value* c = b.node("Conv", {b.node("Identity", {x}), b.weight("w", {4, 3, 3, 3})});
  ir::Value* y = b.node("BatchNormalization", {c, b.weight("s", {4}), b.weight("bb", {4}), b.weight("m", {4}),
                                               b.weight("v", {4}, DataType::kFloat, 0.5, 1.0)});
  b.output(y, DataType::kFloat, {1, 4, 4, 4});
  return b.build(13);
}

// A deliberately broken pass: makes a graph input the output of a new node.
class BreakGraph final : public passes::Pass {
 public:
  Status run(ir::Model& model, passes::PassContext&) override {
    ir::Graph& g = *model.graph;
    g.addNodeWithOutputs("Relu", {g.inputs()[0]}, {g.inputs()[0]}, "broken");
    return Status::ok();
  }
};

Expected<std::unique_ptr<passes::Pass>> makeBreakGraph(const passes::PassOptions&) {
  return std::unique_ptr<passes::Pass>(std::make_unique<BreakGraph>());
}

}  // namespace

TEST_CASE("every registered pass is kebab-case and described; -O passes live in their own file", "[passes][registry]") {
  std::set<std::string> seen;
  for (const passes::PassInfo& p : passes::allPasses()) {
    INFO("pass " << p.name);
    CHECK(seen.insert(p.name).second);
    CHECK_FALSE(p.description.empty());
    CHECK(p.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos);
    std::string file = p.name;
    std::replace(file.begin(), file.end(), '-', '_');
    if (p.level > 0) CHECK(std::filesystem::exists(std::string(WHITTLE_SOURCE_DIR) + "/passes/" + file + ".cpp"));
    CHECK(passes::findPass(p.name) == &p);
    CHECK(p.factory(passes::PassOptions()).isOk());
  }
}

TEST_CASE("a pipeline's text prints back the same", "[passes][registry]") {
  std::string text = GENERATE(std::string("fold-constants,fuse-conv-bn"),
                              std::string("initializers-to-constants{keep=true},fold-constants{max-growth-bytes=64}"),
                              std::string("eliminate-dead"), std::string(""));
  auto pipeline = passes::parsePipeline(text);
  INFO(text << ": " << pipeline.status().message());
  REQUIRE(pipeline.isOk());
  CHECK(passes::printPipeline(*pipeline) == text);
  auto again = passes::parsePipeline(passes::printPipeline(*pipeline));
  REQUIRE(again.isOk());
  CHECK(names(*again) == names(*pipeline));
}

TEST_CASE("pipeline text tolerates spaces and prints canonically", "[passes][registry]") {
  auto pipeline = passes::parsePipeline(" fold-constants { max-growth-bytes = 10 } , cse ");
  INFO(pipeline.status().message());
  REQUIRE(pipeline.isOk());
  CHECK(passes::printPipeline(*pipeline) == "fold-constants{max-growth-bytes=10},cse");
}

TEST_CASE("an unknown pass or option is an error that suggests the nearest name", "[passes][registry]") {
  auto badPass = passes::parsePipeline("fold-constants,fuse-conv-bm");
  REQUIRE_FALSE(badPass.isOk());
  CHECK(badPass.status().message().find("unknown pass 'fuse-conv-bm'") != std::string::npos);
  CHECK(badPass.status().message().find("did you mean 'fuse-conv-bn'") != std::string::npos);

  auto badOption = passes::parsePipeline("fold-constants{max-growth=1}");
  REQUIRE_FALSE(badOption.isOk());
  CHECK(badOption.status().message().find("no option 'max-growth'") != std::string::npos);
  CHECK(badOption.status().message().find("did you mean 'max-growth-bytes'") != std::string::npos);

  auto badValue = passes::parsePipeline("fold-constants{max-growth-bytes=lots}");
  REQUIRE_FALSE(badValue.isOk());
  CHECK(badValue.status().message().find("max-growth-bytes") != std::string::npos);

  auto noOptions = passes::parsePipeline("cse{fast=true}");
  REQUIRE_FALSE(noOptions.isOk());
  CHECK(noOptions.status().message().find("takes no options") != std::string::npos);

  auto unclosed = passes::parsePipeline("fold-constants{max-growth-bytes=1");
  CHECK_FALSE(unclosed.isOk());
  CHECK(passes::nearestName("zzzzzzzzzz", {"cse", "fuse-gelu"}).empty());
}

TEST_CASE("recipes in JSON and YAML give the same pipeline as the text", "[passes][registry]") {
  testing::TempDir tmp;
  const std::string expected = "initializers-to-constants{keep=true},fold-constants{max-growth-bytes=64},cse";
  testing::writeBytes(tmp.file("r.json"),
                      R"([{"pass": "initializers-to-constants", "keep": true},
                          {"pass": "fold-constants", "max-growth-bytes": 64}, "cse"])");
  testing::writeBytes(tmp.file("r2.json"), R"({"passes": [{"pass": "initializers-to-constants", "keep": "true"},
                          {"pass": "fold-constants", "max-growth-bytes": "64"}, {"pass": "cse"}]})");
  testing::writeBytes(tmp.file("r.yaml"),
                      "# a recipe\n- pass: initializers-to-constants\n  keep: true\n"
                      "- pass: fold-constants   # bounded\n  max-growth-bytes: '64'\n- pass: cse\n");
  for (const char* file : {"r.json", "r2.json", "r.yaml"}) {
    auto pipeline = passes::parseRecipe(tmp.file(file));
    INFO(file << ": " << pipeline.status().message());
    REQUIRE(pipeline.isOk());
    CHECK(passes::printPipeline(*pipeline) == expected);
  }
  testing::writeBytes(tmp.file("bad.yaml"), "- pass: fuse-conv-bm\n");
  auto bad = passes::parseRecipe(tmp.file("bad.yaml"));
  REQUIRE_FALSE(bad.isOk());
  CHECK(bad.status().message().find("bad.yaml: entry 1") != std::string::npos);
  CHECK(bad.status().message().find("did you mean 'fuse-conv-bn'") != std::string::npos);
  testing::writeBytes(tmp.file("bad.json"), "[{\"pass\": ");
  CHECK_FALSE(passes::parseRecipe(tmp.file("bad.json")).isOk());
}

TEST_CASE("optimization levels: -O0 runs nothing, -O1 the exact clean-up, -O2 adds the fusions", "[passes][registry]") {
  CHECK(passes::pipelineForLevel(0).empty());
  std::vector<std::string> o1 = names(passes::pipelineForLevel(1));
  std::vector<std::string> o2 = names(passes::pipelineForLevel(2));
  CHECK(std::find(o1.begin(), o1.end(), "fold-constants") != o1.end());
  CHECK(std::find(o1.begin(), o1.end(), "fuse-conv-bn") == o1.end());
  CHECK(std::find(o2.begin(), o2.end(), "fuse-conv-bn") != o2.end());
  CHECK(std::find(o2.begin(), o2.end(), "fuse-gelu") != o2.end());
  // -O2 is -O1 plus more, in registry order; passes that must be named (level 0) are in neither.
  std::vector<std::string> o2Prefix;
  for (const std::string& n : o2) {
    if (std::find(o1.begin(), o1.end(), n) != o1.end()) o2Prefix.push_back(n);
  }
  CHECK(o2Prefix == o1);
  for (const passes::PassInfo& p : passes::allPasses()) {
    if (p.level == 0) CHECK(std::find(o2.begin(), o2.end(), p.name) == o2.end());
  }
}

TEST_CASE("the pipeline runner records per-pass statistics", "[passes][pass-manager]") {
  ir::Model model = smallModel();
  ir::Model copy = model.clone();
  passes::PassContext ctx(copy);
  auto stats = passes::runPipeline(copy, passes::pipelineForLevel(2), ctx);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  REQUIRE(stats->size() == passes::pipelineForLevel(2).size());
  int64_t removed = 0;
  for (size_t i = 0; i < stats->size(); ++i) {
    const passes::PassStats& s = (*stats)[i];
    CHECK(s.pass == passes::pipelineForLevel(2)[i].info->name);
    CHECK(s.milliseconds >= 0);
    if (i > 0) CHECK(s.nodesBefore == (*stats)[i - 1].nodesAfter);
    removed += s.nodesBefore - s.nodesAfter;
    if (s.pass == "eliminate-identity") CHECK(s.nodesBefore - s.nodesAfter == 1);
    if (s.pass == "fuse-conv-bn") {
      CHECK(s.rewrites == 1);
      CHECK(s.nodesBefore - s.nodesAfter == 1);
      CHECK(s.parameterBytesBefore - s.parameterBytesAfter == 3 * 4 * 4);  // four BN vectors out, a bias in
    }
  }
  CHECK(removed == 2);
  CHECK(testing::opTypes(*copy.graph) == std::vector<std::string>{"Conv"});
  testing::requireSameOutputs(model, copy);
}

TEST_CASE("verify-each stops at the pass that broke the graph", "[passes][pass-manager]") {
  ir::Model model = smallModel();
  passes::PassInfo broken{"break-graph", "breaks the graph on purpose", {}, &makeBreakGraph, 0};
  std::vector<passes::PipelineEntry> pipeline = {
      {passes::findPass("cse"), {}}, {&broken, {}}, {passes::findPass("eliminate-dead"), {}}};
  passes::PassContext ctx(model);
  passes::PipelineRunOptions options;
  options.verifyEach = true;
  auto stats = passes::runPipeline(model, pipeline, ctx, options);
  REQUIRE_FALSE(stats.isOk());
  CHECK(stats.status().message().find("after pass break-graph") != std::string::npos);
}

TEST_CASE("print-after dumps the graph after the named pass", "[passes][pass-manager]") {
  ir::Model model = smallModel();
  passes::PassContext ctx(model);
  passes::PipelineRunOptions options;
  options.printAfter = {"fuse-conv-bn"};
  std::vector<std::pair<std::string, std::string>> dumps;
  options.dump = [&](const std::string& pass, const std::string& text) { dumps.emplace_back(pass, text); };
  REQUIRE(passes::runPipeline(model, passes::pipelineForLevel(2), ctx, options).isOk());
  REQUIRE(dumps.size() == 1);
  CHECK(dumps[0].first == "fuse-conv-bn");
  // The Identity went in eliminate-identity, the BatchNormalization in fuse-conv-bn.
  CHECK(dumps[0].second.find("(1 nodes)") != std::string::npos);
}

TEST_CASE("list options split on ';' and ':', trimmed, without empty items", "[passes][registry]") {
  passes::PassOptions options(std::map<std::string, std::string>{{"ops", " Resize; TopK::CumSum ;"}});
  CHECK(options.getList("ops") == std::vector<std::string>{"Resize", "TopK", "CumSum"});
  CHECK(options.getList("absent", "A;B") == std::vector<std::string>{"A", "B"});
  CHECK(options.getList("absent").empty());
}
