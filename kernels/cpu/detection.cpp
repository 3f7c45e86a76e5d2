// RoiAlign (opsets 10 and 16) and NonMaxSuppression (opsets 10 and 11): the post-processing
// ops of detector exports.
//
// RoiAlign: Y[r, c] pools X[batch_indices[r], c] over roi r = (x1, y1, x2, y2) * spatial_scale
// (minus 0.5 with coordinate_transformation_mode half_pixel, the default from opset 16) cut into
// output_height x output_width bins of sampling_ratio^2 (or ceil(roi size / bins)) bilinear
// samples each; mode avg averages the samples, mode max takes the largest weighted corner value
// of each sample (as ONNX Runtime and the ONNX reference do). The sample positions and weights
// of a roi are computed once and applied to every channel.
//
// NonMaxSuppression: per batch and class, the boxes whose score is above score_threshold are
// taken in descending score order (ties: lower index first); a box is kept unless its IoU with
// a kept box exceeds iou_threshold, up to max_output_boxes_per_class. Output rows are
// (batch, class, box) in that order.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

// ---- RoiAlign ----

struct RoiParams {
  bool maxMode;
  bool halfPixel;
  int64_t outH, outW, samplingRatio;
  float spatialScale;
};

/// One bilinear sample: four flat positions in the plane and their weights.
struct Sample {
  int64_t pos[4];
  double w[4];
};

template <typename T>
void roiAlign(const ir::Tensor& xt, const T* rois, const std::vector<int64_t>& batchIndex, T* y, const RoiParams& p) {
  int64_t channels = xt.dims()[1], height = xt.dims()[2], width = xt.dims()[3];
  auto numRois = static_cast<int64_t>(batchIndex.size());
  const T* x = xt.data<T>();
  int64_t outPlane = p.outH * p.outW;
  bool parallel = numRois * channels * outPlane > 4096;
#pragma omp parallel if (parallel)
  {
    std::vector<Sample> samples;
#pragma omp for schedule(dynamic)
    for (int64_t r = 0; r < numRois; ++r) {
      double offset = p.halfPixel ? 0.5 : 0.0;
      const T* roi = rois + r * 4;
      double startW = static_cast<double>(roi[0]) * p.spatialScale - offset;
      double startH = static_cast<double>(roi[1]) * p.spatialScale - offset;
      double endW = static_cast<double>(roi[2]) * p.spatialScale - offset;
      double endH = static_cast<double>(roi[3]) * p.spatialScale - offset;
      double roiW = endW - startW, roiH = endH - startH;
      if (!p.halfPixel) {
        roiW = std::max(roiW, 1.0);
        roiH = std::max(roiH, 1.0);
      }
      double binH = roiH / static_cast<double>(p.outH), binW = roiW / static_cast<double>(p.outW);
      int64_t gridH = p.samplingRatio > 0 ? p.samplingRatio : static_cast<int64_t>(std::ceil(roiH / static_cast<double>(p.outH)));
      int64_t gridW = p.samplingRatio > 0 ? p.samplingRatio : static_cast<int64_t>(std::ceil(roiW / static_cast<double>(p.outW)));
      gridH = std::max<int64_t>(gridH, 0);
      gridW = std::max<int64_t>(gridW, 0);
      double count = static_cast<double>(std::max<int64_t>(gridH * gridW, 1));
      samples.clear();
      for (int64_t ph = 0; ph < p.outH; ++ph) {
        for (int64_t pw = 0; pw < p.outW; ++pw) {
          for (int64_t iy = 0; iy < gridH; ++iy) {
            double yy = startH + static_cast<double>(ph) * binH +
                        (static_cast<double>(iy) + 0.5) * binH / static_cast<double>(gridH);
            for (int64_t ix = 0; ix < gridW; ++ix) {
              double xx = startW + static_cast<double>(pw) * binW +
                          (static_cast<double>(ix) + 0.5) * binW / static_cast<double>(gridW);
              Sample s{{0, 0, 0, 0}, {0, 0, 0, 0}};
              if (yy < -1.0 || yy > static_cast<double>(height) || xx < -1.0 || xx > static_cast<double>(width)) {
                samples.push_back(s);
                continue;
              }
              double sy = std::max(yy, 0.0), sx = std::max(xx, 0.0);
              auto yLow = static_cast<int64_t>(sy), xLow = static_cast<int64_t>(sx);
              int64_t yHigh = yLow + 1, xHigh = xLow + 1;
              if (yLow >= height - 1) {
                yHigh = yLow = height - 1;
                sy = static_cast<double>(yLow);
              }
              if (xLow >= width - 1) {
                xHigh = xLow = width - 1;
                sx = static_cast<double>(xLow);
              }
              double ly = sy - static_cast<double>(yLow), lx = sx - static_cast<double>(xLow);
              double hy = 1.0 - ly, hx = 1.0 - lx;
              s = Sample{{yLow * width + xLow, yLow * width + xHigh, yHigh * width + xLow, yHigh * width + xHigh},
                         {hy * hx, hy * lx, ly * hx, ly * lx}};
              samples.push_back(s);
            }
          }
        }
      }
      int64_t perBin = gridH * gridW;
      for (int64_t c = 0; c < channels; ++c) {
        const T* plane = x + (batchIndex[static_cast<size_t>(r)] * channels + c) * height * width;
        T* out = y + (r * channels + c) * outPlane;
        for (int64_t bin = 0; bin < outPlane; ++bin) {
          const Sample* s = samples.data() + bin * perBin;
          double v = 0;
          if (!p.maxMode) {
            for (int64_t k = 0; k < perBin; ++k) {
              const Sample& q = s[k];
              v += q.w[0] * static_cast<double>(plane[q.pos[0]]) + q.w[1] * static_cast<double>(plane[q.pos[1]]) +
                   q.w[2] * static_cast<double>(plane[q.pos[2]]) + q.w[3] * static_cast<double>(plane[q.pos[3]]);
            }
            v /= count;
          } else {
            for (int64_t k = 0; k < perBin; ++k) {
              const Sample& q = s[k];
              double m = std::max(std::max(q.w[0] * static_cast<double>(plane[q.pos[0]]),
                                           q.w[1] * static_cast<double>(plane[q.pos[1]])),
                                  std::max(q.w[2] * static_cast<double>(plane[q.pos[2]]),
                                           q.w[3] * static_cast<double>(plane[q.pos[3]])));
              v = k == 0 ? m : std::max(v, m);
            }
          }
          out[bin] = static_cast<T>(v);
        }
      }
    }
  }
}

