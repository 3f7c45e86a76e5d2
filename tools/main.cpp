// The whittle command line: one subcommand per file (cmd_*.cpp), registered here.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "commands.h"
#include "whittle/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "whittle: post-training optimization of ONNX models.\n"
      "Exit codes: 0 success, 1 internal error, 2 bad input (file, model, data, options), 3 a compare gate failed."};
  app.set_version_flag("--version", std::string("whittle ") + whittle::kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  whittle::tools::rememberCommandLine(argv);
  whittle::tools::addSpinCountOption(app);

  whittle::tools::registerInspect(app);
  whittle::tools::registerRun(app);
  whittle::tools::registerBench(app);
  whittle::tools::registerOptimize(app);
  whittle::tools::registerCompare(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "whittle: %s (see 'whittle --help')\n", e.what());
    return 2;
  }
  return whittle::tools::exitCode();
}
