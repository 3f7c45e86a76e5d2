#pragma once
// The options of every pass that takes any, declared once: each struct's declare() gives every
// field its option name, type, default, help and admitted values (include/whittle/passes/options.h).
// passes/passes.def names the struct of each pass; the registry parses pipeline text into it and
// hands it to the pass's factory, and `whittle optimize --list-passes` prints these declarations.
// No other file holds a pass option's default. The fields carry no initializers: a struct comes
// from declare().parse() (what the registry does) or declare().defaults().

#include <cstdint>
#include <string>
#include <vector>

#include "half_ops.h"
#include "whittle/passes/options.h"
#include "whittle/passes/upgrade_opset.h"

namespace whittle::passes {

struct InitializersToConstantsOptions {
  bool keep;
  static const OptionList<InitializersToConstantsOptions>& declare() {
    using S = InitializersToConstantsOptions;
    static const auto list =
        OptionList<S>().flag(&S::keep, "keep", false, "keep the inputs (what --keep-initializer-inputs sets)");
    return list;
  }
};

struct FoldConstantsOptions {
  int64_t maxGrowthBytes;
  static const OptionList<FoldConstantsOptions>& declare() {
    using S = FoldConstantsOptions;
    static const auto list = OptionList<S>().integer(&S::maxGrowthBytes, "max-growth-bytes", 1 << 20,
                                                     "skip folds that grow the model by more than this",
                                                     OptionRange::atLeast(0));
    return list;
  }
};

struct UpgradeOpsetOptions {
  int64_t to;
  static const OptionList<UpgradeOpsetOptions>& declare() {
    using S = UpgradeOpsetOptions;
    static const auto list = OptionList<S>().integer(
        &S::to, "to", kNewestOpset,
        "the opset to reach (7 to 21, the newest whittle runs); models already there are left alone",
        OptionRange::closed(static_cast<double>(onnx_io::kMinOpset), static_cast<double>(kNewestOpset)));
    return list;
  }
};

/// The selection options both quantization passes take, declared for either struct.
template <typename S>
OptionList<S>& declareQuantizeSelection(OptionList<S>& list, const std::string& opTypesHelp) {
  return list.flag(&S::reduceRange, "reduce-range", false, "7-bit weights, for CPUs without VNNI")
      .list(&S::opTypes, "op-types", {}, opTypesHelp)
      .list(&S::excludeOpTypes, "exclude-op-types", {}, "never these op types, ';'-separated")
      .list(&S::excludeNodes, "exclude-nodes", {}, "never these nodes: names or regular expressions, ';'-separated");
}

struct QuantizeInt8Options {
  std::string method;
  double p;
  bool perChannel;
  std::string format;
  std::string activationType;
  bool reduceRange;
  std::vector<std::string> opTypes;
  std::vector<std::string> excludeOpTypes;
  std::vector<std::string> excludeNodes;
  std::vector<std::string> floatNodes;
  std::string overrides;
  static const OptionList<QuantizeInt8Options>& declare() {
    using S = QuantizeInt8Options;
    static const auto list = [] {
      OptionList<S> l;
      l.oneOf(&S::method, "method", "minmax", {"minmax", "percentile", "entropy", "mse"}, "range from calibration")
          .real(&S::p, "p", 99.99, "the percentile, when method is percentile", OptionRange::openClosed(50, 100))
          .flag(&S::perChannel, "per-channel", true, "int8 weights per output channel (false: per tensor)")
          .oneOf(&S::format, "format", "qdq", {"qdq", "qoperator"},
                 "QuantizeLinear/DequantizeLinear pairs, or QLinearConv, QLinearMatMul, com.microsoft QLinearAdd, ...")
          .oneOf(&S::activationType, "activation-type", "uint8", {"uint8", "int8"},
                 "activations: uint8 asymmetric or int8 symmetric");
      declareQuantizeSelection(l, "only these op types, ';'-separated (empty: all supported)")
          .list(&S::floatNodes, "float-nodes", {},
                "these nodes stay float and so do their outputs, up to the next nodes with weights (which read "
                "them in float, weights still int8): exact names, ';'-separated")
          .text(&S::overrides, "overrides", "",
                "JSON file of per-tensor overrides: {tensor: {range | scale, zero_point, dtype}}");
      return l;
    }();
    return list;
  }
};

struct QuantizeDynamicOptions {
  bool perChannel;
  bool reduceRange;
  std::vector<std::string> opTypes;
  std::vector<std::string> excludeOpTypes;
  std::vector<std::string> excludeNodes;
  bool lstm;
  int64_t keepSensitive;
  std::string keepFormat;
  int64_t sensitivitySamples;
  int64_t sensitivityCandidates;
  static const OptionList<QuantizeDynamicOptions>& declare() {
    using S = QuantizeDynamicOptions;
    static const auto list = [] {
      OptionList<S> l;
      l.flag(&S::perChannel, "per-channel", true, "int8 weights per output column (false: per tensor)");
      l.flag(&S::lstm, "lstm", false,
             "write each LSTM with constant weights as ONNX Runtime's com.microsoft DynamicQuantizeLSTM (int8 W and R, "
             "as ORT's quantize_dynamic does; runs in ONNX Runtime and whittle, not standard ONNX)");
      declareQuantizeSelection(l, "only these op types (MatMul, Gemm, LSTM), ';'-separated");
      l.integer(&S::keepSensitive, "keep-sensitive", 0,
                "keep the K MatMul/Gemm whose W8A8 costs the model's outputs most on the calibration data out of "
                "W8A8 (ranked by the modeled per-layer error, then the top candidates by the measured end-to-end "
                "error; needs --calib)",
                OptionRange::closed(0, 1 << 20))
          .oneOf(&S::keepFormat, "keep-format", "matmulnbits", {"matmulnbits", "qdq", "float"},
                 "what the kept ones become: 8-bit weight-only (com.microsoft MatMulNBits, or opset-21 block-wise "
                 "DequantizeLinear, blocks of 128), or float")
          .integer(&S::sensitivitySamples, "sensitivity-samples", 2,
                   "calibration samples the end-to-end error of keep-sensitive is measured on", OptionRange::closed(1, 1 << 20))
          .integer(&S::sensitivityCandidates, "sensitivity-candidates", 0,
                   "how many of the modeled ranking's top are measured end to end (0: 3 x keep-sensitive)",
                   OptionRange::closed(0, 1 << 20));
      return l;
    }();
    return list;
  }
};

struct SmoothQuantOptions {
  std::string alpha;
  int64_t grid;
  bool explicitMul;
  std::vector<std::string> excludeNodes;
  static const OptionList<SmoothQuantOptions>& declare() {
    using S = SmoothQuantOptions;
    static const auto list =
        OptionList<S>()
            .text(&S::alpha, "alpha", "auto",
                  "migration strength in [0, 1] for every layer input (0.5 in the paper), or auto: searched per "
                  "input for the smallest modeled W8A8 error, leaving an input alone where smoothing does not help")
            .integer(&S::grid, "grid", 20, "the alpha candidates when searching: 0, 1/grid, ..., 1", OptionRange::closed(1, 1000))
            .flag(&S::explicitMul, "explicit-mul", true,
                  "smooth an input that no constant producer can absorb (RMSNorm/LayerNorm weight, a MatMul weight), "
                  "or that other ops read too, with an explicit Mul on the MatMul branch; false: leave it")
            .list(&S::excludeNodes, "exclude-nodes", {}, "never these MatMul/Gemm nodes: names or regular expressions, ';'-separated");
    return list;
  }
};

struct QuantizeWeightsOptions {
  int64_t bits;
  int64_t block;
  bool symmetric;
  std::string method;
  std::string format;
  bool embeddings;
  int64_t embeddingBits;
  std::string clipSearch;
  double dampPercent;
  bool actOrder;
  int64_t gptqBlock;
  int64_t awqGrid;
  int64_t accuracyLevel;
  std::vector<std::string> opTypes;
  std::vector<std::string> excludeOpTypes;
  std::vector<std::string> excludeNodes;
  std::vector<std::string> nodes;
  static const OptionList<QuantizeWeightsOptions>& declare() {
    using S = QuantizeWeightsOptions;
    static const auto list =
        OptionList<S>()
            .integer(&S::bits, "bits", 4, "bits per weight: 4 or 8", OptionRange::closed(4, 8))
            .integer(&S::block, "block", 128,
                     "weights per block along the reduction axis: a power of two >= 16 (0: one block per output "
                     "channel, 8-bit only); a block that does not divide K leaves the last block short",
                     OptionRange::closed(0, 1 << 20))
            .flag(&S::symmetric, "symmetric", true, "symmetric blocks (no zero point); false: a zero point per block")
            .oneOf(&S::method, "method", "rtn", {"rtn", "gptq", "awq"},
                   "round to nearest; GPTQ (Hessian error compensation); AWQ (activation-aware scales); gptq and awq "
                   "need --calib")
            .oneOf(&S::format, "format", "qdq", {"qdq", "matmulnbits"},
                   "opset-21 DequantizeLinear with block_size (portable), or com.microsoft MatMulNBits / "
                   "GatherBlockQuantized (ONNX Runtime)")
            .flag(&S::embeddings, "embeddings", true, "quantize Gather embedding tables too (blocks along the hidden axis)")
            .integer(&S::embeddingBits, "embedding-bits", 0,
                     "bits of a weight read by a Gather (embedding tables, tied LM heads included) and of an LM head "
                     "untied by rotate-residual (a graph output's MatMul on a table-shaped weight): 4 or 8; 0: bits",
                     OptionRange::closed(0, 8))
            .oneOf(&S::clipSearch, "clip-search", "auto", {"auto", "true", "false"},
                   "search each block's clipping for the smallest error; auto: only where --calib weights the "
                   "error by the layer's inputs (unweighted, the search clips the few large weights that matter)")
            .real(&S::dampPercent, "damp-percent", 0.01, "GPTQ: dampening, a fraction of the mean Hessian diagonal",
                  OptionRange::closed(0, 1))
            .flag(&S::actOrder, "act-order", true, "GPTQ: quantize input channels in decreasing Hessian diagonal")
            .integer(&S::gptqBlock, "gptq-block", 128, "GPTQ: input channels per lazy batch update", OptionRange::atLeast(1))
            .integer(&S::awqGrid, "awq-grid", 20, "AWQ: grid points of the scale exponent alpha in [0, 1)",
                     OptionRange::closed(1, 1000))
            .integer(&S::accuracyLevel, "accuracy-level", 0,
                     "MatMulNBits accuracy_level (0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations)",
                     OptionRange::closed(0, 4))
            .list(&S::opTypes, "op-types", {}, "only these op types (MatMul, Gemm, Gather), ';'-separated")
            .list(&S::excludeOpTypes, "exclude-op-types", {}, "never these op types, ';'-separated")
            .list(&S::excludeNodes, "exclude-nodes", {}, "never these nodes: names or regular expressions, ';'-separated")
            .list(&S::nodes, "nodes", {}, "only these nodes (empty: all): names or regular expressions, ';'-separated");
    return list;
  }
};

/// convert-fp16 and convert-bf16 (one struct, one declaration).
struct ConvertHalfOptions {
  bool keepIoTypes;
  std::vector<std::string> blockOps;
  std::vector<std::string> blockNodes;
  int64_t longReduction;
  double tolerance;
  int64_t toleranceSamples;
  static const OptionList<ConvertHalfOptions>& declare() {
    using S = ConvertHalfOptions;
    static const auto list =
        OptionList<S>()
            .flag(&S::keepIoTypes, "keep-io-types", true,
                  "keep the model's float32 inputs/outputs, with one Cast at each edge")
            .list(&S::blockOps, "block-ops", {kHalfBlockOps.begin(), kHalfBlockOps.end()},
                  "op types kept in float32, ';'-separated (control flow, RNNs and quantization always are)")
            .list(&S::blockNodes, "block-nodes", {}, "node names kept in float32, ';'-separated")
            .integer(&S::longReduction, "long-reduction", 4096,
                     "ReduceSum/Mean/Prod/L1/L2/SumSquare/LogSum/LogSumExp over more elements (or unknown) stay float32",
                     OptionRange::atLeast(0))
            .real(&S::tolerance, "tolerance", 0,
                  "> 0: mixed precision: nodes whose half output error (max |err| / max |x| on calibration samples, "
                  "--calib) crosses it stay float32",
                  OptionRange::atLeast(0))
            .integer(&S::toleranceSamples, "tolerance-samples", 8, "calibration samples the tolerance is measured on, and (float16, whenever --calib is given) the range check that keeps nodes whose values pass 8192 in float32",
                     OptionRange::atLeast(1));
    return list;
  }
};

/// The layers both unstructured pruning passes leave dense, declared for either struct.
template <typename S>
OptionList<S>& declarePruneExclusions(OptionList<S>& list) {
  return list.flag(&S::excludeFirstLast, "exclude-first-last", true, "leave the first and the last prunable layers dense")
      .flag(&S::excludeDepthwise, "exclude-depthwise", true, "leave depthwise convolutions dense");
}

struct PruneMagnitudeOptions {
  double sparsity;
  std::string scope;
  bool excludeFirstLast;
  bool excludeDepthwise;
  static const OptionList<PruneMagnitudeOptions>& declare() {
    using S = PruneMagnitudeOptions;
    static const auto list = [] {
      OptionList<S> l;
      l.real(&S::sparsity, "sparsity", 0.5, "fraction of the weights to zero, reached exactly", OptionRange::closed(0, 1))
          .oneOf(&S::scope, "scope", "layer", {"layer", "global"},
                 "layer: that fraction in every layer; global: one threshold across the layers");
      return declarePruneExclusions(l);
    }();
    return list;
  }
};

struct PruneNmOptions {
  int64_t n;
  int64_t m;
  static const OptionList<PruneNmOptions>& declare() {
    using S = PruneNmOptions;
    static const auto list =
        OptionList<S>()
            .integer(&S::n, "n", 2, "nonzero weights kept in every group (at most m)", OptionRange::atLeast(0))
            .integer(&S::m, "m", 4, "group size along the reduction axis", OptionRange::atLeast(1));
    return list;
  }
};

struct PruneChannelsOptions {
  double ratio;
  std::string norm;
  static const OptionList<PruneChannelsOptions>& declare() {
    using S = PruneChannelsOptions;
    static const auto list =
        OptionList<S>()
            .real(&S::ratio, "ratio", 0.3, "fraction of each prunable Conv's output channels to remove",
                  OptionRange::closedOpen(0, 1))
            .oneOf(&S::norm, "norm", "l1", {"l1", "l2"}, "channel importance: the norm of its weights");
    return list;
  }
};

struct PruneWandaOptions {
  double sparsity;
  std::string scope;
  bool excludeFirstLast;
  bool excludeDepthwise;
  static const OptionList<PruneWandaOptions>& declare() {
    using S = PruneWandaOptions;
    static const auto list = [] {
      OptionList<S> l;
      l.real(&S::sparsity, "sparsity", 0.5, "fraction of the weights to zero, reached exactly", OptionRange::closed(0, 1))
          .oneOf(&S::scope, "scope", "output", {"output", "layer"},
                 "output: that fraction in every output's weights (the paper); layer: across each layer");
      return declarePruneExclusions(l);
    }();
    return list;
  }
};

struct RotateResidualOptions {
  std::string rotation;
  int64_t seed;
  static const OptionList<RotateResidualOptions>& declare() {
    using S = RotateResidualOptions;
    static const auto list =
        OptionList<S>()
            .oneOf(&S::rotation, "rotation", "hadamard", {"hadamard", "random"},
                   "randomized Hadamard (falls back to random, with a warning, where the hidden size has no "
                   "Sylvester x Paley Hadamard matrix) or the Q of a Gaussian matrix's QR")
            .integer(&S::seed, "seed", 0, "seed of the random signs / Gaussian matrix", OptionRange::atLeast(0));
    return list;
  }
};

}  // namespace whittle::passes
