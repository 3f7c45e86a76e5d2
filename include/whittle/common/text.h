#pragma once
// Small text helpers shared by the report writers and the command line: one printf-style
// formatter, one byte-size text, one decibel text.

#include <cstdint>
#include <string>

namespace whittle {

/// printf into a std::string (any length); the compiler checks the arguments against `format`.
[[gnu::format(printf, 1, 2)]] std::string fmt(const char* format, ...);

/// A byte count for people: "512 B", "1.5 KiB", "3.25 MiB", "1.20 GiB", "2.00 TiB"; "?" when
/// negative (unknown). KiB with one decimal, larger units with two.
std::string bytesText(int64_t bytes);

/// "42.1 dB", "inf dB", "-inf dB" or "nan dB", with `digits` decimals.
std::string formatDb(double db, int digits = 1);

}  // namespace whittle
