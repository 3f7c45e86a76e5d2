#pragma once
// Subcommands of the whittle command line. Each registers itself on the app and stores its
// exit code through setExitCode(); main() returns it.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/data/dataset.h"
#include "whittle/runtime/device.h"

namespace whittle::tools {

void registerInspect(CLI::App& app);
/// whittle run: feed input files to a model, write its outputs as .npy (tools/cmd_run.cpp).
void registerRun(CLI::App& app);
/// whittle bench: latency, throughput, memory and profile on random inputs (tools/cmd_bench.cpp).
void registerBench(CLI::App& app);
void registerOptimize(CLI::App& app);
void registerCompare(CLI::App& app);  ///< whittle compare (tools/cmd_compare.cpp).

/// The data-set options of the commands that read data (docs/datasets.md), as given.
struct DatasetArgs {
  std::string path;
  std::string options;     ///< "kind=,labels=,input=,shape=,dtype=,limit="
  std::string kind;        ///< "" (from the path), auto, npy, npz, pb, images, rawbin or mnist
  std::string labels;      ///< "" (the data set's own, if any)
  std::string input;       ///< the model input a single-tensor data set feeds
  std::string preprocess;  ///< image preprocessing: inline spec or a JSON file
  int64_t limit = -1;      ///< < 0: every sample
  bool allowNonfinite = false;  ///< --allow-nonfinite: accept NaN and infinity in samples
  std::vector<std::string> fixedInputs;  ///< --fixed-input NAME=VALUE, as given
};

/// Adds the repeatable --fixed-input option, stored in `args.fixedInputs`.
void addFixedInputOption(CLI::App& cmd, DatasetArgs& args, const std::string& dataFlags);

/// The data set spec of `args`; errors name the flag (`optionsFlag`, `kindFlag`, --preprocess).
Expected<data::DatasetSpec> datasetSpec(const DatasetArgs& args, const std::string& optionsFlag,
                                        const std::string& kindFlag);

/// The --device value ("cpu", "cuda") as a DeviceKind; choosing cuda prints the one-line
/// warning that this build's GPU path is unverified (runtime::cudaUnverifiedWarning()).
Expected<runtime::DeviceKind> deviceOption(const std::string& value, const std::string& flag);

/// Adds the tensors of one --input value to `feeds` (input name -> tensor and where it came from):
/// NAME=FILE (a .npy or .pb, or the array named NAME in an .npz), FILE (one array for a one-input
/// model, or an .npz whose arrays are named after the inputs), or a test_data_set folder of
/// input_K.pb files (by position). Errors name the input and the file (tools/input_files.cpp).
Status collectFeeds(const std::string& arg, const std::vector<data::InputSpec>& inputs,
                    std::map<std::string, std::pair<ir::Tensor, std::string>>& feeds);
/// Checks a fed tensor's element type and known dims against the model input; the error names
/// the input, the file, what the model expects and what the file holds.
Status checkFeed(const data::InputSpec& input, const ir::Tensor& tensor, const std::string& source);

/// Keeps argv for applySpinCount (main, before parsing).
void rememberCommandLine(char** argv);
/// Adds the global --spin-count option (tools/spin_wait.cpp).
void addSpinCountOption(CLI::App& app);
/// Called by a command before it creates sessions on `threads` threads: where more than one,
/// sets GOMP_SPINCOUNT as --spin-count says (default auto: 0 on a busy machine, a bounded spin
/// on a quiet one; the environment's OMP_WAIT_POLICY / GOMP_SPINCOUNT stand without the flag)
/// and executes whittle again with the same arguments, once (libgomp reads its environment only
/// when loaded); returns when nothing needs doing, or with a warning when the restart failed.
void applySpinCount(int threads);

/// Prints "whittle: MESSAGE" on stderr and returns the status's exit code.
int reportError(const Status& status);
void setExitCode(int code);
int exitCode();

}  // namespace whittle::tools
