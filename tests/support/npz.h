#pragma once
// .npz fixtures for tests, written by the test Python's numpy (the runtime reads .npz itself but
// has no writer).

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "support/python.h"
#include "whittle/data/npy.h"
#include "whittle/ir/tensor.h"

namespace whittle::testing {

// Writes `arrays` as a .npz with numpy (false when the test Python has none).
inline bool writeNpz(const std::string& path, const std::vector<std::pair<std::string, ir::Tensor>>& arrays,
              const std::string& folder) {
  if (!requirePython("numpy", "to write .npz fixtures")) return false;
  std::string args;
  for (const auto& [name, t] : arrays) {
    std::string file = folder + "/" + name + ".npy";
    REQUIRE(data::writeNpy(t, file).isOk());
    args += " " + shellQuote(name + "=" + file);
  }
  std::string script =
      "import sys, numpy as np\n"
      "np.savez(sys.argv[1], **{a.split('=', 1)[0]: np.load(a.split('=', 1)[1]) for a in sys.argv[2:]})\n";
  std::string out;
  int rc = shell(python() + " -c " + shellQuote(script) + " " + shellQuote(path) + args, &out);
  INFO(out);
  REQUIRE(rc == 0);
  return true;
}

}  // namespace whittle::testing
