// fuzz_npz: zip bytes -> the zip reader (data::ZipArchive, entries stored or deflated) and the
// .npz reader on top of it (data::NpzArchive, data::readNpz), as the data sets read archives.
// Every entry is read through its ByteSource (a bounded prefix and its last bytes), and every
// array through a row reader and readAll.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "data/zip.h"
#include "fuzz_util.h"
#include "whittle/data/npy.h"

namespace {

// Bytes read from one entry: enough for the .npy headers, bounded for deflate bombs.
constexpr uint64_t kEntryReadLimit = 1 << 16;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace whittle;
  std::string path = fuzz::writeInput(data, size, "fuzz.npz");

  auto zip = data::ZipArchive::open(path);
  if (!zip.isOk()) {
    fuzz::checkNotInternal(zip.status(), "ZipArchive::open");
  } else {
    std::vector<unsigned char> buffer;
    for (const data::ZipEntry& entry : zip->entries()) {
      auto source = zip->openEntry(entry);
      if (!source.isOk()) {
        fuzz::checkNotInternal(source.status(), "ZipArchive::openEntry");
        continue;
      }
      uint64_t n = std::min<uint64_t>(entry.size, kEntryReadLimit);
      buffer.resize(static_cast<size_t>(n));
      Status s = (*source)->readAt(0, buffer.data(), buffer.size());
      fuzz::checkNotInternal(s, "ByteSource::readAt");
      if (s.isOk() && entry.size > 0 && entry.size <= kEntryReadLimit) {
        s = (*source)->readAt(entry.size - 1, buffer.data(), 1);
        fuzz::checkNotInternal(s, "ByteSource::readAt");
      }
      if ((*source)->readAt(entry.size, buffer.data(), 1).isOk()) fuzz::fail("read past the end of a zip entry");
    }
  }

  auto archive = data::NpzArchive::open(path);
  if (!archive.isOk()) {
    fuzz::checkNotInternal(archive.status(), "NpzArchive::open");
    return 0;
  }
  for (const std::string& name : archive->names()) {
    auto reader = archive->openArray(name);
    if (!reader.isOk()) {
      fuzz::checkNotInternal(reader.status(), "NpzArchive::openArray");
      continue;
    }
    if (!(*reader)->header().shape.empty()) {
      int64_t count = std::min<int64_t>((*reader)->rows(), 2);
      std::vector<std::byte> rows(static_cast<size_t>(count) * (*reader)->rowBytes());
      fuzz::checkNotInternal((*reader)->readRows(0, count, rows.data()), "NpyArrayReader::readRows");
    }
    auto all = archive->read(name);
    if (!all.isOk()) fuzz::checkNotInternal(all.status(), "NpzArchive::read");
  }
  auto everything = data::readNpz(path);
  if (!everything.isOk()) fuzz::checkNotInternal(everything.status(), "readNpz");
  return 0;
}
