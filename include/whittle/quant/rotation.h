#pragma once
// Orthogonal rotations for rotating a transformer's residual stream (QuaRot, SpinQuant): with
// x -> x Q and the weights that read and write x changed to match, the network computes the same
// function while the rotated activations and weights have no outlier channels, so that weights
// quantize to 4 bits with less error.

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/common/status.h"

namespace whittle::quant {

/// A d x d orthogonal matrix, row-major.
///   kind "hadamard": diag(random signs) H / sqrt(d), H a Hadamard matrix built as a Kronecker
///   product of a Sylvester matrix (order 2^a) and a Paley matrix (order q + 1, q a prime with
///   q % 4 == 3), e.g. 576 = 8 x 72; an error when d has no such form.
///   kind "random": the Q of a QR decomposition of a Gaussian matrix (any d), signs fixed so
///   that R has a positive diagonal.
/// Deterministic for a seed (its own generator and normal draws, the same on every platform).
Expected<std::vector<double>> orthogonalRotation(int64_t d, const std::string& kind, uint64_t seed);

/// Whether orthogonalRotation(d, "hadamard", ...) can build a matrix of order d.
bool hasHadamard(int64_t d);

}  // namespace whittle::quant

namespace whittle::quant {

/// W [rows, d] row-major -> W Q in place (a writer into the rotated stream; the table E).
void rotateColumns(std::vector<float>& w, int64_t rows, int64_t d, const std::vector<double>& q);

/// Q^T diag(gamma) R for R [d, n] row-major (a reader of the rotated, normalized stream);
/// `transposed`: R given as [n, d] (a tied LM head's table), the result still [d, n].
std::vector<float> rotateReader(const std::vector<float>& r, int64_t d, int64_t n, const std::vector<double>& q,
                                const std::vector<double>& gamma, bool transposed = false);

}  // namespace whittle::quant
