#pragma once
// Channels-last 2-D pooling of float32 tensors with AVX-512 (pool_nhwc.cpp).

#include "cpu/pool_reference.h"

namespace whittle::runtime::cpu {

/// Whether this CPU runs channelsLastPool2d (AVX-512F).
bool channelsLastPoolAvailable();

/// Max or average pooling of x [N, H, W, C] into y [N, OH, OW, C] for the 2-D geometry `g`
/// (logical dims). Average divides by the taps inside the input, or inside input + pads when
/// `countIncludePad` (windows overhanging the end padding in ceil_mode count only up to it).
void channelsLastPool2d(const PoolGeometry& g, bool max, bool countIncludePad, const float* x, float* y);

/// The max of x[0..n) (n >= 1) as `best = x[s] > best ? x[s] : best` from best = x[0] finds
/// it (a nan at x[0] is the result, other nans are skipped), 16 lanes at a time on AVX-512: a
/// global max pool's channels-first plane (magika's 512 x 508: 0.156 ms a run, ONNX Runtime 0.046).
float channelsFirstPlaneMax(const float* x, int64_t n);

/// Adds channel ch of each of `spatial` rows of `c` floats (channels last) to acc[ch], in double,
/// row after row (the order of the scalar loop, so the same sums). AVX-512F.
void channelsLastSumRows(const float* x, double* acc, int64_t spatial, int64_t c);

}  // namespace whittle::runtime::cpu
