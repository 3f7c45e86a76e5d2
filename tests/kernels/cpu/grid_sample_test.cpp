// GridSample and AffineGrid: against ONNX Runtime over every mode, padding mode and
// align_corners in 4-D, linear and nearest in 5-D, opset 16's names, float64
// (vision_loss_ort_cases.py); an identity grid; empty grids; and the inputs they refuse.
#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/cpu/vision_loss_test_util.h"

using namespace whittle;
using testing::floats;
using testing::int64s;
using testing::nodeError;

TEST_CASE("GridSample and AffineGrid match ONNX Runtime", "[kernels][grid_sample][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  CHECK(testing::checkOrtCases("gridsample_") == 26);
  CHECK(testing::checkOrtCases("affinegrid_") == 4);
}

TEST_CASE("GridSample on AffineGrid's identity grid gives the input back", "[kernels][grid_sample]") {
  std::vector<double> xv(2 * 4 * 5);
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<double>(i) * 0.5 - 3;
  ir::Tensor x = floats({1, 2, 4, 5}, xv);
  for (int64_t ac : {0, 1}) {
    ir::Tensor grid = testing::runOk("AffineGrid", {{"theta", floats({1, 2, 3}, {1, 0, 0, 0, 1, 0})},
                                                   {"size", int64s({4}, {1, 2, 4, 5}), true}},
                                     {ir::Attribute::makeInt("align_corners", ac)}, 20);
    REQUIRE(grid.dims() == std::vector<int64_t>{1, 4, 5, 2});
    for (const char* mode : {"linear", "nearest", "cubic"}) {
      CAPTURE(ac, mode);
      ir::Tensor y = testing::runOk("GridSample", {{"x", x}, {"g", grid}},
                                    {ir::Attribute::makeString("mode", mode), ir::Attribute::makeInt("align_corners", ac)}, 20);
      std::vector<double> yv = testing::tensorValues(y);
      REQUIRE(yv.size() == xv.size());
      for (size_t i = 0; i < xv.size(); ++i) CHECK(yv[i] == Approx(xv[i]).margin(1e-5));
    }
  }
}

TEST_CASE("GridSample and AffineGrid give empty outputs for empty grids", "[kernels][grid_sample]") {
  ir::Tensor y = testing::runOk("GridSample", {{"x", floats({1, 2, 3, 3}, std::vector<double>(18, 1.0))},
                                               {"g", ir::Tensor(ir::DataType::kFloat, {1, 0, 4, 2})}}, {}, 20);
  CHECK(y.dims() == std::vector<int64_t>{1, 2, 0, 4});
  ir::Tensor g = testing::runOk("AffineGrid", {{"theta", ir::Tensor(ir::DataType::kFloat, {0, 2, 3})},
                                               {"size", int64s({4}, {0, 3, 4, 4}), true}}, {}, 20);
  CHECK(g.dims() == std::vector<int64_t>{0, 4, 4, 2});
}

TEST_CASE("GridSample and AffineGrid refuse bad shapes and modes, naming the node", "[kernels][grid_sample]") {
  ir::Tensor x = floats({1, 1, 2, 2}, {1, 2, 3, 4});
  std::string e = nodeError("GridSample", {{"x", x}, {"g", floats({1, 1, 1, 3}, {0, 0, 0})}}, {}, 20);
  CHECK_THAT(e, Catch::Contains("GridSample 'node'") && Catch::Contains("grid has shape [1,1,1,3]"));
  e = nodeError("GridSample", {{"x", x}, {"g", floats({1, 1, 1, 2}, {0, 0})}}, {ir::Attribute::makeString("mode", "area")}, 20);
  CHECK_THAT(e, Catch::Contains("mode must be"));
  e = nodeError("GridSample", {{"x", floats({1, 1, 1, 2, 2}, {1, 2, 3, 4})}, {"g", floats({1, 1, 1, 1, 3}, {0, 0, 0})}}, {}, 16);
  CHECK_THAT(e, Catch::Contains("4-D before opset 20"));
  e = nodeError("GridSample", {{"x", floats({1, 1, 2, 2, 2, 2}, std::vector<double>(16, 1.0))},
                               {"g", floats({1, 1, 1, 1, 1, 4}, {0, 0, 0, 0})}},
                {ir::Attribute::makeString("mode", "cubic")}, 20);
  CHECK_THAT(e, Catch::Contains("4 spatial axes need 256 taps per output in this mode"));
  e = nodeError("GridSample", {{"x", x}, {"g", floats({1, 1, 1, 2}, {0, 0})}},
                {ir::Attribute::makeString("padding_mode", "wrap")}, 20);
  CHECK_THAT(e, Catch::Contains("padding_mode must be"));
  e = nodeError("AffineGrid", {{"theta", floats({1, 2, 3}, {1, 0, 0, 0, 1, 0})}, {"size", int64s({3}, {1, 1, 4}), true}}, {}, 20);
  CHECK_THAT(e, Catch::Contains("AffineGrid 'node'") && Catch::Contains("size must hold 4 values"));
  e = nodeError("AffineGrid", {{"theta", floats({1, 3, 4}, std::vector<double>(12, 0.0))}, {"size", int64s({4}, {1, 1, 4, 4}), true}},
                {}, 20);
  CHECK_THAT(e, Catch::Contains("theta has shape [1,3,4], expected [1, 2, 3]"));
}

TEST_CASE("GridSample far outside the image: zeros read 0, border the edge, reflection stays finite", "[kernels][grid_sample]") {
  ir::Tensor x = floats({1, 1, 2, 2}, {1, 2, 3, 4});
  ir::Tensor grid = floats({1, 1, 2, 2}, {1e20, 1e20, -1e30, 0.0});
  for (const char* mode : {"linear", "nearest", "cubic"}) {
    CAPTURE(mode);
    auto run = [&](const char* pad) {
      return testing::tensorValues(testing::runOk(
          "GridSample", {{"x", x}, {"g", grid}},
          {ir::Attribute::makeString("mode", mode), ir::Attribute::makeString("padding_mode", pad)}, 20));
    };
    CHECK(run("zeros") == std::vector<double>{0, 0});
    std::vector<double> border = run("border");
    CHECK(border[0] == Approx(4.0));  // the bottom-right pixel
    for (double v : run("reflection")) CHECK(std::isfinite(v));
  }
}