KernelPtr makeRoiAlign(const KernelCreateInfo& info) {
  RoiParams p{};
  std::string mode = info.node.attrString("mode", "avg");
  if (mode != "avg" && mode != "max") return info.error("mode must be 'avg' or 'max', got '" + mode + "'");
  p.maxMode = mode == "max";
  std::string ctm = info.node.attrString("coordinate_transformation_mode", info.opset >= 16 ? "half_pixel" : "output_half_pixel");
  if (ctm != "half_pixel" && ctm != "output_half_pixel")
    return info.error("coordinate_transformation_mode must be 'half_pixel' or 'output_half_pixel', got '" + ctm + "'");
  p.halfPixel = ctm == "half_pixel";
  p.outH = info.node.attrInt("output_height", 1);
  p.outW = info.node.attrInt("output_width", 1);
  p.samplingRatio = info.node.attrInt("sampling_ratio", 0);
  p.spatialScale = info.node.attrFloat("spatial_scale", 1.0F);
  if (p.outH <= 0 || p.outW <= 0) return info.error("output_height and output_width must be positive");
  if (p.samplingRatio < 0) return info.error("sampling_ratio must be >= 0");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& rois = ctx.input(1);
    if (x.dtype() != ir::DataType::kFloat && x.dtype() != ir::DataType::kDouble)
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) +
                             " is not supported (float32 and float64 are)");
    if (rois.dtype() != x.dtype()) return ctx.error("rois must have the dtype of X");
    if (x.rank() != 4) return ctx.error("X must be 4-D [N, C, H, W], got " + shapeToString(x.dims()));
    if (rois.rank() != 2 || rois.dims()[1] != 4)
      return ctx.error("rois must be [num_rois, 4], got " + shapeToString(rois.dims()));
    WH_ASSIGN_OR_RETURN(auto batch, readInts(ctx.input(2), ctx.describe() + ": batch_indices"));
    if (ctx.input(2).rank() != 1 || static_cast<int64_t>(batch.size()) != rois.dims()[0])
      return ctx.error("batch_indices must be [num_rois] = [" + std::to_string(rois.dims()[0]) + "], got " +
                       shapeToString(ctx.input(2).dims()));
    for (int64_t b : batch) {
      if (b < 0 || b >= x.dims()[0])
        return ctx.error("batch index " + std::to_string(b) + " is outside [0, " + std::to_string(x.dims()[0]) + ")");
    }
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), {rois.dims()[0], x.dims()[1], p.outH, p.outW});
    if (y.numel() == 0) return Status::ok();  // no rois (or no channels)
    if (x.dims()[2] == 0 || x.dims()[3] == 0) return ctx.error("X has an empty spatial axis " + shapeToString(x.dims()));
    if (x.dtype() == ir::DataType::kDouble) {
      roiAlign<double>(x, rois.data<double>(), batch, y.mutableData<double>(), p);
    } else {
      roiAlign<float>(x, rois.data<float>(), batch, y.mutableData<float>(), p);
    }
    return Status::ok();
  });
}

