// The exclude-nodes patterns of the quantization passes (passes/name_patterns.h).
#include <catch2/catch.hpp>

#include "name_patterns.h"

namespace whittle::passes {
namespace {

TEST_CASE("name patterns: a name matches by equality or as a whole regular expression", "[passes]") {
  NamePatterns p({"head", "block_[0-9]+/attn.*", "conv(1"});
  CHECK(p.matches("head"));
  CHECK_FALSE(p.matches("head2"));                  // a regex matches the whole name, not a part
  CHECK(p.matches("block_12/attn/q_proj"));
  CHECK_FALSE(p.matches("xblock_12/attn"));
  CHECK(p.matches("conv(1"));                        // not a valid expression: equality only
  CHECK_FALSE(p.matches("conv1"));
  CHECK_FALSE(p.empty());
  CHECK(NamePatterns().empty());
  CHECK_FALSE(NamePatterns().matches("anything"));
}

}  // namespace
}  // namespace whittle::passes
