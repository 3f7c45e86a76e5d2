#pragma once
// Node selection by name for the passes' exclude-nodes options.

#include <string>
#include <vector>

namespace whittle::passes {

/// Whether `name` equals one of `patterns` or matches it as a whole regular expression (a
/// pattern that is not a valid expression matches only by equality).
bool nameMatchesAny(const std::string& name, const std::vector<std::string>& patterns);

}  // namespace whittle::passes
