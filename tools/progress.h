#pragma once
// A one-line progress bar on stderr for long work (calibration, comparison), redrawn in place:
//   calibrating          [##########....................] 34/100, 12 s left

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace whittle::tools {

class ProgressBar {
 public:
  /// A disabled bar draws nothing (callers pass isatty(stderr) and their quiet flags).
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// `done` of `total` in `phase`; a new phase restarts the time-left estimate.
  void update(std::string_view phase, int64_t done, int64_t total) {
    if (!enabled_ || total <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (phase != phase_) {
      phase_ = std::string(phase);
      phaseStart_ = now;
    } else if (done < total && now - last_ < std::chrono::milliseconds(100)) {
      return;  // redraw at most every 100 ms, and at the end of each phase
    }
    last_ = now;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * std::min(done, total) / total);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    const double elapsed = std::chrono::duration<double>(now - phaseStart_).count();
    std::string left;
    if (done > 0 && done < total) {
      left = ", " + std::to_string(static_cast<long long>(elapsed / static_cast<double>(done) *
                                                           static_cast<double>(total - done) + 0.5)) + " s left";
    }
    std::fprintf(stderr, "\r\033[K%-20.*s [%s] %lld/%lld%s", static_cast<int>(phase.size()), phase.data(), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total), left.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  /// Clears the line (the bar leaves nothing behind in the terminal).
  void finish() {
    if (drawn_) std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
  }

 private:
  bool enabled_;
  bool drawn_ = false;
  std::string phase_;
  std::chrono::steady_clock::time_point phaseStart_, last_;
};

}  // namespace whittle::tools
