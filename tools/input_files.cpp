// The --input values of `run` and `bench`: files (.npy, .npz, .pb) or test_data_set folders fed to
// a model's inputs by name or by position.
#include <algorithm>
#include <filesystem>

#include "commands.h"

namespace whittle::tools {
namespace {

namespace fs = std::filesystem;

std::string inputNames(const std::vector<data::InputSpec>& inputs) {
  std::string s;
  for (const auto& in : inputs) s += (s.empty() ? "" : ", ") + in.name;
  return s;
}

const data::InputSpec* findInput(const std::vector<data::InputSpec>& inputs, const std::string& name) {
  for (const auto& in : inputs) {
    if (in.name == name) return &in;
  }
  return nullptr;
}

}  // namespace

/// The tensors of an --input value: FILE, NAME=FILE, or a folder of input_K.pb files.
Status collectFeeds(const std::string& arg, const std::vector<data::InputSpec>& inputs,
                    std::map<std::string, std::pair<ir::Tensor, std::string>>& feeds) {
  std::string name, path = arg;
  size_t eq = arg.find('=');
  if (eq != std::string::npos && eq > 0 && !(fs::exists(arg) && findInput(inputs, arg.substr(0, eq)) == nullptr)) {
    name = arg.substr(0, eq);
    path = arg.substr(eq + 1);
  }
  if (path.empty()) return invalidInput("--input " + arg + ": no file given (use --input NAME=FILE)");
  if (!name.empty() && findInput(inputs, name) == nullptr) {
    return notFound("--input " + arg + ": the model has no input named '" + name + "' (inputs: " + inputNames(inputs) + ")");
  }
  std::vector<data::NamedTensor> tensors;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      std::string f = e.path().filename().string();
      if (f.rfind("input_", 0) == 0 && e.path().extension() == ".pb") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) return invalidInput(path + ": is a folder without input_*.pb files");
    if (!name.empty()) return invalidInput("--input " + arg + ": a folder feeds inputs by itself; drop 'NAME='");
    for (size_t i = 0; i < files.size(); ++i) {
      auto t = data::readTensorsFromFile(files[i]);
      if (!t.isOk()) return t.status();
      // Unnamed protos in a test_data_set folder feed inputs by position (input_K.pb).
      for (auto& [n, tensor] : *t) {
        std::string fed = !n.empty() && findInput(inputs, n) ? n : i < inputs.size() ? inputs[i].name : n;
        tensors.emplace_back(fed, std::move(tensor));
      }
    }
  } else {
    auto read = data::readTensorsFromFile(path);
    if (!read.isOk()) return name.empty() ? read.status() : read.status().withContext("input '" + name + "'");
    tensors = std::move(read).value();
  }
  auto add = [&](const std::string& input, ir::Tensor tensor, const std::string& source) -> Status {
    if (findInput(inputs, input) == nullptr) {
      return notFound(source + ": the model has no input named '" + input + "' (inputs: " + inputNames(inputs) +
                      "); use --input NAME=FILE");
    }
    if (feeds.count(input) != 0) return invalidInput("input '" + input + "' is given twice (" + feeds[input].second + ", " + source + ")");
    feeds[input] = {std::move(tensor), source};
    return Status::ok();
  };
  if (!name.empty()) {
    if (tensors.size() == 1) return add(name, std::move(tensors.front().second), path);
    for (auto& [n, tensor] : tensors) {
      if (n == name) return add(name, std::move(tensor), path + ":" + n);
    }
    return invalidInput("--input " + arg + ": " + path + " holds " + std::to_string(tensors.size()) +
                        " arrays and none is named '" + name + "'");
  }
  for (auto& [n, tensor] : tensors) {
    std::string input = n;
    std::string source = tensors.size() > 1 ? path + ":" + n : path;
    if (input.empty() || findInput(inputs, input) == nullptr) {
      if (inputs.size() == 1 && tensors.size() == 1) {
        input = inputs.front().name;
      } else if (input.empty()) {
        return invalidInput("--input " + arg + ": say which input it feeds (--input NAME=" + path + "); inputs: " +
                            inputNames(inputs));
      }
    }
    WH_RETURN_IF_ERROR(add(input, std::move(tensor), source));
  }
  return Status::ok();
}

Status checkFeed(const data::InputSpec& input, const ir::Tensor& tensor, const std::string& source) {
  bool typeOk = input.dtype == ir::DataType::kUndefined || input.dtype == tensor.dtype();
  bool shapeOk = true;
  if (input.dims) {
    shapeOk = input.dims->size() == tensor.dims().size();
    for (size_t i = 0; shapeOk && i < input.dims->size(); ++i) {
      shapeOk = !(*input.dims)[i].isKnown() || (*input.dims)[i].value == tensor.dims()[i];
    }
  }
  if (typeOk && shapeOk) return Status::ok();
  std::string want = std::string(ir::dataTypeName(input.dtype)) + (input.dims ? " " + data::dimsText(*input.dims) : "");
  return invalidInput("input '" + input.name + "' (" + source + "): expected " + want + ", got " +
                      std::string(ir::dataTypeName(tensor.dtype())) + " " + data::dimsText(tensor.dims()));
}

}  // namespace whittle::tools
