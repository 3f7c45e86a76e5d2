#pragma once
// The CPU lowering: rewrites of a session's private copy of the graph into ops that only the
// CPU runtime knows (domain com.whittle.internal). These never reach an emitted model.

#include <string>
#include <unordered_set>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"

namespace whittle::runtime {

/// Rewrites the quantized groups of a QDQ model (DQ -> Conv/MatMul/Add/Mul/pools/Concat -> Q,
/// and data-movement ops between a DQ and a Q with the same parameters) into the QOperator
/// ops that the int8 kernels run (QLinearConv, QLinearMatMul, com.microsoft QLinearAdd, ...),
/// then turns every DequantizeLinear of a constant into a float constant. Values in `keep`
/// survive unchanged. Groups that do not fit are left as they are (float simulation).
void lowerQdqGroups(ir::Graph& graph, const std::vector<std::string>& keep = {});

/// The first step of lowerQdqGroups (src/runtime/lower_qdq_lookup.cpp): a chain of element-wise
/// float ops (Sigmoid, HardSwish, LeakyRelu, x*sigmoid(x), Add/Clip/Div/Mul with one-element
/// constants, inner Q/DQ pairs, ...) between DequantizeLinear nodes of one uint8/int8 tensor and
/// a QuantizeLinear becomes com.whittle.internal QLinearLookup(x, table): 256 output codes, one
/// per byte of x, computed from the chain (inner Q/DQ rounded as their kernels round). Values in
/// `keep` survive. Returns how many chains were rewritten.
int64_t lowerQdqLookups(ir::Graph& graph, const std::unordered_set<const ir::Value*>& keep = {});

/// The second step of lowerQdqGroups (src/runtime/lower_qdq_prelu.cpp): Q(PRelu(DQ(xq), slope)),
/// per-tensor Q and DQ and a float constant slope of one value per channel (axis 1), becomes
/// com.whittle.internal QLinearPRelu(xq, xs, xz, slope, ys, yz), equal to the group run node by
/// node. Values in `keep` survive. Returns how many were rewritten.
int64_t lowerQdqPRelus(ir::Graph& graph, const std::unordered_set<const ir::Value*>& keep = {});

/// A step of lowerQdqGroups, after the groups (src/runtime/lower_qdq_gemm.cpp): Gemm (transA 0)
/// or 2-D MatMul of DequantizeLinear(uint8/int8 activation, per tensor) by DequantizeLinear(constant
/// uint8/int8 weight, per tensor or per output column), float bias or int32 DequantizeLinear bias,
/// becomes com.microsoft QGemm: float output, or quantized when a per-tensor QuantizeLinear is
/// the output's only reader (it joins). Values in `keep` survive. Returns how many were rewritten.
int64_t lowerQdqGemms(ir::Graph& graph, const std::unordered_set<const ir::Value*>& keep = {});

/// Rewrites MatMul(a, DequantizeLinear(q, s, z; axis 0, block_size)) with a constant
/// int4/uint4/int8/uint8 q [K, N] into com.microsoft MatMulNBits, which the low-bit kernel
/// runs with q kept packed (src/runtime/lower_nbits.cpp). Values in `keep` stay.
void lowerBlockwiseWeights(ir::Graph& graph, const std::vector<std::string>& keep = {});

/// Step E of lowerForCpu: Gather (along any axis but the last) from DequantizeLinear(q, s, z;
/// axis = last, block_size) of a constant int4/uint4/int8/uint8 table becomes com.microsoft
/// GatherBlockQuantized, which dequantizes only the gathered rows, instead of the whole table on
/// every run (src/runtime/lower_gather_blockwise.cpp). Values in `keep` stay. Returns the
/// Gathers rewritten.
int64_t lowerBlockwiseGathers(ir::Graph& graph, const std::vector<std::string>& keep = {});

/// Step R of lowerForCpu: Reshape, Squeeze, Unsqueeze and Flatten of a constant with constant
/// shape operands become initializers sharing the constant's buffer (Paddle2ONNX reshapes
/// every Conv bias to [1, C, 1, 1] at run time); Transpose of a constant becomes the
/// transposed initializer (jax2tf transposes Conv weights at run time, which kept the Conv
/// from packing them once), ConstantOfShape of a constant shape the filled initializer (up to
/// 512 MiB; the onnx package's "light" models make every weight so), Slice and Concat of
/// constants with constant operands the copied initializer (silero-vad slices and re-joins its
/// LSTM gates inside an If branch). One pass in graph order, so chains fold. Returns how many
/// went (src/runtime/lower_elementwise.cpp).
int64_t foldConstantReshapes(ir::Graph& graph, const std::vector<std::string>& keep = {});

/// Step A of lowerForCpu: Add, Sub, Mul or Div of a float32 Conv or ConvTranspose output (its
/// only reader) and a constant that is a scalar or one value per output channel, folded into
/// the Conv's bias (and, for Mul and Div, its weights), in double and rounded once; down a
/// chain (Conv -> Mul -> Add). Division by zero is left alone. Returns the folds made.
int64_t foldConvAffine(ir::Graph& graph, const std::vector<std::string>& keep = {});

/// Step B of lowerForCpu: the same for an inference BatchNormalization (not after a Conv: the
/// pre-activation BN of a DenseNet) followed by per-channel constant Add/Sub/Mul/Div, folded
/// into its scale and bias. Returns the folds made.
int64_t foldBatchNormAffine(ir::Graph& graph, const std::vector<std::string>& keep = {});

/// Step N of lowerForCpu: an inference BatchNormalization (float32, only output Y) whose only
/// reader is a Relu becomes com.whittle.internal BatchNormRelu (same inputs, epsilon): the
/// pre-activation BN -> Relu of a DenseNet in one pass. Returns the pairs fused.
int64_t fuseBatchNormRelu(ir::Graph& graph, const std::vector<std::string>& keep = {});

/// Step H of lowerForCpu: HardSwish written out, x * Clip(x + 3, 0, 6) / 6 (the division as
/// Div by 6 or Mul by 1/6, before or after the Mul), becomes one HardSwish node on x, which
/// the epilogue fusion takes into a Conv before it. Returns the chains replaced.
int64_t fuseHardSwishChains(ir::Graph& graph, const std::vector<std::string>& keep = {});

/// Step I of lowerForCpu: Identity, and Dropout without a mask output or training_mode, go
/// away; their readers read the input (Paddle2ONNX writes an Identity after most ops, between
/// a Conv and its activation). Graph outputs, kept values and values a subgraph reads by name
/// stay. Returns the nodes removed.
int64_t bypassIdentities(ir::Graph& graph, const std::vector<std::string>& keep = {});
/// Step G of lowerForCpu: GELU written out, x * 0.5 * (1 + Erf(x / sqrt 2)) (Div by sqrt 2 or
/// Mul by 1/sqrt 2, within 1e-4; the 0.5 as Mul or Div by 2 on x, on the product or on the
/// Erf term; Mul operands in either order), becomes one Gelu node (approximate "none") on x,
/// which the epilogue fusion takes into a Conv before it. Returns the chains replaced.
int64_t fuseGeluChains(ir::Graph& graph, const std::vector<std::string>& keep = {});
/// Step G2 of lowerForCpu (src/runtime/lower_contrib_gelu.cpp): ONNX Runtime's contrib Gelu,
/// BiasGelu and FastGelu (float32; a bias over the last axis) become ONNX Gelu (approximate
/// "none", or "tanh" for FastGelu) after an Add of the bias: the vector kernel and the epilogue
/// fusion instead of the contrib kernel's per-element erf. Returns the nodes rewritten.
int64_t lowerContribGelus(ir::Graph& graph, const std::vector<std::string>& keep = {});
/// Step T (src/runtime/lower_attention.cpp): MatMul(Softmax(Add(Mul(MatMul(q, Transpose(k)), c), mask)), v),
/// attention as exporters write it out (the Mul or a Div by a scalar c, the Add of an additive mask
/// and the Transpose optional), becomes com.whittle.internal FusedAttention(q, k, v, mask?) with
/// scale, divide and k_transposed: the scores stay in cache, a block of query rows at a time, and
/// keys the mask rules out are skipped. Returns the chains fused.
int64_t fuseAttentionChains(ir::Graph& graph, const std::vector<std::string>& keep = {});
/// Step U (src/runtime/lower_swish_mul.cpp): Mul(Mul(x, Sigmoid(x)), u), the SiLU-gated unit of
/// Llama-family MLPs, becomes com.whittle.internal SwishMul(x, u) (one pass instead of three); a
/// lone x * Sigmoid(x) SwishMul(x). Not after a Conv (its epilogue takes Swish). Returns the
/// units fused.
int64_t fuseSwishMuls(ir::Graph& graph, const std::vector<std::string>& keep = {});
/// Step M (src/runtime/lower_rms_norm.cpp): Mul(Div(x, Sqrt(Add(ReduceMean(Mul(x, x), [-1]), eps))), w),
/// RMSNorm written out, becomes com.whittle.internal RmsNorm(x, w){epsilon}: one row of the last
/// axis at a time. Returns the norms fused.
int64_t fuseRmsNorms(ir::Graph& graph, const std::vector<std::string>& keep = {});
/// Step F of lowerForCpu (src/runtime/lower_float16.cpp): float16 is computed in float32. Every
/// node of a list of float-generic ops (convolutions, MatMul/Gemm, activations, elementwise
/// math, pools, normalizations, reductions, data movement) that reads or writes float16 has
/// its float16 values widened: constants become float32 initializers, a float16 value from
/// outside the region (a graph input, another op's output) passes through one Cast to float,
/// and a value that leaves it (a graph output, a kept value, a reader outside) through one
/// Cast back to float16 under its own name. The CPU has no float16 arithmetic: the kernels
/// widened and rounded per op, and the float16 Conv ran without channels last or fused
/// activations. The outputs are the float32 computation rounded once, as ONNX Runtime's CPU
/// runs float16 models. Returns the nodes widened.
int64_t widenFloat16(ir::Graph& graph, const std::vector<std::string>& keep = {});
/// Step S of lowerForCpu (src/runtime/lower_channel_gather.cpp): a chain of Reshape, Squeeze,
/// Unsqueeze, Flatten, Identity, Transpose, Gather and Slice with constant operands from a 4-D
/// x [N, C, H, W] to a 4-D y [N, C', H, W] that picks whole channels (y[n, c', h, w] =
/// x[n, m(c'), h, w]: ShuffleNet's channel shuffle, ShuffleNetV2's channel split, a Slice of
/// channels) becomes com.whittle.internal ChannelGather(x) with `channels` = m, which the
/// channels-last lowering passes through (attribute channels_last) where the Transpose forced
/// the convolutions around it to channels first. Returns the gathers made.
int64_t lowerChannelGathers(ir::Graph& graph, const std::vector<std::string>& keep = {});
/// Rewrites `graph` for the CPU kernels, in these steps:
///
/// C. Constant nodes become initializers (ir::constantNodesToInitializers), so that weights
///    written as Constant nodes (Paddle2ONNX exports) fold and fuse like initializers.
///
/// W. lowerBlockwiseWeights(): block-wise weight-only MatMuls onto the low-bit kernel.
///
/// E. lowerBlockwiseGathers(): Gathers from block-wise quantized embeddings dequantize the rows.
///
/// Q. lowerQdqGroups().
///
/// I. bypassIdentities().
///
/// R. foldConstantReshapes().
///
/// F. widenFloat16().
///
/// 0. An inference BatchNormalization right after a Conv or ConvTranspose with float32
///    constant weights is folded into its weights and bias (new initializers; computed in double).
///
/// A. foldConvAffine(): per-channel Add/Sub/Mul/Div after a Conv go into its bias and weights.
///
/// B. foldBatchNormAffine(): those after a BatchNormalization go into its scale and bias.
///
/// N. fuseBatchNormRelu().
///
/// H. fuseHardSwishChains().
///
/// G. fuseGeluChains(), then lowerContribGelus().
///
/// T. fuseAttentionChains().
///
/// U. fuseSwishMuls().
///
/// M. fuseRmsNorms().
///
/// S. lowerChannelGathers().
///
/// 1. Fused epilogues. Conv followed by activations (Relu, LeakyRelu, Clip with constant
///    bounds, Sigmoid, Tanh, HardSigmoid, HardSwish, Elu, x*Sigmoid(x), x*HardSigmoid(x) with
///    HardSwish's constants), Mul/Div/Add/Sub by a scalar constant (a "Linear" step,
///    alpha * y + beta; two in a row merge) and at most one residual Add of a tensor with the Conv output's
///    static shape becomes one FusedConv node, whose post_ops / post_op_params attributes
///    list the epilogue in order ("Sum" for the Add, whose operand becomes input 3). A value
///    is only fused away when it has exactly one reader and is neither a graph output nor in
///    `keep`. The FusedConv output keeps the name of the last value it replaces.
///
/// 2. Channels-last activations. Values flowing between 2-D float32 convolutions, through
///    pools, Concat on the channel axis, ChannelGather and elementwise ops, are kept as [N, H, W, C]
///    tensors, so that oneDNN's channels-last kernels run without reorders in between.
///    FusedConv and the (internal-domain) pools carry channels_last_in / channels_last_out
///    (and channels_last_sum) ints, ChannelGather channels_last; Concat's axis moves to 3; Shape of such a value becomes
///    an internal Shape that reports the ONNX dims; value types are permuted.
///    Graph inputs and outputs, values in `keep` and values read by any other op stay in
///    ONNX order. A global pool reading channels last writes [N, 1, 1, C] (the same memory as
///    [N, C, 1, 1]) where its readers allow, so that a squeeze-and-excitation block (global
///    pool, 1x1 Convs, a gate multiplied into the block's input) stays channels last. A static
///    4-D Transpose that a Conv reads and whose output, channels last, is its input's memory
///    (NHWC -> NCHW, perm [0, 3, 1, 2] up to axes of size 1), or that reads a Conv's output and
///    whose channels-last input is its output's memory ([0, 2, 3, 1]), becomes a Reshape view.
///    A nearest Resize of H and W only passes through, its scales or sizes permuted to [N, H, W, C];
///    a ReduceMean over axes 2 and 3 with keepdims becomes a GlobalAveragePool first.
///
/// `keep` names values that must survive unchanged (SessionOptions::extraOutputs).
/// Rewrites that do not apply are skipped; an error means the graph was malformed.
Status lowerForCpu(ir::Graph& graph, const std::vector<std::string>& keep = {});

}  // namespace whittle::runtime
