// MaxPool, AveragePool, LpPool, the global pools, BatchNormalization and LRN on the CPU
// runtime against naive loops in double, over one shape list (channel counts around 16,
// windows with pads, strides, dilations and ceil_mode overhang), for float32 at 1 and 2
// threads and the other dtypes each op supports; the channels-last variants the lowering
// creates are checked against the channels-first ones.
#include <catch2/catch.hpp>
#include <limits>

#include "kernels/cpu/conv_test_util.h"

using namespace whittle;
using whittle::testing::GraphBuilder;

namespace {

struct PoolCase {
  std::vector<int64_t> x;
  std::vector<int64_t> kernel, strides, pads, dilations;
  bool ceil = false;
};

const std::vector<PoolCase> kPoolCases = {
    {{1, 1, 5, 5}, {2, 2}, {1, 1}, {0, 0, 0, 0}, {1, 1}},
    {{1, 16, 11, 11}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}},
    {{2, 15, 8, 9}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
    {{1, 17, 7, 7}, {2, 3}, {2, 1}, {0, 1, 1, 0}, {1, 1}},
    {{1, 4, 9, 9}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, true},
    {{1, 3, 6, 6}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, true},
    {{1, 5, 10, 10}, {2, 2}, {1, 1}, {0, 0, 0, 0}, {2, 2}},
    {{1, 3, 12}, {3}, {2}, {1, 1}, {1}},
    // 1-D max pools run as planes of one row: SincNet's k3/s3 over long rows, padded and ceil.
    {{1, 4, 1001}, {3}, {3}, {0, 0}, {1}},
    {{2, 3, 83}, {5}, {2}, {2, 1}, {1}, true},
    // Wide rows: max pooling of NCHW planes runs the windows inside a row side by side.
    {{1, 3, 9, 70}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
    {{1, 2, 5, 83}, {3, 5}, {1, 1}, {1, 2, 1, 2}, {1, 1}, true},
    {{1, 2, 5, 6, 7}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0, 1, 1, 1}, {1, 1, 1}},
};

enum class Kind { kMax, kAverage, kLp };

/// Output spatial dims of `c` (ONNX: floor, or ceil with the last window starting inside).
std::vector<int64_t> outDims(const PoolCase& c) {
  std::vector<int64_t> y = {c.x[0], c.x[1]};
  size_t n = c.kernel.size();
  for (size_t i = 0; i < n; ++i) {
    int64_t extent = (c.kernel[i] - 1) * c.dilations[i] + 1;
    int64_t span = c.x[i + 2] + c.pads[i] + c.pads[n + i] - extent;
    int64_t out = c.ceil ? (span + c.strides[i] - 1) / c.strides[i] + 1 : span / c.strides[i] + 1;
    if (c.ceil && (out - 1) * c.strides[i] >= c.x[i + 2] + c.pads[i]) --out;
    y.push_back(out);
  }
  return y;
}

std::vector<double> naivePool(const PoolCase& c, Kind kind, bool includePad, double p, const std::vector<double>& x,
                              std::vector<int64_t>* indices = nullptr) {
  std::vector<int64_t> y = outDims(c);
  size_t n = c.kernel.size();
  std::vector<int64_t> inSp(c.x.begin() + 2, c.x.end()), outSp(y.begin() + 2, y.end());
  int64_t inSize = whittle::testing::numel(inSp);
  std::vector<double> out;
  for (int64_t plane = 0; plane < c.x[0] * c.x[1]; ++plane) {
    std::vector<int64_t> o(n, 0);
    do {
      double acc = 0, best = -std::numeric_limits<double>::infinity();
      int64_t count = 0, padded = 0, bestIndex = -1;
      std::vector<int64_t> k(n, 0);
      do {
        bool inside = true, insidePads = true;
        int64_t off = 0;
        for (size_t d = 0; d < n; ++d) {
          int64_t pos = o[d] * c.strides[d] + k[d] * c.dilations[d] - c.pads[d];
          inside = inside && pos >= 0 && pos < inSp[d];
          insidePads = insidePads && pos < inSp[d] + c.pads[n + d];
          off = off * inSp[d] + pos;
        }
        padded += insidePads ? 1 : 0;
        if (!inside) continue;
        double v = x[static_cast<size_t>(plane * inSize + off)];
        ++count;
        if (v > best) {
          best = v;
          bestIndex = plane * inSize + off;
        }
        acc += kind == Kind::kLp ? std::pow(std::fabs(v), p) : v;
      } while (whittle::testing::nextIndex(k, c.kernel));
      if (kind == Kind::kMax) {
        out.push_back(best);
        if (indices != nullptr) indices->push_back(bestIndex);
      } else if (kind == Kind::kAverage) {
        out.push_back(acc / static_cast<double>(includePad ? padded : count));
      } else {
        out.push_back(std::pow(acc, 1.0 / p));
      }
    } while (whittle::testing::nextIndex(o, outSp));
  }
  return out;
}

std::vector<ir::Attribute> poolAttrs(const PoolCase& c) {
  return {ir::Attribute::makeInts("kernel_shape", c.kernel), ir::Attribute::makeInts("strides", c.strides),
          ir::Attribute::makeInts("pads", c.pads), ir::Attribute::makeInts("dilations", c.dilations),
          ir::Attribute::makeInt("ceil_mode", c.ceil ? 1 : 0)};
}

/// Runs a one-node model: `op` on x with `attrs`; returns its outputs.
std::vector<ir::Tensor> runOne(const std::string& op, const ir::Tensor& x, std::vector<ir::Attribute> attrs,
                               int threads = 1, size_t outputs = 1, const std::string& domain = "") {
  GraphBuilder gb(1);
  ir::Value* in = gb.input("x", x.dtype(), x.dims());
  auto outs = gb.nodeN(op, {in}, outputs, std::move(attrs), "node", domain);
  for (ir::Value* v : outs) gb.output(v);
  if (!domain.empty()) gb.importDomain(domain, 1);
  return whittle::testing::runOutputs(gb.build(18), {{"x", x}}, threads);
}

/// Channels-first [N, C, D...] values of a channels-last tensor.
ir::Tensor toChannelsLast(const ir::Tensor& t) {
  std::vector<int64_t> d = t.dims();
  std::vector<int64_t> phys = {d[0]};
  phys.insert(phys.end(), d.begin() + 2, d.end());
  phys.push_back(d[1]);
  ir::Tensor out(t.dtype(), phys);
  int64_t spatial = whittle::testing::numel(d, 2);
  for (int64_t b = 0; b < d[0]; ++b) {
    for (int64_t c = 0; c < d[1]; ++c) {
      for (int64_t s = 0; s < spatial; ++s) {
        out.mutableData<float>()[(b * spatial + s) * d[1] + c] = t.data<float>()[(b * d[1] + c) * spatial + s];
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("MaxPool and AveragePool float32 match naive pools over the shape list", "[kernels][pool]") {
  uint64_t seed = 100;
  for (const PoolCase& c : kPoolCases) {
    GraphBuilder gb(seed++);
    ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, c.x, -2, 2);
    std::vector<double> xv = whittle::testing::tensorValues(x);
    for (int threads : {1, 2}) {
      INFO(c.x.size() - 2 << "-d pool over C " << c.x[1] << ", ceil " << c.ceil << ", threads " << threads);
      auto mx = runOne("MaxPool", x, poolAttrs(c), threads);
      REQUIRE(mx[0].dims() == outDims(c));
      whittle::testing::checkClose(mx[0], naivePool(c, Kind::kMax, false, 0, xv), 0, 0);
      for (int include : {0, 1}) {
        auto attrs = poolAttrs(c);
        attrs.push_back(ir::Attribute::makeInt("count_include_pad", include));
        auto av = runOne("AveragePool", x, attrs, threads);
        REQUIRE(av[0].dims() == outDims(c));
        whittle::testing::checkClose(av[0], naivePool(c, Kind::kAverage, include != 0, 0, xv), 1e-5, 1e-6);
      }
    }
  }
}

TEST_CASE("MaxPool returns Indices and pools float16, float64 and 8-bit integers", "[kernels][pool]") {
  const PoolCase& c = kPoolCases[2];
  GraphBuilder gb(7);
  ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, c.x, -2, 2);
  std::vector<int64_t> indices;
  std::vector<double> expected = naivePool(c, Kind::kMax, false, 0, whittle::testing::tensorValues(x), &indices);
  auto out = runOne("MaxPool", x, poolAttrs(c), 1, 2);
  whittle::testing::checkClose(out[0], expected, 0, 0);
  REQUIRE(out[1].dtype() == ir::DataType::kInt64);
  CHECK(std::vector<int64_t>(out[1].data<int64_t>(), out[1].data<int64_t>() + out[1].numel()) == indices);
  for (ir::DataType type : {ir::DataType::kFloat16, ir::DataType::kDouble, ir::DataType::kUint8, ir::DataType::kInt8}) {
    INFO(ir::dataTypeName(type));
    ir::Tensor xt = gb.randomTensor(type, c.x, -100, 100);
    auto y = runOne("MaxPool", xt, poolAttrs(c));
    CHECK(y[0].dtype() == type);
    whittle::testing::checkClose(y[0], naivePool(c, Kind::kMax, false, 0, whittle::testing::tensorValues(xt)), 0, 0);
  }
  ir::Tensor xh = gb.randomTensor(ir::DataType::kFloat16, c.x);
  auto avg = runOne("AveragePool", xh, poolAttrs(c));
  whittle::testing::checkClose(avg[0], naivePool(c, Kind::kAverage, false, 0, whittle::testing::tensorValues(xh)), 2e-3,
                               1e-3);
}

TEST_CASE("float16 and bfloat16 pools match the naive pool over the shape list", "[kernels][pool]") {
  // They take the float32 kernels (oneDNN or the channels-last loop) on a widened copy.
  uint64_t seed = 500;
  for (const PoolCase& c : kPoolCases) {
    for (ir::DataType type : {ir::DataType::kFloat16, ir::DataType::kBFloat16}) {
      GraphBuilder gb(seed++);
      ir::Tensor x = gb.randomTensor(type, c.x, -4, 4);
      std::vector<double> values = whittle::testing::tensorValues(x);
      for (int threads : {1, 2}) {
        INFO(ir::dataTypeName(type) << " " << c.x.size() - 2 << "-d pool over C " << c.x[1] << ", ceil " << c.ceil
                                    << ", threads " << threads);
        auto maxY = runOne("MaxPool", x, poolAttrs(c), threads);
        REQUIRE(maxY[0].dims() == outDims(c));
        CHECK(maxY[0].dtype() == type);
        whittle::testing::checkClose(maxY[0], naivePool(c, Kind::kMax, false, 0, values), 0, 0);
        auto avgY = runOne("AveragePool", x, poolAttrs(c), threads);
        CHECK(avgY[0].dtype() == type);
        // One rounding to the 16-bit type: half an ulp, 2^-11 (float16) or 2^-8 (bfloat16).
        double rel = type == ir::DataType::kFloat16 ? 1e-3 : 8e-3;
        whittle::testing::checkClose(avgY[0], naivePool(c, Kind::kAverage, false, 0, values), rel, rel);
      }
    }
  }
}

TEST_CASE("8-bit MaxPool matches the naive pool over the shape list", "[kernels][pool]") {
  // 2-D channels-first cases take the separable byte path, the others the reference.
  uint64_t seed = 300;
  for (const PoolCase& c : kPoolCases) {
    for (ir::DataType type : {ir::DataType::kUint8, ir::DataType::kInt8}) {
      GraphBuilder gb(seed++);
      ir::Tensor x = gb.randomTensor(type, c.x, -128, 255);
      for (int threads : {1, 2}) {
        INFO(ir::dataTypeName(type) << " " << c.x.size() - 2 << "-d pool over C " << c.x[1] << ", ceil " << c.ceil
                                    << ", threads " << threads);
        auto y = runOne("MaxPool", x, poolAttrs(c), threads);
        REQUIRE(y[0].dims() == outDims(c));
        CHECK(y[0].dtype() == type);
        whittle::testing::checkClose(y[0], naivePool(c, Kind::kMax, false, 0, whittle::testing::tensorValues(x)), 0, 0);
      }
    }
  }
}

TEST_CASE("LpPool and the global pools match naive loops", "[kernels][pool]") {
  GraphBuilder gb(8);
  for (const PoolCase& c : {kPoolCases[2], kPoolCases[7], kPoolCases[6]}) {
    ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, c.x);
    for (int64_t p : {1, 2, 3}) {
      auto attrs = poolAttrs(c);
      attrs.push_back(ir::Attribute::makeInt("p", p));
      auto y = runOne("LpPool", x, attrs);
      whittle::testing::checkClose(
          y[0], naivePool(c, Kind::kLp, false, static_cast<double>(p), whittle::testing::tensorValues(x)), 1e-5, 1e-6);
    }
  }
  // Channel counts for the channels-last sums' paths: 8-channel vectors and a scalar tail (17),
  // 64-channel blocks (64), all three (83).
  for (std::vector<int64_t> dims :
       {std::vector<int64_t>{2, 17, 5, 6}, {1, 64, 13, 13}, {2, 83, 4, 9}, {1, 3, 7}, {1, 2, 3, 4, 5}}) {
    ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, dims);
    std::vector<double> xv = whittle::testing::tensorValues(x);
    int64_t spatial = whittle::testing::numel(dims, 2);
    std::vector<double> mean, max;
    for (int64_t plane = 0; plane < dims[0] * dims[1]; ++plane) {
      double s = 0, m = -1e30;
      for (int64_t i = 0; i < spatial; ++i) {
        s += xv[static_cast<size_t>(plane * spatial + i)];
        m = std::max(m, xv[static_cast<size_t>(plane * spatial + i)]);
      }
      mean.push_back(s / static_cast<double>(spatial));
      max.push_back(m);
    }
    std::vector<int64_t> outShape(dims.size(), 1);
    outShape[0] = dims[0];
    outShape[1] = dims[1];
    for (int threads : {1, 2}) {
      auto ga = runOne("GlobalAveragePool", x, {}, threads);
      CHECK(ga[0].dims() == outShape);
      whittle::testing::checkClose(ga[0], mean, 1e-5, 1e-6);
      auto gm = runOne("GlobalMaxPool", x, {}, threads);
      whittle::testing::checkClose(gm[0], max, 0, 0);
    }
    if (dims.size() == 4) {
      // The lowering's channels-last form reads [N, H, W, C] and writes [N, C, 1, 1].
      auto gl = runOne("GlobalAveragePool", toChannelsLast(x), {ir::Attribute::makeInt("channels_last_in", 1)}, 1, 1,
                       "com.whittle.internal");
      CHECK(gl[0].dims() == outShape);
      whittle::testing::checkClose(gl[0], mean, 1e-5, 1e-6);
    }
  }
}

TEST_CASE("GlobalMaxPool channels first skips nans but a first one, over every lane path", "[kernels][pool]") {
  // Planes of 7 (scalar), 40 (16-lane steps and a tail) and 203 (64-lane blocks, 16-lane
  // steps, a tail): a nan first in the plane is the result; a nan elsewhere is skipped, as in
  // `best = x > best ? x : best` from best = x[0] (the order the vector lanes keep).
  GraphBuilder gb(9);
  for (int64_t spatial : {7, 40, 203}) {
    ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, {1, 4, spatial});
    float* p = x.mutableData<float>();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    p[0] = nan;                                   // plane 0: nan first
    p[spatial + 1] = nan;                         // plane 1: nan in lane 1
    p[2 * spatial + spatial - 1] = nan;           // plane 2: nan in the tail
    p[3 * spatial + spatial / 2] = 1000.0f;       // plane 3: the max in the middle
    for (int threads : {1, 2}) {
      auto y = runOne("GlobalMaxPool", x, {}, threads);
      const float* out = y[0].data<float>();
      CHECK(std::isnan(out[0]));
      for (int64_t plane = 1; plane < 4; ++plane) {
        float best = p[plane * spatial];
        for (int64_t i = 1; i < spatial; ++i) best = p[plane * spatial + i] > best ? p[plane * spatial + i] : best;
        INFO("spatial " << spatial << " plane " << plane);
        CHECK(out[plane] == best);
      }
      CHECK(out[3] == 1000.0f);
    }
  }
}

