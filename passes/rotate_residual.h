#pragma once
// rotate-residual's options and factory. Declared here rather than in pass_options.h /
// passes.def (whose every change recompiles all pass files): registry.cpp lists the pass after
// passes.def's entries. Fold these into pass_options.h and passes.def when those next change.

#include <cstdint>
#include <memory>
#include <string>

#include "whittle/passes/options.h"
#include "whittle/passes/pass.h"

namespace whittle::passes {

struct RotateResidualOptions {
  std::string rotation;
  int64_t seed;
  static const OptionList<RotateResidualOptions>& declare() {
    using S = RotateResidualOptions;
    static const auto list =
        OptionList<S>()
            .oneOf(&S::rotation, "rotation", "hadamard", {"hadamard", "random"},
                   "randomized Hadamard (falls back to random, with a warning, where the hidden size has no "
                   "Sylvester x Paley Hadamard matrix) or the Q of a Gaussian matrix's QR")
            .integer(&S::seed, "seed", 0, "seed of the random signs / Gaussian matrix", OptionRange::atLeast(0));
    return list;
  }
};

Expected<std::unique_ptr<Pass>> makeRotateResidual(const RotateResidualOptions& options);

}  // namespace whittle::passes
