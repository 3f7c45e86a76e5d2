#pragma once
// Factories of every pass listed in passes/passes.def, one per pass file.

#include <memory>

#include "whittle/passes/pass.h"

namespace whittle::passes {

#define WH_PASS(factory, name, level, description, ...) \
  Expected<std::unique_ptr<Pass>> factory(const PassOptions& options);
#include "passes.def"
#undef WH_PASS

}  // namespace whittle::passes