TEST_CASE("Channels-last pools match the channels-first ones", "[kernels][pool]") {
  GraphBuilder gb(9);
  // Besides the shape list: channel counts that take the 4-, 2- and 1-vector paths of the
  // AVX-512 kernel and a masked tail together (32, 48, 64 + 16 + 3), SqueezeNet's 3x3 stride-2
  // ceil_mode pool and a padded, dilated window.
  std::vector<PoolCase> cases = {kPoolCases[1], kPoolCases[2], kPoolCases[3],
                                 kPoolCases[4], kPoolCases[5], kPoolCases[6]};
  cases.push_back({{1, 32, 10, 12}, {2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}});
  cases.push_back({{1, 48, 9, 9}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, true});
  cases.push_back({{2, 83, 8, 7}, {3, 2}, {1, 2}, {1, 0, 2, 1}, {2, 1}, true});
  for (const PoolCase& c : cases) {
    ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, c.x);
    for (const char* op : {"MaxPool", "AveragePool"}) {
      for (int include : {0, 1}) {
        auto attrs = poolAttrs(c);
        attrs.push_back(ir::Attribute::makeInt("count_include_pad", include));
        auto ref = runOne(op, x, attrs);
        for (int out : {0, 1}) {
          INFO(op << " C " << c.x[1] << " include_pad " << include << " channels_last_out " << out);
          auto cl = attrs;
          cl.push_back(ir::Attribute::makeInt("channels_last_in", 1));
          cl.push_back(ir::Attribute::makeInt("channels_last_out", out));
          auto y = runOne(op, toChannelsLast(x), cl, 1 + out, 1, "com.whittle.internal");
          whittle::testing::checkClose(y[0], whittle::testing::tensorValues(out ? toChannelsLast(ref[0]) : ref[0]),
                                       1e-6, 1e-7);
        }
      }
    }
  }
}

