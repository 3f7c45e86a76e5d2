#pragma once
// Factories of every pass listed in passes/passes.def, one per pass file. Each receives its
// options parsed and checked against their declaration in passes/pass_options.h.

#include <memory>

#include "pass_options.h"
#include "whittle/passes/pass.h"

namespace whittle::passes {

#define WH_PASS(factory, Options, name, level, description) \
  Expected<std::unique_ptr<Pass>> factory(const Options& options);
#include "passes.def"
#undef WH_PASS

}  // namespace whittle::passes
