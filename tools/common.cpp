#include <cstdio>

#include "commands.h"

namespace whittle::tools {
namespace {
int gExitCode = 0;
}  // namespace

int reportError(const Status& status) {
  std::fprintf(stderr, "whittle: error: %s\n", status.message().c_str());
  return exitCodeFor(status);
}

Expected<data::DatasetSpec> datasetSpec(const DatasetArgs& args, const std::string& optionsFlag,
                                        const std::string& kindFlag) {
  data::DatasetSpec spec;
  spec.path = args.path;
  if (!args.options.empty()) WH_RETURN_IF_ERROR(data::parseDatasetOptions(args.options, spec).withContext(optionsFlag));
  if (!args.kind.empty()) {
    auto kind = data::parseDatasetKind(args.kind);
    if (!kind) return invalidInput(kindFlag + " '" + args.kind + "': expected auto, npy, npz, pb, images, rawbin or mnist");
    spec.kind = *kind;
  }
  if (!args.labels.empty()) spec.labels = args.labels;
  if (!args.input.empty()) spec.input = args.input;
  if (args.limit >= 0) spec.limit = args.limit;
  spec.allowNonfinite = args.allowNonfinite;
  for (const std::string& text : args.fixedInputs) {
    WH_ASSIGN_OR_RETURN(data::FixedInputSpec fixed, data::parseFixedInput(text));
    spec.fixedInputs.push_back(std::move(fixed));
  }
  if (!args.preprocess.empty()) {
    auto pre = data::loadPreprocessSpec(args.preprocess);
    if (!pre.isOk()) return pre.status().withContext("--preprocess");
    spec.preprocess = *pre;
  }
  return spec;
}

void addFixedInputOption(CLI::App& cmd, DatasetArgs& args, const std::string& dataFlags) {
  cmd.add_option("--fixed-input", args.fixedInputs,
                 "NAME=VALUE: feed model input NAME the same tensor with every batch of " + dataFlags +
                     ", which then feeds the other inputs: a number fills the input's static shape (sr=16000), "
                     "or a .npy/.npz/.pb file holds the whole tensor (state=h0.npy). Repeatable");
}

Expected<runtime::DeviceKind> deviceOption(const std::string& value, const std::string& flag) {
  auto device = runtime::parseDevice(value);
  if (!device.isOk()) return device.status().withContext(flag);
  if (*device == runtime::DeviceKind::kCuda) {
    std::fprintf(stderr, "whittle: %s\n", std::string(runtime::cudaUnverifiedWarning()).c_str());
  }
  return device;
}

void setExitCode(int code) { gExitCode = code; }
int exitCode() { return gExitCode; }

}  // namespace whittle::tools
