#pragma once
// The four ONNX float8 types (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ): decoding, and encoding with
// round to nearest even and the `saturate` rule of Cast-19 / QuantizeLinear-19. Shared by Cast
// (elementwise_cast.cpp) and QuantizeLinear (quant.cpp).

#include <cstdint>

#include "whittle/ir/data_type.h"

namespace whittle::runtime::cpu::float8 {

/// The layout of a float8 type.
struct Format {
  int mantBits;
  int bias;
  bool ieee;  ///< E5M2: exponent all ones is inf (mantissa 0) or nan.
  bool uz;    ///< FNUZ: no negative zero; 0x80 is the only nan.
  double maxFinite;
};

bool isFloat8(ir::DataType t);
/// The format of a float8 dtype (isFloat8(t) must hold).
Format formatOf(ir::DataType t);
double toDouble(uint8_t bits, const Format& f);
/// Rounds to nearest even; beyond the largest finite value it saturates to it or becomes inf
/// (E5M2) / nan (the others), as the ONNX `saturate` attribute says.
uint8_t fromDouble(double x, const Format& f, bool saturate);

}  // namespace whittle::runtime::cpu::float8
