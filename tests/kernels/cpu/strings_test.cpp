// StringConcat, StringSplit, StringNormalizer, RegexFullMatch (kernels/cpu/strings.cpp) and
// TfIdfVectorizer (kernels/cpu/tfidf.cpp): ONNX Runtime's outputs, and the errors for bad input.
#include "kernels/cpu/long_tail_cases.h"
#include "support/kernel_harness.h"

using namespace whittle;
using whittle::testing::failureOf;
using whittle::testing::runDomainNode;
using whittle::testing::stringsAttr;

TEST_CASE("string ops match ONNX Runtime", "[kernels][strings][ort]") {
  whittle::testing::checkOrtCases("strings", 14);
}

TEST_CASE("TfIdfVectorizer matches ONNX Runtime", "[kernels][strings][ort]") {
  whittle::testing::checkOrtCases("tfidf", 13);
}

TEST_CASE("string ops refuse bad input naming the node", "[kernels][strings]") {
  ir::Tensor s = ir::Tensor::strings({2}, {"a", "\xc3\xa9t\xc3\xa9"});
  ir::Tensor f = ir::Tensor(ir::DataType::kFloat, {2});
  CHECK_THAT(failureOf(runDomainNode("", 20, "StringConcat", {s, f}, {})),
             Catch::Contains("StringConcat 'node'") && Catch::Contains("must be a string tensor"));
  CHECK_THAT(failureOf(runDomainNode("", 20, "StringSplit", {s}, {ir::Attribute::makeInt("maxsplit", -2)}, 2)),
             Catch::Contains("maxsplit must not be negative"));
  CHECK_THAT(failureOf(runDomainNode("", 20, "RegexFullMatch", {s}, {ir::Attribute::makeString("pattern", "(a")})),
             Catch::Contains("RegexFullMatch 'node'") && Catch::Contains("not a regular expression"));
  CHECK_THAT(failureOf(runDomainNode("", 10, "StringNormalizer", {s},
                                     {ir::Attribute::makeString("case_change_action", "UPPER")})),
             Catch::Contains("non-ASCII"));
  CHECK_THAT(failureOf(runDomainNode("", 10, "StringNormalizer", {s},
                                     {ir::Attribute::makeString("case_change_action", "TITLE")})),
             Catch::Contains("NONE, LOWER or UPPER"));
  ir::Tensor s3 = ir::Tensor::strings({1, 1, 2}, {"a", "b"});
  CHECK_THAT(failureOf(runDomainNode("", 10, "StringNormalizer", {s3}, {})), Catch::Contains("[C] or [1, C]"));
  ir::Tensor ids = ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {3}, {1, 2, 3});
  std::vector<ir::Attribute> tfidf = {ir::Attribute::makeString("mode", "TF"),
                                      ir::Attribute::makeInt("min_gram_length", 1),
                                      ir::Attribute::makeInt("max_gram_length", 2),
                                      ir::Attribute::makeInt("max_skip_count", 0),
                                      ir::Attribute::makeInts("ngram_counts", {0, 1}),
                                      ir::Attribute::makeInts("ngram_indexes", {0, 1}),
                                      ir::Attribute::makeInts("pool_int64s", {1, 2, 3, 4})};
  CHECK_THAT(failureOf(runDomainNode("", 9, "TfIdfVectorizer", {ids}, tfidf)),
             Catch::Contains("TfIdfVectorizer 'node'") && Catch::Contains("whole n-grams"));
  tfidf.back() = ir::Attribute::makeInts("pool_int64s", {1, 2, 3});
  CHECK_THAT(failureOf(runDomainNode("", 9, "TfIdfVectorizer", {s}, tfidf)),
             Catch::Contains("does not fit a pool of integers"));
  auto counts = runDomainNode("", 9, "TfIdfVectorizer", {ids}, tfidf);
  REQUIRE(counts.isOk());
  CHECK((*counts)[0].data<float>()[0] == 1.0f);  // the unigram 1
  CHECK((*counts)[0].data<float>()[1] == 1.0f);  // the bigram (2, 3)
}
