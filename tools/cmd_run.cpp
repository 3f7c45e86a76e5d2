// whittle run: feed input files to a model on the CPU (or CUDA) runtime and write every output as .npy.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "commands.h"
#include "whittle/data/dataset.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/runtime/session.h"

namespace whittle::tools {
namespace {

namespace fs = std::filesystem;

struct RunOptions {
  std::string model;
  std::vector<std::string> inputs;
  std::string outputDir;
  int threads = 1;
  std::string device = "cpu";
};

/// A file name for an output: characters outside [A-Za-z0-9._-] become '_', no leading dot,
/// at most 200 characters, made unique among `taken`.
std::string sanitizeFileName(const std::string& name, std::set<std::string>& taken) {
  std::string s;
  for (char c : name) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  if (s.empty() || s[0] == '.') s = "_" + s;
  if (s.size() > 200) s.resize(200);
  std::string unique = s;
  for (int i = 1; taken.count(unique) != 0; ++i) unique = s + "_" + std::to_string(i);
  taken.insert(unique);
  return unique;
}

/// Writes one tensor as BASE.npy (bfloat16 widened to float32); returns the file and a note.
Expected<std::pair<std::string, std::string>> writeTensor(const ir::Tensor& tensor, const std::string& name,
                                                          const std::string& base) {
  ir::Tensor out = tensor;
  std::string note;
  if (out.dtype() == ir::DataType::kBFloat16) {
    // .npy has no bfloat16: widen to float32, which holds every bfloat16 exactly.
    ir::Tensor wide(ir::DataType::kFloat, out.dims());
    float* dst = wide.mutableData<float>();
    for (int64_t i = 0; i < out.numel(); ++i) dst[i] = ir::bfloat16ToFloat(out.data<uint16_t>()[i]);
    out = std::move(wide);
    note = " (bfloat16 widened to float32)";
  }
  std::string file = base + ".npy";
  Status written = data::writeNpy(out, file);
  if (!written.isOk()) return written.withContext("output '" + name + "'");
  return std::make_pair(file, note);
}

std::string tensorText(const ir::Tensor& t) {
  return std::string(ir::dataTypeName(t.dtype())) + " " + data::dimsText(t.dims());
}

/// Writes `value` under BASE and prints a line for it (then, indented, for its elements): a
/// tensor as BASE.npy; a sequence as a folder BASE/ holding element K under BASE/K by the same
/// rules; a map (ZipMap's) as BASE.keys.npy and BASE.values.npy; an optional as its element, or
/// no file when it holds none.
Status writeValue(const runtime::Value& value, const std::string& name, const std::string& base,
                  const std::string& indent) {
  switch (value.kind()) {
    case runtime::ValueKind::kTensor: {
      WH_ASSIGN_OR_RETURN(auto written, writeTensor(value.tensor(), name, base));
      std::printf("%s%s: %s -> %s%s\n", indent.c_str(), name.c_str(), tensorText(value.tensor()).c_str(),
                  written.first.c_str(), written.second.c_str());
      return Status::ok();
    }
    case runtime::ValueKind::kOptional:
      if (value.hasElement()) return writeValue(value.elements()[0], name, base, indent);
      std::printf("%s%s: optional holding no value (no file written)\n", indent.c_str(), name.c_str());
      return Status::ok();
    case runtime::ValueKind::kMap: {
      WH_ASSIGN_OR_RETURN(auto keys, writeTensor(value.mapKeys(), name + " keys", base + ".keys"));
      WH_ASSIGN_OR_RETURN(auto values, writeTensor(value.mapValues(), name + " values", base + ".values"));
      std::printf("%s%s: %s -> %s + %s\n", indent.c_str(), name.c_str(), value.describe().c_str(), keys.first.c_str(),
                  values.first.c_str());
      return Status::ok();
    }
    case runtime::ValueKind::kSequence: {
      std::error_code ec;
      fs::create_directories(base, ec);
      if (ec) return ioError(base + ": cannot create the folder for output '" + name + "': " + ec.message());
      std::printf("%s%s: sequence of %zu -> %s/\n", indent.c_str(), name.c_str(), value.elements().size(), base.c_str());
      for (size_t i = 0; i < value.elements().size(); ++i) {
        WH_RETURN_IF_ERROR(writeValue(value.elements()[i], name + "[" + std::to_string(i) + "]",
                                      (fs::path(base) / std::to_string(i)).string(), indent + "  "));
      }
      return Status::ok();
    }
  }
  return Status::ok();
}

Status runCommand(const RunOptions& opts) {
  applySpinCount(opts.threads);
  auto loaded = onnx_io::load(opts.model);
  if (!loaded.isOk()) return loaded.status();
  ir::Model& model = *loaded;
  std::vector<data::InputSpec> inputs = data::inputSpecs(*model.graph);

  std::map<std::string, std::pair<ir::Tensor, std::string>> feeds;
  for (const std::string& arg : opts.inputs) WH_RETURN_IF_ERROR(collectFeeds(arg, inputs, feeds));
  std::vector<runtime::NamedValue> ordered;
  for (const auto& in : inputs) {
    auto it = feeds.find(in.name);
    if (it == feeds.end()) {
      return invalidInput("input '" + in.name + "' was not given (use --input " + in.name + "=FILE)");
    }
    WH_RETURN_IF_ERROR(checkFeed(in, it->second.first, it->second.second));
    ordered.emplace_back(in.name, it->second.first);
  }

  runtime::SessionOptions sessionOptions;
  sessionOptions.threads = opts.threads;
  WH_ASSIGN_OR_RETURN(sessionOptions.device, deviceOption(opts.device, "--device"));
  auto session = runtime::Session::create(model, sessionOptions);
  if (!session.isOk()) return session.status();
  auto outputs = (*session)->runValues(ordered);
  if (!outputs.isOk()) return outputs.status();

  std::error_code ec;
  fs::create_directories(opts.outputDir, ec);
  if (ec || !fs::is_directory(opts.outputDir)) {
    return ioError(opts.outputDir + ": cannot create the output folder" + (ec ? ": " + ec.message() : std::string()));
  }
  std::set<std::string> taken;
  for (auto& [name, value] : *outputs) {
    WH_RETURN_IF_ERROR(writeValue(value, name, (fs::path(opts.outputDir) / sanitizeFileName(name, taken)).string(), ""));
  }
  return Status::ok();
}

}  // namespace

void registerRun(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Run a model on input files and write its outputs as .npy");
  auto opts = std::make_shared<RunOptions>();
  cmd->add_option("model", opts->model, "The .onnx file")->required();
  cmd->add_option("--input,-i", opts->inputs,
                  "NAME=FILE (or FILE for a one-input model): a .npy, .npz (arrays by input name), .pb TensorProto, "
                  "or a test_data_set folder of input_K.pb files; repeat for several inputs")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--output-dir,-o", opts->outputDir,
                  "Folder for the outputs, one OUTPUT_NAME.npy each (a sequence: a folder OUTPUT_NAME/ of K.npy; a map: "
                  "OUTPUT_NAME.keys.npy and OUTPUT_NAME.values.npy)")
      ->required();
  cmd->add_option("--threads", opts->threads, "Threads for the kernels")->check(CLI::PositiveNumber);
  cmd->add_option("--device", opts->device, "cpu (default) or cuda (the GPU path is unverified in this build)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->callback([opts] {
    Status status = runCommand(*opts);
    setExitCode(status.isOk() ? 0 : reportError(status));
  });
}

}  // namespace whittle::tools
