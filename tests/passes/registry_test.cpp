// Pipeline text and recipes on hostile input: cases found by fuzz/fuzz_pipeline
// (docs/fuzzing.md). The ordinary forms are tested in pass_manager_test.cpp.
#include "whittle/passes/registry.h"

#include <catch2/catch.hpp>

#include <string>

#include "support/temp_dir.h"

namespace whittle {
namespace {

using testing::TempDir;

// parsePipeline(printPipeline(p)) gives p back: the pipeline an optimized model records.
void checkRoundTrip(const std::vector<passes::PipelineEntry>& pipeline) {
  std::string text = passes::printPipeline(pipeline);
  auto again = passes::parsePipeline(text);
  INFO(text);
  REQUIRE(again.isOk());
  REQUIRE(again->size() == pipeline.size());
  for (size_t i = 0; i < pipeline.size(); ++i) {
    CHECK((*again)[i].info == pipeline[i].info);
    CHECK((*again)[i].options.values() == pipeline[i].options.values());
  }
}

TEST_CASE("recipe: option values that pipeline text cannot carry are refused", "[passes][registry][fuzz]") {
  TempDir dir;
  // Printed as quantize-int8{op-types=Conv,MatMul}, which parses as an option named MatMul.
  for (const char* value : {"Conv,MatMul", "a}b"}) {
    CAPTURE(value);
    testing::writeBytes(dir.file("r.json"), std::string("[{\"pass\": \"quantize-int8\", \"op-types\": \"") + value + "\"}]");
    auto recipe = passes::parseRecipe(dir.file("r.json"));
    REQUIRE_FALSE(recipe.isOk());
    CHECK(recipe.status().code() == StatusCode::kInvalidInput);
    CHECK(recipe.status().message() == dir.file("r.json") + ": entry 1: option op-types='" + value +
                                           "': a value cannot hold ',' or '}' (list items are separated by ';')");
  }
  // A JSON list as a value dumps with commas: refused the same way.
  testing::writeBytes(dir.file("list.json"), "[{\"pass\": \"quantize-int8\", \"op-types\": [\"Conv\", \"MatMul\"]}]");
  CHECK_FALSE(passes::parseRecipe(dir.file("list.json")).isOk());
}

TEST_CASE("recipe: option values are trimmed as pipeline text trims them", "[passes][registry][fuzz]") {
  TempDir dir;
  // " a" printed as exclude-nodes= a, which parses back as "a".
  testing::writeBytes(dir.file("r.json"), "[{\"pass\": \"quantize-int8\", \"exclude-nodes\": \" a\\t\", \"op-types\": \"Conv;MatMul\"}]");
  auto recipe = passes::parseRecipe(dir.file("r.json"));
  REQUIRE(recipe.isOk());
  REQUIRE(recipe->size() == 1);
  CHECK((*recipe)[0].options.values().at("exclude-nodes") == "a");
  CHECK((*recipe)[0].options.values().at("op-types") == "Conv;MatMul");
  checkRoundTrip(*recipe);
}

}  // namespace
}  // namespace whittle
