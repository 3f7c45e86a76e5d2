#pragma once
// The user's detection decoder (--detections DECODER.onnx, the --min-box-f1 budget): an ONNX
// graph that reads some of the model's outputs (by name) and returns the decoded detections,
// boxes [N, 4] (corners) and scores [N], and optionally classes [N], in that order. The tuner
// runs it on whittle's runtime, one evaluation sample at a time, on the float model's outputs
// and on each trial's, and matches the boxes (eval::BoxF1Accumulator): the measure a detector's
// own post-processing (thresholds, NMS, anchors) defines, which a count of scores or peaks cannot
// see (CenterFace's near-duplicates that NMS lets through).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/eval/metrics.h"
#include "whittle/runtime/session.h"

namespace whittle::tune {

class DetectionDecoder {
 public:
  /// Loads the graph at `path` and checks it against the model's outputs: each decoder input is
  /// an output of the model (`outputNames`) and float; the decoder has two or three outputs whose
  /// declared ranks (when declared) are 2 (boxes, last dim 4 when known), 1 and 1. Errors name
  /// the file and the tensor.
  static Expected<std::unique_ptr<DetectionDecoder>> load(const std::string& path,
                                                          const std::vector<std::string>& outputNames);

  /// The model outputs the decoder reads (indices into outputNames).
  const std::vector<size_t>& reads() const { return reads_; }
  const std::string& path() const { return path_; }

  /// Decodes sample `sample` of a batch: `outputs[k]` holds output k's real elements (the
  /// samples of the batch, each numel / rows of the run's `dims[k]`). With one row the whole
  /// output is the sample, whatever its shape; with more, an output the decoder reads must have
  /// the batch on its first axis (dims[k][0] == rows), and the decoder sees [1, ...] of it.
  Expected<eval::Detections> decode(const std::vector<std::vector<float>>& outputs,
                                    const std::vector<std::vector<int64_t>>& dims, int64_t rows, int64_t sample);

 private:
  std::string path_;
  std::vector<size_t> reads_;
  std::vector<std::string> inputNames_;
  std::vector<std::string> outputNames_;  ///< the decoder's own: boxes, scores[, classes]
  std::unique_ptr<runtime::Session> session_;
};

}  // namespace whittle::tune
