#include "whittle/common/text.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace whittle {

std::string fmt(const char* format, ...) {
  char buf[128];
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  std::string out;
  if (n < 0) {
    out = "?";
  } else if (static_cast<size_t>(n) < sizeof buf) {
    out.assign(buf, static_cast<size_t>(n));
  } else {
    out.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(out.data(), out.size(), format, again);
    out.resize(static_cast<size_t>(n));
  }
  va_end(again);
  return out;
}

std::string bytesText(int64_t bytes) {
  if (bytes < 0) return "?";
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double x = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (x >= 1024.0 && u < 3) {
    x /= 1024.0;
    ++u;
  }
  return fmt(u == 0 ? "%.1f %s" : "%.2f %s", x, units[u]);
}

std::string formatDb(double db, int digits) {
  if (std::isinf(db)) return db > 0 ? "inf dB" : "-inf dB";
  if (std::isnan(db)) return "nan dB";
  return fmt("%.*f dB", digits, db);
}

}  // namespace whittle
