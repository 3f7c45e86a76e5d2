// Node selection by name (passes/name_patterns.h).
#include "name_patterns.h"

#include <regex>

namespace whittle::passes {

bool nameMatchesAny(const std::string& name, const std::vector<std::string>& patterns) {
  for (const std::string& pattern : patterns) {
    if (name == pattern) return true;
    try {
      if (std::regex_match(name, std::regex(pattern))) return true;
    } catch (const std::regex_error&) {
    }
  }
  return false;
}

}  // namespace whittle::passes
