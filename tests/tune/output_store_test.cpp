// The float outputs kept for the tuner's trials (src/tune/output_store.cpp): what goes in comes
// back, from memory below the budget and from the temporary file past it.
#include "tune/output_store.h"

#include <catch2/catch.hpp>

namespace whittle::tune {
namespace {

/// Batch `b`: two outputs of b + 1 and 3 floats, an empty one (not compared) between them.
BatchOutputs batchOf(int b) {
  BatchOutputs out(3);
  for (int i = 0; i <= b; ++i) out[0].push_back(static_cast<float>(b * 100 + i));
  out[2] = {-1.5f * static_cast<float>(b), 0.25f, 1e30f};
  return out;
}

TEST_CASE("OutputStore: batches come back the same from memory and from the file", "[tune]") {
  // 40 bytes of memory: batches 0 (16 bytes) and 1 (20) fit, batch 2 (24) does not; from the
  // first batch in the file on, every later one goes there too (in order), even a small one.
  OutputStore store(40);
  for (int b = 0; b < 6; ++b) REQUIRE(store.append(batchOf(b)).isOk());
  REQUIRE(store.size() == 6);
  CHECK(store.memoryBytes() == 36);
  CHECK(store.fileBytes() == (3 + 4 + 5 + 6) * 4 + 4 * 3 * 4);
  BatchOutputs scratch;
  for (int round = 0; round < 2; ++round) {
    for (int b : {5, 0, 3, 1, 2, 4}) {  // any order, twice
      INFO("batch " << b);
      auto got = store.get(static_cast<size_t>(b), scratch);
      REQUIRE(got.isOk());
      CHECK(**got == batchOf(b));
      CHECK((*got == &scratch) == (b >= 2));  // read back into the scratch only past the budget
    }
  }
  CHECK_FALSE(store.get(6, scratch).isOk());
}

TEST_CASE("OutputStore: a budget of zero keeps everything in the file", "[tune]") {
  OutputStore store(0);
  for (int b = 0; b < 3; ++b) REQUIRE(store.append(batchOf(b)).isOk());
  CHECK(store.memoryBytes() == 0);
  BatchOutputs scratch;
  for (int b = 2; b >= 0; --b) {
    auto got = store.get(static_cast<size_t>(b), scratch);
    REQUIRE(got.isOk());
    CHECK(**got == batchOf(b));
  }
}

}  // namespace
}  // namespace whittle::tune
