// --spin-count: how long an idle OpenMP thread spins before it sleeps.
//
// Between two parallel regions libgomp's workers wait for the next one: spinning (a pause
// instruction at a time) for GOMP_SPINCOUNT spins, then asleep on a futex. Spinning answers the
// next region at once but holds a core; sleeping costs a wake-up at every region (tens of
// microseconds, far more when other processes hold the cores). libgomp's default, 300000
// spins, is about 8 ms on this project's AMD EPYC (26 ns a pause): on a machine loaded by
// other jobs a 2-thread run then burned up to 9x the CPU time of a 1-thread one and ran up to
// 9x slower, while on a quiet machine sleeping at once (OMP_WAIT_POLICY=passive) made each of a
// model's hundreds of regions a wake-up and took the 2-thread speed-up away.
//
// So the default, `auto`, looks at the machine when the command starts: where runnable tasks
// have been waiting for a CPU (Linux's CPU pressure, /proc/pressure/cpu "some avg10", at least
// kBusyCpuPressure percent; the load average against the CPU count where the kernel has no
// pressure file) idle threads sleep at once; otherwise they spin kQuietSpinCount pauses, which
// covers the gaps between the regions of one run, and then sleep.
//
// libgomp reads its environment once, when it is loaded, before main: so the command sets
// GOMP_SPINCOUNT and executes itself again, once, just before it would start threads.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "commands.h"

namespace whittle::tools {
namespace {

std::string gSpinCount = "auto";  // --spin-count as given
bool gSpinCountGiven = false;
char** gArgv = nullptr;
/// Set in the restarted process, so that it never restarts again.
constexpr const char* kSpinAppliedVariable = "WHITTLE_SPIN_APPLIED";

/// Spins of a worker on a quiet machine: about 0.5 ms at 26 ns a pause, longer than the gaps
/// between the parallel regions of one run (a few single-threaded nodes), far shorter than
/// libgomp's 8 ms.
constexpr int64_t kQuietSpinCount = 20000;
/// CPU pressure (percent of the last 10 s with a runnable task waiting) from which the machine
/// counts as busy.
constexpr double kBusyCpuPressure = 10.0;

/// "some avg10" of /proc/pressure/cpu, or nothing where the kernel does not report it.
std::optional<double> cpuPressure() {
  std::ifstream in("/proc/pressure/cpu");
  std::string word;
  while (in >> word) {
    if (word.rfind("avg10=", 0) == 0) return std::strtod(word.c_str() + 6, nullptr);
  }
  return std::nullopt;
}

int64_t autoSpinCount() {
  if (std::optional<double> pressure = cpuPressure()) return *pressure >= kBusyCpuPressure ? 0 : kQuietSpinCount;
  double load = 0;
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  if (getloadavg(&load, 1) == 1 && load >= cpus) return 0;
  return kQuietSpinCount;
}

}  // namespace

void rememberCommandLine(char** argv) { gArgv = argv; }

void addSpinCountOption(CLI::App& app) {
  app.add_option_function<std::string>(
         "--spin-count",
         [](const std::string& v) {
           gSpinCount = v;
           gSpinCountGiven = true;
         },
         "Pause instructions (about 26 ns each on an AMD EPYC) an idle worker thread spins waiting for the next "
         "parallel region before it sleeps: 0 sleeps at once (as OMP_WAIT_POLICY=passive), 300000 is OpenMP's "
         "default (about 8 ms). Default auto: 0 where other jobs keep the CPUs busy (Linux CPU pressure at least "
         "10 %), else 20000 (about 0.5 ms); without the flag, OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment "
         "take precedence. Applied as GOMP_SPINCOUNT (whittle restarts itself once to set it)")
      ->check([](const std::string& v) -> std::string {
        if (v == "auto") return {};
        char* end = nullptr;
        errno = 0;
        long long n = std::strtoll(v.c_str(), &end, 10);
        return v.empty() || *end != '\0' || errno != 0 || n < 0 ? "expected auto or a count of spins >= 0" : "";
      });
}

void applySpinCount(int threads) {
  if (threads <= 1 || gArgv == nullptr) return;  // no worker threads to wait
  if (std::getenv(kSpinAppliedVariable) != nullptr) return;  // the restarted process: set already
  const char* current = std::getenv("GOMP_SPINCOUNT");
  // Without the flag the environment's choice stands.
  if (!gSpinCountGiven && (current != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr)) return;
  const std::string want = gSpinCount == "auto" ? std::to_string(autoSpinCount()) : gSpinCount;
  if (current != nullptr && want == current) return;  // libgomp read it already
  std::fflush(nullptr);
  if (setenv("GOMP_SPINCOUNT", want.c_str(), 1) == 0 && setenv(kSpinAppliedVariable, "1", 1) == 0) {
    execv("/proc/self/exe", gArgv);
  }
  std::fprintf(stderr,
               "whittle: warning: could not restart with GOMP_SPINCOUNT=%s (%s); idle threads wait as OpenMP's "
               "default says\n",
               want.c_str(), std::strerror(errno));
}

}  // namespace whittle::tools
