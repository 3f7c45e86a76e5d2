#pragma once
// com.whittle.internal FusedAttention (kernels/cpu/fused_attention.cpp): the attention that
// exporters write out as
//
//   y = MatMul(Softmax(Add(Mul(MatMul(q, Transpose(k)), scale), mask), axis = -1), v)
//
// (step T of the CPU lowering, src/runtime/lower_attention.cpp) computed a block of query rows
// at a time, so that the [.., S, T] scores never leave the cache. One batch slice is
// q [S, D], k [T, D] (or [D, T], `kTransposed`), v [T, Dv], an optional additive mask whose
// rows and columns may broadcast, y [S, Dv].
//
// Keys that the mask rules out are skipped, exactly: a block's columns end after the last one
// whose mask is above kSkipMaskBelow in any of its rows, and a row whose later columns are cut
// off is checked to weigh them exactly 0 in float32 (their mask plus the largest score they
// could reach, |scale| |q_s| max |k_t|, is more than 110 below the row's maximum: exp
// underflows to 0); otherwise the block is recomputed over all columns. A causal mask
// (-10000 or -inf above the diagonal) so halves the products.
#include <cstdint>
#include <functional>
#include <vector>

namespace whittle::runtime::cpu {

/// Mask values at or below this are candidates for skipping (a skip is then proven exact).
constexpr float kSkipMaskBelow = -100.f;

struct AttentionParams {
  int64_t seq = 0;       // S, query rows
  int64_t total = 0;     // T, keys
  int64_t head = 0;      // D, q and k row length
  int64_t valueHead = 0; // Dv
  float scale = 1.f;     // scores = q k^T * scale (or / scale when `divide`)
  bool divide = false;
  bool kTransposed = false;  // k is [D, T]
  bool nanToZero = false;    // a NaN probability counts 0, as Where(IsNaN(p), 0, p) after the Softmax
                             // (torch's exported SDPA: a row its mask rules out entirely gives y = 0)
};

/// One batch slice. The mask (null: none) is read at mask[s * maskRowStride + t * maskColStride]
/// (strides 0 where it broadcasts). y is [S, Dv], rows `yRowStride` apart.
struct AttentionSlice {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const float* mask = nullptr;
  int64_t maskRowStride = 0, maskColStride = 0;
  float* y = nullptr;
  int64_t yRowStride = 0;
};

/// Plain loops in the unfused graph's order of operations (the scalar reference).
void attentionSliceReference(const AttentionParams& p, const AttentionSlice& s);

/// Per query row of a mask: the end of the keys it lets through (the columns after it are all
/// at or below kSkipMaskBelow) and the largest mask value after it. Heads that share a mask
/// share these.
struct MaskTails {
  std::vector<int64_t> end;
  std::vector<float> tailMax;
  std::vector<int64_t> zeros;  // how many leading mask values are 0 (adding them changes nothing)
  bool any = false;  // some row ends before T
};
void findMaskTails(const AttentionParams& p, const AttentionSlice& s, MaskTails& tails);

/// Rows blocked, masked keys skipped (`tails`: findMaskTails of this slice's mask; null: none
/// skipped); `scratch` holds attentionScratchFloats(p) floats. With AVX-512 the two products
/// are register-tiled loops of this file (oneDNN's sgemm cost about 13 us a call in allocation
/// and threading at these sizes); without, dnnl_sgemm. Returns false when it fails.
bool attentionSlice(const AttentionParams& p, const AttentionSlice& s, const MaskTails* tails, float* scratch);
int64_t attentionScratchFloats(const AttentionParams& p);

constexpr int64_t kAttentionRowBlock = 32;

/// attentionSlice over slices 0 .. count-1 (`sliceAt(i)`, its mask's tails `tailsOf(i)` or null),
/// on up to `threads` OpenMP threads when `parallel`, each with its share of `scratch` (grown to
/// fit). Returns false when a product failed.
bool attentionSlices(const AttentionParams& p, int64_t count, int threads, bool parallel, std::vector<float>& scratch,
                     const std::function<AttentionSlice(int64_t)>& sliceAt,
                     const std::function<const MaskTails*(int64_t)>& tailsOf);

}  // namespace whittle::runtime::cpu
