// The user's detection decoder (src/tune/detections.cpp): run on whittle's runtime on hand-made
// outputs, one sample of a batch at a time, and its errors.
#include "tune/detections.h"

#include <catch2/catch.hpp>

#include <cmath>

#include "tune/tune_test_util.h"

namespace whittle::tune {
namespace {

using testing::DecoderFlaw;

/// Two samples of mm3 [2, 16]: sample 0 has cells 1 and 5 above 0, sample 1 none; cells 9 and 10
/// of sample 0 (scores 3 and 2.9) overlap at IoU 0.74 (widths 1 + e^score).
std::vector<std::vector<float>> twoSamples() {
  std::vector<float> v(32, -1.0f);
  v[1] = 0.25f;
  v[5] = 0.75f;
  v[9] = 3.0f;
  v[10] = 2.9f;
  return {v};
}

TEST_CASE("DetectionDecoder: NonZero, Gather, Exp, NonMaxSuppression and TopK at a dynamic count", "[tune]") {
  testing::TempDir dir;
  auto decoder = DetectionDecoder::load(testing::writeCellDecoder(dir, "dec.onnx"), {"mm3"});
  INFO(decoder.status().message());
  REQUIRE(decoder.isOk());
  CHECK((*decoder)->reads() == std::vector<size_t>{0});
  const auto outs = twoSamples();
  SECTION("sample 0: four cells above 0, NMS drops cell 10 (it overlaps cell 9), highest score first") {
    auto det = (*decoder)->decode(outs, {{2, 16}}, 2, 0);
    INFO(det.status().message());
    REQUIRE(det.isOk());
    REQUIRE(det->size() == 3);
    CHECK(det->scores == std::vector<float>{3.0f, 0.75f, 0.25f});
    CHECK(det->boxes[0] == Approx(36.0f));
    CHECK(det->boxes[2] == Approx(37.0 + std::exp(3.0)));
    CHECK(det->boxes[4] == Approx(20.0f));
    CHECK(det->boxes[8] == Approx(4.0f));
    CHECK(det->boxes[11] == Approx(2.0f));
    CHECK(det->classes.empty());
  }
  SECTION("sample 1: nothing above the threshold, an empty detection list") {
    auto det = (*decoder)->decode(outs, {{2, 16}}, 2, 1);
    REQUIRE(det.isOk());
    CHECK(det->size() == 0);
    CHECK(det->boxes.empty());
  }
  SECTION("with classes") {
    auto classed = DetectionDecoder::load(testing::writeCellDecoder(dir, "cls.onnx", 0.0f, DecoderFlaw::kNone, true), {"mm3"});
    REQUIRE(classed.isOk());
    auto det = (*classed)->decode(outs, {{2, 16}}, 2, 0);
    REQUIRE(det.isOk());
    CHECK(det->classes == std::vector<int64_t>{0, 0, 0});
  }
  SECTION("an output with no batch axis cannot be split into samples") {
    auto det = (*decoder)->decode(outs, {{32}}, 2, 0);
    REQUIRE_FALSE(det.isOk());
    CHECK_THAT(det.status().message(), Catch::Contains("output 'mm3' [32] has no batch axis of 2 samples"));
  }
}

TEST_CASE("DetectionDecoder: errors name the decoder and the tensor", "[tune]") {
  testing::TempDir dir;
  SECTION("an input that is not a model output") {
    const std::string path = testing::writeCellDecoder(dir, "dec.onnx", 0.0f, DecoderFlaw::kReadsMissingOutput);
    auto d = DetectionDecoder::load(path, {"mm3", "other"});
    REQUIRE_FALSE(d.isOk());
    CHECK(d.status().message() ==
          "--detections " + path + ": input 'boxes' is not an output of the model (outputs: 'mm3', 'other')");
  }
  SECTION("boxes declared rank 1") {
    auto d = DetectionDecoder::load(testing::writeCellDecoder(dir, "dec.onnx", 0.0f, DecoderFlaw::kBoxesRank1), {"mm3"});
    REQUIRE_FALSE(d.isOk());
    CHECK_THAT(d.status().message(), Catch::Contains("output 'Reshape_") && Catch::Contains("is [K], expected boxes [N, 4]"));
  }
  SECTION("boxes of rank 1 found on the run when the graph does not declare them") {
    auto d = DetectionDecoder::load(testing::writeCellDecoder(dir, "dec.onnx", 0.0f, DecoderFlaw::kBoxesRank1Undeclared),
                                    {"mm3"});
    REQUIRE(d.isOk());
    auto det = (*d)->decode(twoSamples(), {{2, 16}}, 2, 0);
    REQUIRE_FALSE(det.isOk());
    CHECK_THAT(det.status().message(), Catch::Contains("is [12], expected boxes [N, 4]"));
  }
  SECTION("not an ONNX file") {
    auto d = DetectionDecoder::load(dir.file("missing.onnx"), {"mm3"});
    REQUIRE_FALSE(d.isOk());
    CHECK_THAT(d.status().message(), Catch::Contains("--detections") && Catch::Contains("missing.onnx"));
  }
}

}  // namespace
}  // namespace whittle::tune
