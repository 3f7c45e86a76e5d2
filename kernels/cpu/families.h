#pragma once
// The CPU kernel families; kernels/cpu/registry.cpp calls each once.

namespace whittle::runtime {
class KernelRegistry;
}  // namespace whittle::runtime

namespace whittle::runtime::cpu {

/// Unary and binary elementwise ops with broadcasting, activations, Cast, Where, comparisons.
void registerElementwiseKernels(KernelRegistry& registry);
/// Reshape, Transpose, Concat, Split, Slice, Gather, Expand, Shape, Pad, Resize, ...
void registerShapeKernels(KernelRegistry& registry);
/// Conv and ConvTranspose on oneDNN.
void registerConvKernels(KernelRegistry& registry);
/// MaxPool, AveragePool, global pools, LRN, BatchNormalization on oneDNN.
void registerPoolKernels(KernelRegistry& registry);
/// Gemm and MatMul on oneDNN.
void registerMatMulKernels(KernelRegistry& registry);
/// com.microsoft MatMulNBits and GatherBlockQuantized: low-bit weight-only kernels.
void registerMatMulNBitsKernels(KernelRegistry& registry);
/// Softmax, LogSoftmax, LayerNormalization, InstanceNormalization.
void registerNormalizationKernels(KernelRegistry& registry);
/// ReduceMean/Sum/Max/Min/Prod/L1/L2/LogSumExp/SumSquare, ArgMax/ArgMin.
void registerReductionKernels(KernelRegistry& registry);
/// LSTM, GRU and RNN (float32; float16 and bfloat16 widened).
void registerRecurrentKernels(KernelRegistry& registry);
/// QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul, MatMulInteger, ConvInteger,
/// DynamicQuantizeLinear and the com.microsoft QLinear ops.
void registerQuantKernels(KernelRegistry& registry);
/// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (loss.cpp).
void registerLossKernels(KernelRegistry& registry);
/// GridSample and AffineGrid (grid_sample.cpp).
void registerGridSampleKernels(KernelRegistry& registry);
/// Col2Im and DeformConv (col2im_deform_conv.cpp).
void registerCol2ImKernels(KernelRegistry& registry);
/// RoiAlign and NonMaxSuppression (detection.cpp).
void registerDetectionKernels(KernelRegistry& registry);
/// Einsum (einsum.cpp).
void registerEinsumKernels(KernelRegistry& registry);
/// Compress, Unique and CenterCropPad (selection.cpp).
void registerSelectionKernels(KernelRegistry& registry);
/// Det and Shrink (math_misc.cpp).
void registerMathMiscKernels(KernelRegistry& registry);

/// BitwiseAnd, BitwiseOr, BitwiseXor, BitwiseNot on the integer dtypes.
void registerBitwiseKernels(KernelRegistry& registry);
/// DFT, STFT, HannWindow, HammingWindow, BlackmanWindow, MelWeightMatrix.
void registerSignalKernels(KernelRegistry& registry);
/// ai.onnx.preview.training Adagrad, Adam, Momentum.
void registerTrainingKernels(KernelRegistry& registry);
/// RandomUniform, RandomNormal, RandomUniformLike, RandomNormalLike, Bernoulli.
void registerRandomKernels(KernelRegistry& registry);
/// StringConcat, StringSplit, StringNormalizer, RegexFullMatch.
void registerStringKernels(KernelRegistry& registry);
/// TfIdfVectorizer.
void registerTfIdfKernels(KernelRegistry& registry);
/// ai.onnx.ml LabelEncoder, ArrayFeatureExtractor, Binarizer, LinearClassifier, Normalizer, LinearRegressor, Scaler.
void registerMlKernels(KernelRegistry& registry);
/// ai.onnx.ml TreeEnsembleClassifier and TreeEnsembleRegressor (opsets 1 and 3) and TreeEnsemble (opset 5).
void registerMlTreeKernels(KernelRegistry& registry);
/// ai.onnx.ml SVMRegressor and SVMClassifier.
void registerMlSvmKernels(KernelRegistry& registry);
/// ImageDecoder (JPEG, PNG, BMP, PNM, TIFF, WebP, JPEG 2000).
void registerImageDecoderKernels(KernelRegistry& registry);
/// The com.microsoft ops of ONNX Runtime's transformer optimizer: Gelu, BiasGelu, FastGelu, QuickGelu,
/// SkipLayerNormalization, (Skip)SimplifiedLayerNormalization, FusedMatMul, RotaryEmbedding, Attention,
/// MultiHeadAttention (kernels/cpu/transformer*.cpp).
void registerTransformerKernels(KernelRegistry& registry);
/// The opset-23 RMSNormalization and RotaryEmbedding (rms_rotary.cpp).
void registerRmsRotaryKernels(KernelRegistry& registry);
/// The opset-23/24 Attention (attention_onnx.cpp).
void registerOnnxAttentionKernels(KernelRegistry& registry);
/// Sequence and optional ops (Sequence*, SplitToSequence, ConcatFromSequence, Optional*) and
/// ai.onnx.ml ZipMap, on runtime Values.
void registerSequenceKernels(KernelRegistry& registry);

}  // namespace whittle::runtime::cpu