TEST_CASE("BatchNormalization and LRN match their formulas", "[kernels][pool]") {
  GraphBuilder gb(10);
  for (std::vector<int64_t> dims : {std::vector<int64_t>{2, 17, 5, 6}, {1, 16, 3}, {3, 4}}) {
    int64_t c = dims[1];
    ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, dims, -3, 3);
    ir::Tensor scale = gb.randomTensor(ir::DataType::kFloat, {c});
    ir::Tensor bias = gb.randomTensor(ir::DataType::kFloat, {c});
    ir::Tensor mean = gb.randomTensor(ir::DataType::kFloat, {c});
    ir::Tensor var = gb.randomTensor(ir::DataType::kFloat, {c}, 0.1, 2.0);
    GraphBuilder b(1);
    ir::Value* in = b.input("x", ir::DataType::kFloat, dims);
    b.output(b.node("BatchNormalization",
                    {in, b.constant("s", scale), b.constant("b", bias), b.constant("m", mean), b.constant("v", var)},
                    {ir::Attribute::makeFloat("epsilon", 1e-3f)}));
    auto y = whittle::testing::runOutputs(b.build(15), {{"x", x}}, 2);
    std::vector<double> expected;
    int64_t spatial = whittle::testing::numel(dims, 2);
    for (int64_t i = 0; i < x.numel(); ++i) {
      int64_t ch = (i / spatial) % c;
      expected.push_back((x.valueAsDouble(i) - mean.valueAsDouble(ch)) / std::sqrt(var.valueAsDouble(ch) + 1e-3) *
                             scale.valueAsDouble(ch) +
                         bias.valueAsDouble(ch));
    }
    whittle::testing::checkClose(y[0], expected, 1e-5, 1e-5);
  }
  for (int64_t size : {3, 4, 5}) {
    for (float beta : {0.6f, 0.75f}) {  // 0.75 (GoogLeNet, AlexNet) runs as two square roots
      std::vector<int64_t> dims = {2, 17, 4, 5};
      ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, dims, -3, 3);
      auto y = runOne("LRN", x,
                      {ir::Attribute::makeInt("size", size), ir::Attribute::makeFloat("alpha", 0.01f),
                       ir::Attribute::makeFloat("beta", beta), ir::Attribute::makeFloat("bias", 2.0f)});
      std::vector<double> expected;
      int64_t spatial = 20, c = 17;
      for (int64_t i = 0; i < x.numel(); ++i) {
        int64_t b = i / (c * spatial), ch = (i / spatial) % c, s = i % spatial;
        double sum = 0;
        for (int64_t k = std::max<int64_t>(0, ch - (size - 1) / 2); k <= std::min<int64_t>(c - 1, ch + size / 2); ++k) {
          double v = x.valueAsDouble((b * c + k) * spatial + s);
          sum += v * v;
        }
        expected.push_back(x.valueAsDouble(i) /
                           std::pow(2.0 + static_cast<double>(0.01f) / static_cast<double>(size) * sum, beta));
      }
      whittle::testing::checkClose(y[0], expected, 1e-5, 1e-6);
    }
  }
}