// ---- NonMaxSuppression ----

struct Box {
  float y1, x1, y2, x2, area;
};

struct Candidate {
  float score;
  int64_t index;
};

/// Whether IoU(a, b) > threshold; boxes without area never suppress.
bool suppresses(const Box& a, const Box& b, float threshold) {
  if (a.area <= 0 || b.area <= 0) return false;
  float iy1 = std::max(a.y1, b.y1), ix1 = std::max(a.x1, b.x1);
  float iy2 = std::min(a.y2, b.y2), ix2 = std::min(a.x2, b.x2);
  if (iy2 <= iy1 || ix2 <= ix1) return false;
  float inter = (iy2 - iy1) * (ix2 - ix1);
  float uni = a.area + b.area - inter;
  if (uni <= 0) return false;
  return inter / uni > threshold;
}

KernelPtr makeNonMaxSuppression(const KernelCreateInfo& info) {
  int64_t centerPointBox = info.node.attrInt("center_point_box", 0);
  if (centerPointBox != 0 && centerPointBox != 1)
    return info.error("center_point_box must be 0 or 1, got " + std::to_string(centerPointBox));
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& boxesT = ctx.input(0);
    const ir::Tensor& scoresT = ctx.input(1);
    if (boxesT.dtype() != ir::DataType::kFloat || scoresT.dtype() != ir::DataType::kFloat)
      return ctx.unsupported("boxes and scores must be float32, got " + std::string(ir::dataTypeName(boxesT.dtype())) +
                             " and " + std::string(ir::dataTypeName(scoresT.dtype())));
    if (boxesT.rank() != 3 || boxesT.dims()[2] != 4)
      return ctx.error("boxes must be [batch, spatial, 4], got " + shapeToString(boxesT.dims()));
    if (scoresT.rank() != 3 || scoresT.dims()[0] != boxesT.dims()[0] || scoresT.dims()[2] != boxesT.dims()[1])
      return ctx.error("scores must be [batch, classes, spatial] = [" + std::to_string(boxesT.dims()[0]) + ", C, " +
                       std::to_string(boxesT.dims()[1]) + "], got " + shapeToString(scoresT.dims()));
    int64_t maxPerClass = 0;
    if (ctx.hasInput(2) && ctx.input(2).numel() > 0) {
      WH_ASSIGN_OR_RETURN(auto v, readInts(ctx.input(2), ctx.describe() + ": max_output_boxes_per_class"));
      maxPerClass = std::max<int64_t>(v[0], 0);
    }
    float iouThreshold = 0, scoreThreshold = 0;
    bool hasScoreThreshold = false;
    for (size_t i : {size_t{3}, size_t{4}}) {
      if (!ctx.hasInput(i) || ctx.input(i).numel() == 0) continue;
      if (ctx.input(i).dtype() != ir::DataType::kFloat)
        return ctx.error(std::string(i == 3 ? "iou_threshold" : "score_threshold") + " must be float32");
      float v = ctx.input(i).data<float>()[0];
      if (i == 3) {
        iouThreshold = v;
      } else {
        scoreThreshold = v;
        hasScoreThreshold = true;
      }
    }
    if (iouThreshold < 0 || iouThreshold > 1)
      return ctx.error("iou_threshold must be in [0, 1], got " + std::to_string(iouThreshold));
    int64_t batches = boxesT.dims()[0], spatial = boxesT.dims()[1], classes = scoresT.dims()[1];
    const float* boxData = boxesT.data<float>();
    const float* scoreData = scoresT.data<float>();
    std::vector<int64_t> selected;  // (batch, class, box) triples
    if (maxPerClass > 0 && spatial > 0) {
      std::vector<Box> boxes(static_cast<size_t>(spatial));
      std::vector<Candidate> heap;
      std::vector<int64_t> kept;
      std::vector<Box> keptBoxes;
      for (int64_t b = 0; b < batches; ++b) {
        for (int64_t i = 0; i < spatial; ++i) {
          const float* q = boxData + (b * spatial + i) * 4;
          Box box{};
          if (centerPointBox == 1) {
            box = {q[1] - q[3] / 2, q[0] - q[2] / 2, q[1] + q[3] / 2, q[0] + q[2] / 2, 0};
          } else {
            box = {std::min(q[0], q[2]), std::min(q[1], q[3]), std::max(q[0], q[2]), std::max(q[1], q[3]), 0};
          }
          box.area = (box.y2 - box.y1) * (box.x2 - box.x1);
          boxes[static_cast<size_t>(i)] = box;
        }
        for (int64_t c = 0; c < classes; ++c) {
          const float* s = scoreData + (b * classes + c) * spatial;
          // A max-heap of the candidates, popped only as far as the budget needs: detector
          // exports have thousands of candidates per class and keep ~100 (sorting all dominated).
          heap.clear();
          for (int64_t i = 0; i < spatial; ++i) {
            if (!hasScoreThreshold || s[i] > scoreThreshold) heap.push_back({s[i], i});
          }
          auto lower = [](const Candidate& l, const Candidate& r) {
            return l.score < r.score || (l.score == r.score && l.index > r.index);  // ties: lower index first
          };
          std::make_heap(heap.begin(), heap.end(), lower);
          kept.clear();
          keptBoxes.clear();  // beside `kept`, contiguous for the IoU loop
          while (!heap.empty() && static_cast<int64_t>(kept.size()) < maxPerClass) {
            std::pop_heap(heap.begin(), heap.end(), lower);
            int64_t i = heap.back().index;
            heap.pop_back();
            const Box& cand = boxes[static_cast<size_t>(i)];
            bool drop = false;
            for (const Box& k : keptBoxes) {
              if (suppresses(k, cand, iouThreshold)) {
                drop = true;
                break;
              }
            }
            if (!drop) {
              kept.push_back(i);
              keptBoxes.push_back(cand);
            }
          }
          for (int64_t k : kept) selected.insert(selected.end(), {b, c, k});
        }
      }
    }
    auto rows = static_cast<int64_t>(selected.size() / 3);
    int64_t* out = ctx.allocateOutput(0, ir::DataType::kInt64, {rows, 3}).mutableData<int64_t>();
    std::copy(selected.begin(), selected.end(), out);
    return Status::ok();
  });
}

}  // namespace

void registerDetectionKernels(KernelRegistry& registry) {
  registry.add("", "RoiAlign", 10, makeRoiAlign);
  registry.add("", "NonMaxSuppression", 10, makeNonMaxSuppression);
}

}  // namespace whittle::runtime::cpu
