#pragma once
// Subcommands of the whittle command line. Each registers itself on the app and stores its
// exit code through setExitCode(); main() returns it.

#include <CLI/CLI.hpp>

#include "whittle/common/status.h"

namespace whittle::tools {

void registerInspect(CLI::App& app);
/// whittle run: feed input files to a model, write its outputs as .npy (tools/cmd_run.cpp).
void registerRun(CLI::App& app);
/// whittle bench: latency, throughput, memory and profile on random inputs (tools/cmd_bench.cpp).
void registerBench(CLI::App& app);
void registerOptimize(CLI::App& app);
void registerCompare(CLI::App& app);  ///< whittle compare (tools/cmd_compare.cpp).

/// Prints "whittle: MESSAGE" on stderr and returns the status's exit code.
int reportError(const Status& status);
void setExitCode(int code);
int exitCode();

}  // namespace whittle::tools