TEST_CASE("MaxUnpool puts MaxPool's maxima back where they were", "[kernels][pool]") {
  GraphBuilder gb(11);
  std::vector<int64_t> dims = {2, 3, 6, 8};
  ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, dims);
  ir::Value* in = gb.input("x", ir::DataType::kFloat, dims);
  std::vector<ir::Attribute> attrs = {ir::Attribute::makeInts("kernel_shape", {2, 2}),
                                      ir::Attribute::makeInts("strides", {2, 2})};
  auto pooled = gb.nodeN("MaxPool", {in}, 2, attrs, "pool");
  gb.output(gb.node("MaxUnpool", {pooled[0], pooled[1]}, attrs, "unpool"));
  auto y = whittle::testing::runOutputs(gb.build(18), {{"x", x}});
  REQUIRE(y[0].dims() == dims);
  std::vector<double> expected(static_cast<size_t>(x.numel()), 0.0);
  for (int64_t plane = 0; plane < 6; ++plane) {
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t j = 0; j < 4; ++j) {
        int64_t best = -1;
        for (int64_t di = 0; di < 2; ++di) {
          for (int64_t dj = 0; dj < 2; ++dj) {
            int64_t at = plane * 48 + (2 * i + di) * 8 + 2 * j + dj;
            if (best < 0 || x.valueAsDouble(at) > x.valueAsDouble(best)) best = at;
          }
        }
        expected[static_cast<size_t>(best)] = x.valueAsDouble(best);
      }
    }
  }
  whittle::testing::checkClose(y[0], expected, 0, 0);
}
