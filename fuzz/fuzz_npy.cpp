// fuzz_npy: .npy bytes -> the .npy reader (data::parseNpyHeader on memory, and
// data::NpyArrayReader / data::readNpy on a file, as the data sets read arrays).
// Checked on every input whose header parses: the reader agrees with parseNpyHeader, and
// reading rows and the whole array stays inside the file.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "whittle/data/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace whittle;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = data::parseNpyHeader(bytes, "fuzz.npy");
  if (!parsed.isOk()) fuzz::checkNotInternal(parsed.status(), "parseNpyHeader");

  std::string path = fuzz::writeInput(data, size, "fuzz.npy");
  auto reader = data::NpyArrayReader::open(path);
  if (!reader.isOk()) {
    fuzz::checkNotInternal(reader.status(), "NpyArrayReader::open");
    return 0;
  }
  const data::NpyHeader& header = (*reader)->header();
  if (!parsed.isOk()) fuzz::fail("NpyArrayReader::open accepted a header that parseNpyHeader rejects: " + parsed.status().message());
  if (parsed->shape != header.shape || parsed->dtype != header.dtype) fuzz::fail("the two header parsers disagree");
  if (header.dataOffset + header.dataBytes() > size) fuzz::fail("an array larger than its file was opened");

  int64_t rows = (*reader)->rows();
  size_t rowBytes = (*reader)->rowBytes();
  if (!header.shape.empty()) {
    int64_t count = std::min<int64_t>(rows, 4);
    std::vector<std::byte> buffer(static_cast<size_t>(count) * rowBytes);
    Status s = (*reader)->readRows(0, count, buffer.data());
    if (!s.isOk()) fuzz::fail("reading rows of an opened array failed: " + s.message());
    if (rows > 0) {
      s = (*reader)->readRows(rows - 1, 1, buffer.data());
      if (!s.isOk()) fuzz::fail("reading the last row failed: " + s.message());
    }
    s = (*reader)->readRows(rows, 1, buffer.data());
    if (s.isOk()) fuzz::fail("reading past the last row succeeded");
  }
  auto all = (*reader)->readAll();
  if (!all.isOk()) fuzz::fail("readAll of an opened array failed: " + all.status().message());
  auto again = data::readNpy(path);
  if (!again.isOk() || !again->bitwiseEqual(*all)) fuzz::fail("readNpy disagrees with NpyArrayReader::readAll");
  return 0;
}
