// The process's CPU clock and context-switch count.
#include "whittle/common/process_clock.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

namespace whittle {
namespace {

TEST_CASE("processCpuMs counts the CPU time this process uses, not the time that passes", "[common][clock]") {
  const double before = processCpuMs();
  volatile double sink = 0;
  for (int i = 0; i < 20'000'000; ++i) sink = sink + 1e-9 * i;
  const double used = processCpuMs() - before;
  CHECK(used > 0.0);
  CHECK(used < 60'000.0);
  // Sleeping takes time but no CPU.
  const double asleep = processCpuMs();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(processCpuMs() - asleep < 25.0);
}

TEST_CASE("processContextSwitches counts a thread that sleeps and wakes", "[common][clock]") {
  const int64_t before = processContextSwitches();
  for (int i = 0; i < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Each sleep gives the core up once (a voluntary switch); other switches only add to it.
  CHECK(processContextSwitches() - before >= 3);
}

}  // namespace
}  // namespace whittle
