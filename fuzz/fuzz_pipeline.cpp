// fuzz_pipeline: text -> the pass pipeline parser (passes::parsePipeline, what --passes takes)
// and the same bytes as a recipe file (passes::parseRecipe, JSON or the YAML subset, what
// --recipe takes). Checked on every pipeline that parses: it prints to text that parses back
// to the same passes and options (include/whittle/passes/registry.h promises
// parsePipeline(printPipeline(p)) gives p back; the text is what optimized models record).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "whittle/passes/registry.h"

namespace {

void checkRoundTrip(const std::vector<whittle::passes::PipelineEntry>& pipeline, const char* from) {
  using namespace whittle;
  std::string text = passes::printPipeline(pipeline);
  auto again = passes::parsePipeline(text);
  if (!again.isOk()) fuzz::fail(std::string(from) + ": printed pipeline '" + text + "' does not parse: " + again.status().message());
  bool same = again->size() == pipeline.size();
  for (size_t i = 0; same && i < pipeline.size(); ++i) {
    same = (*again)[i].info == pipeline[i].info && (*again)[i].options.values() == pipeline[i].options.values();
  }
  if (!same) fuzz::fail(std::string(from) + ": printed pipeline '" + text + "' parses to a different pipeline ('" +
                        passes::printPipeline(*again) + "')");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace whittle;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto pipeline = passes::parsePipeline(text);
  if (pipeline.isOk()) {
    checkRoundTrip(*pipeline, "parsePipeline");
  } else {
    fuzz::checkNotInternal(pipeline.status(), "parsePipeline");
  }

  std::string path = fuzz::writeInput(data, size, "recipe.yaml");
  auto recipe = passes::parseRecipe(path);
  if (recipe.isOk()) {
    checkRoundTrip(*recipe, "parseRecipe");
  } else {
    fuzz::checkNotInternal(recipe.status(), "parseRecipe");
  }
  return 0;
}
