// The zip reader under .npz archives on hostile input: cases found by fuzz/fuzz_npz
// (docs/fuzzing.md). Archives that numpy writes are tested in dataset_test.cpp.
#include "data/zip.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "support/temp_dir.h"
#include "whittle/data/npy.h"

namespace whittle {
namespace {

using testing::TempDir;

std::string le16(uint32_t v) { return {static_cast<char>(v & 0xFF), static_cast<char>((v >> 8) & 0xFF)}; }
std::string le32(uint32_t v) { return le16(v & 0xFFFF) + le16(v >> 16); }

// A zip archive of one entry whose directory declares `declaredSize` uncompressed bytes.
std::string oneEntryZip(const std::string& name, uint16_t method, const std::string& data, uint32_t declaredSize,
                        uint32_t localOffset = 0) {
  std::string local = le32(0x04034b50) + le16(20) + le16(0) + le16(method) + le16(0) + le16(0) + le32(0) +
                      le32(static_cast<uint32_t>(data.size())) + le32(declaredSize) +
                      le16(static_cast<uint32_t>(name.size())) + le16(0) + name + data;
  std::string central = le32(0x02014b50) + le16(20) + le16(20) + le16(0) + le16(method) + le16(0) + le16(0) + le32(0) +
                        le32(static_cast<uint32_t>(data.size())) + le32(declaredSize) +
                        le16(static_cast<uint32_t>(name.size())) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) +
                        le32(localOffset) + name;
  std::string end = le32(0x06054b50) + le16(0) + le16(0) + le16(1) + le16(1) + le32(static_cast<uint32_t>(central.size())) +
                    le32(static_cast<uint32_t>(local.size())) + le16(0);
  return local + central + end;
}

TEST_CASE("zip: a deflated entry that declares more than deflate can expand to is an error", "[data][npz][fuzz]") {
  TempDir dir;
  // 12 compressed bytes declared to inflate to 0xF0000000 bytes: the .npy reader sized its
  // buffer from the declared size and the header, and allocated gigabytes.
  const std::string path = dir.file("bomb.npz");
  testing::writeBytes(path, oneEntryZip("x.npy", 8, std::string(12, '\0'), 0xF0000000u));
  auto zip = data::ZipArchive::open(path);
  REQUIRE(zip.isOk());
  REQUIRE(zip->entries().size() == 1);
  auto entry = zip->openEntry(zip->entries()[0]);
  REQUIRE_FALSE(entry.isOk());
  CHECK(entry.status().code() == StatusCode::kInvalidInput);
  CHECK(entry.status().message() ==
        path + ":x.npy: declares 4026531840 bytes from 12 compressed bytes, more than deflate can expand to");
  auto archive = data::NpzArchive::open(path);
  REQUIRE(archive.isOk());
  auto array = archive->read("x");
  REQUIRE_FALSE(array.isOk());
  CHECK(array.status().message().find("more than deflate can expand to") != std::string::npos);
}

TEST_CASE("npz: an array whose entry declares 4 GB reads as an error, not an allocation", "[data][npz][fuzz]") {
  // 179 bytes: a deflated .npy header of shape (4000000000,) uint8 in an entry whose directory
  // declares 0xF0000000 bytes; readAll allocated the 4 GB before reading.
  const std::string path = std::string(WHITTLE_SOURCE_DIR) + "/tests/fuzz_regressions/npz_declares_4gb.npz";
  auto archive = data::NpzArchive::open(path);
  REQUIRE(archive.isOk());
  CHECK(archive->names() == std::vector<std::string>{"x"});
  auto array = archive->read("x");
  REQUIRE_FALSE(array.isOk());
  CHECK(array.status().code() == StatusCode::kInvalidInput);
  CHECK(array.status().message().find(path + ":x.npy: declares 4026531840 bytes from ") == 0);
}

TEST_CASE("zip: a local header offset past the end is an error", "[data][npz]") {
  TempDir dir;
  const std::string path = dir.file("offset.npz");
  testing::writeBytes(path, oneEntryZip("x.npy", 0, "abc", 3, /*localOffset=*/0xFFFFFFF0u));
  auto zip = data::ZipArchive::open(path);
  REQUIRE(zip.isOk());
  auto entry = zip->openEntry(zip->entries()[0]);
  REQUIRE_FALSE(entry.isOk());
  CHECK(entry.status().message() == path + ":x.npy: local header out of range");
}

}  // namespace
}  // namespace whittle
