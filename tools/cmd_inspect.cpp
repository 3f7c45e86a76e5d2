#include <cstdio>
#include <iostream>

#include "commands.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::tools {

void registerInspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe a model: interface, ops, parameters, MACs, quantization");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("model", *path, "The .onnx file")->required();
  cmd->add_flag("--json", *json, "Print JSON (schema: docs/inspect-schema.md)");
  cmd->callback([path, json] {
    auto model = onnx_io::load(*path);
    if (!model.isOk()) return setExitCode(reportError(model.status()));
    std::printf("%s: %zu nodes\n", path->c_str(), model->graph->numNodes());
  });
}

}  // namespace whittle::tools
