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
/// Sequence and optional ops (Sequence*, SplitToSequence, ConcatFromSequence, Optional*) and
/// ai.onnx.ml ZipMap, on runtime Values.
void registerSequenceKernels(KernelRegistry& registry);

}  // namespace whittle::runtime::cpu
