// Label files and MNIST idx files: inputs found by fuzz/fuzz_labels (docs/fuzzing.md).
// The layouts themselves are tested in dataset_test.cpp.
#include "whittle/data/labels.h"

#include <catch2/catch.hpp>

#include <string>

#include "support/temp_dir.h"

namespace whittle {
namespace {

using testing::TempDir;

TEST_CASE("idx labels: a count larger than the file is an error, not a 4 GB allocation", "[data][labels][fuzz]") {
  TempDir dir;
  // fuzz_labels: magic 0x00000801 (uint8, 1 dim), 0xEF000000 labels, then 5 bytes.
  const std::string bytes("\x00\x00\x08\x01\xef\x00\x00\x00\x01\x02\x04\x07\x00", 13);
  testing::writeBytes(dir.file("t10k-labels-idx1-ubyte"), bytes);
  auto labels = data::readIdxLabels(dir.file("t10k-labels-idx1-ubyte"));
  REQUIRE_FALSE(labels.isOk());
  CHECK(labels.status().code() == StatusCode::kInvalidInput);
  CHECK(labels.status().message() == dir.file("t10k-labels-idx1-ubyte") +
                                         ": truncated: the header says 4009754624 labels, the file holds 5");

  // The same header gzip-compressed (the size is unknown until the stream ends): 2 labels.
  const std::string gz(
      "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\x63\x60\xe0\x60\x7c\xcf\xc0\xc0\xc0\xc8\x04\x00\x4d\x81\x1f\x86\x0a\x00"
      "\x00\x00",
      30);
  testing::writeBytes(dir.file("t10k-labels-idx1-ubyte.gz"), gz);
  auto gzLabels = data::readIdxLabels(dir.file("t10k-labels-idx1-ubyte.gz"));
  REQUIRE_FALSE(gzLabels.isOk());
  CHECK(gzLabels.status().message().find(dir.file("t10k-labels-idx1-ubyte.gz") + ": truncated") == 0);
}

TEST_CASE("idx labels: a well-formed file reads every label", "[data][labels]") {
  TempDir dir;
  testing::writeBytes(dir.file("labels-idx1-ubyte"), std::string("\x00\x00\x08\x01\x00\x00\x00\x03\x07\x02\x09", 11));
  auto labels = data::readIdxLabels(dir.file("labels-idx1-ubyte"));
  REQUIRE(labels.isOk());
  CHECK(*labels == std::vector<int64_t>{7, 2, 9});
}

}  // namespace
}  // namespace whittle
