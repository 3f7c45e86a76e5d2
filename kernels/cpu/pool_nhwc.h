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

/// Adds channel ch of each of `spatial` rows of `c` floats (channels last) to acc[ch], in double,
/// row after row (the order of the scalar loop, so the same sums). AVX-512F.
void channelsLastSumRows(const float* x, double* acc, int64_t spatial, int64_t c);

}  // namespace whittle::runtime::cpu
