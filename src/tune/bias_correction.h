#pragma once
// Bias correction (the fast, data-based variant): a quantized Conv/Gemm computes, on average
// over the calibration data, a slightly different output than the float one, because its
// weights are rounded (W_q - W) and its input is rounded and clipped (DQ(Q(x)) - x). Both shifts
// are linear in the per-channel means of the float input, so one calibration run over the float
// model gives each layer's mean output shift
//     delta[o] = sum_{i,k} (W_q - W)[o, i, k] * mean(x_i) + W_q[o, i, k] * mean(DQ(Q(x_i)) - x_i)
// (i over the input channels of o's group, k over the kernel), and the bias becomes b - delta.
// Each layer is corrected for its own rounding, measured with float inputs, so the corrections
// do not depend on one another (no layer-by-layer re-run). Zero padding at the borders is not
// modelled (the shift is the interior one).
//
// It runs on the QDQ model quantize-int8 wrote: the weights are read back from their
// DequantizeLinear, the float weights from the float model (by node name), and the bias is
// rewritten where it is (int32 DequantizeLinear, or a float constant when the layer reads a
// float input).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/quant/calibration.h"

namespace whittle::tune {

/// One quantized Conv/Gemm whose bias can be corrected.
struct BiasSite {
  std::string node;         ///< its name (the same in the float and the quantized model)
  std::string floatInput;   ///< its input tensor in the float model
  int64_t channels = 0;     ///< input channels (axis 1 of the input)
  bool inputQuantized = false;
  float scale = 1;          ///< the input's quantization, when inputQuantized
  int32_t zeroPoint = 0;
  int32_t qmin = 0, qmax = 0;
};

/// The Conv (group any) and Gemm (transA 0, alpha 1) nodes of `quantized` with int8 weights
/// from a DequantizeLinear, a bias, and a float twin of the same name in `floatModel`.
std::vector<BiasSite> biasSites(const ir::Model& quantized, const ir::Model& floatModel);

/// Per input channel (axis 1): the mean of x and of DQ(Q(x)) - x under one quantization.
class ChannelMeanCollector final : public quant::TensorCollector {
 public:
  explicit ChannelMeanCollector(const BiasSite& site);
  Status collect(const std::string& name, const ir::Tensor& value, int64_t samples) override;
  std::vector<double> mean() const;
  std::vector<double> roundingMean() const;
  const BiasSite& site() const { return site_; }

 private:
  BiasSite site_;
  std::vector<double> sum_, roundSum_;
  int64_t count_ = 0;  ///< elements per channel seen
};

/// The measured input means of a site.
struct SiteMoments {
  BiasSite site;
  std::vector<double> mean;          ///< mean x per input channel
  std::vector<double> roundingMean;  ///< mean DQ(Q(x)) - x (zeros when the input is float)
};

/// Runs the float model over the provider's calibration data once and measures every site.
Expected<std::map<std::string, SiteMoments>> measureSites(const ir::Model& floatModel, const std::vector<BiasSite>& sites,
                                                          quant::CalibrationProvider& provider);

struct BiasCorrectionStats {
  int64_t corrected = 0;      ///< biases rewritten
  int64_t weightOnly = 0;     ///< of them, without the input term (the input is float, or quantized otherwise than measured)
  double meanAbsShift = 0;    ///< mean |delta| over the corrected channels
};

/// Rewrites the bias of every node of `quantized` named in `moments` (a QDQ model of
/// `floatModel`) by its mean output shift. A node whose input is quantized with another scale
/// than measured, or not at all, gets the weight term only.
Expected<BiasCorrectionStats> correctBiases(ir::Model& quantized, const ir::Model& floatModel,
                                            const std::map<std::string, SiteMoments>& moments);

}  // namespace whittle::tune
