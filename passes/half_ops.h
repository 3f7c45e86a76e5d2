#pragma once
// The op types convert-fp16 / convert-bf16 keep in float32: the one place these lists live.
// The pass's block-ops option defaults to kHalfBlockOps (passes/pass_options.h); the pass
// itself always keeps kHalfFixedFloatOps (passes/convert_half.cpp); tests read both.

#include <array>
#include <string_view>

namespace whittle::passes {

/// Kept float32 by default (block-ops; a user may name another list): ops whose results go
/// wrong in 16 bits. Resize and RoiAlign compute sampling coordinates from the data type,
/// TopK and NonMaxSuppression rank values that half precision ties, Range counts in the data
/// type (float16 integers stop at 2048), CumSum accumulates a running sum.
inline constexpr auto kHalfBlockOps = std::to_array<std::string_view>({"Resize", "TopK", "NonMaxSuppression",
                                                                          "Range", "CumSum", "RoiAlign"});

/// Always kept float32, whatever block-ops says, so that the emitted model is valid and runs
/// in ONNX Runtime's CPU provider:
/// - ops whose type constraints or attributes fix the float type (quantization, random
///   generators, EyeLike, the window and mel-matrix generators, TfIdfVectorizer);
/// - control flow (If, Loop, Scan; and any node with a subgraph): the bodies are kept as they
///   are, float32, and so are the values they read from the enclosing graph (see convert_half.cpp);
/// - sequence and optional ops, whose element types whittle does not rewrite;
/// - the recurrent ops LSTM, GRU and RNN: ONNX Runtime's CPU provider registers no float16
///   kernel for them (nor bfloat16), and their state accumulates error over every time step;
/// - DFT and STFT: ONNX Runtime's CPU provider has float and double kernels only (a log-mel
///   front end such as onnx-asr's came out of the pass unrunnable in both runtimes), and a
///   512-point sum in float16 loses the small bins.
/// (A ScatterElements/ScatterND with a reduction is kept too, by its attribute: convert_half.cpp.)
inline constexpr auto kHalfFixedFloatOps = std::to_array<std::string_view>({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
    "MatMulInteger", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
    "Multinomial", "EyeLike", "HannWindow", "HammingWindow", "BlackmanWindow", "MelWeightMatrix", "TfIdfVectorizer",
    "If", "Loop", "Scan", "SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceAt", "SequenceErase",
    "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement", "LSTM", "GRU",
    "RNN", "DFT", "STFT"});

}  // namespace whittle::passes
