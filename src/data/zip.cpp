#include "data/zip.h"

#include <algorithm>
#include <cstring>

namespace whittle::data {
namespace {

constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
// The most that deflate expands: 258-byte matches of one bit each, plus block overhead.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t le64(const unsigned char* p) { return le32(p) | (static_cast<uint64_t>(le32(p + 4)) << 32); }

}  // namespace

Expected<ZipArchive> ZipArchive::open(const std::string& path) {
  WH_ASSIGN_OR_RETURN(auto file, FileHandle::open(path));
  const uint64_t fileSize = file->size();
  auto corrupt = [&](const std::string& what) { return invalidInput(path + ": not a valid zip archive: " + what); };
  if (fileSize < 22) return corrupt("too short");

  // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
  size_t tailSize = static_cast<size_t>(std::min<uint64_t>(fileSize, 22 + 65535));
  std::vector<unsigned char> tail(tailSize);
  WH_RETURN_IF_ERROR(file->readAt(fileSize - tailSize, tail.data(), tailSize));
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tailSize) - 22; i >= 0; --i) {
    if (le32(&tail[static_cast<size_t>(i)]) == kEndOfCentralDirectory) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return corrupt("no end-of-central-directory record");
  const unsigned char* e = &tail[static_cast<size_t>(eocd)];
  uint64_t count = le16(e + 10);
  uint64_t dirSize = le32(e + 12);
  uint64_t dirOffset = le32(e + 16);
  uint64_t eocdPos = fileSize - tailSize + static_cast<uint64_t>(eocd);

  if (eocdPos >= 20 && (count == 0xFFFF || dirSize == 0xFFFFFFFF || dirOffset == 0xFFFFFFFF)) {
    unsigned char locator[20];
    WH_RETURN_IF_ERROR(file->readAt(eocdPos - 20, locator, 20));
    if (le32(locator) == kZip64EndLocator) {
      uint64_t z64 = le64(locator + 8);
      unsigned char rec[56];
      if (z64 + 56 > fileSize) return corrupt("zip64 record out of range");
      WH_RETURN_IF_ERROR(file->readAt(z64, rec, 56));
      if (le32(rec) != kZip64End) return corrupt("bad zip64 end record");
      count = le64(rec + 32);
      dirSize = le64(rec + 40);
      dirOffset = le64(rec + 48);
    }
  }
  if (dirOffset > fileSize || dirSize > fileSize - dirOffset) return corrupt("central directory out of range");
  if (count > dirSize / 46 + 1) return corrupt("entry count does not fit the central directory");

  std::vector<unsigned char> dir(static_cast<size_t>(dirSize));
  WH_RETURN_IF_ERROR(file->readAt(dirOffset, dir.data(), dir.size()));
  ZipArchive archive;
  archive.path_ = path;
  size_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (pos + 46 > dir.size() || le32(&dir[pos]) != kCentralHeader) return corrupt("bad central directory entry");
    const unsigned char* h = &dir[pos];
    ZipEntry entry;
    entry.flags = le16(h + 8);
    entry.method = le16(h + 10);
    entry.compressedSize = le32(h + 20);
    entry.size = le32(h + 24);
    size_t nameLen = le16(h + 28), extraLen = le16(h + 30), commentLen = le16(h + 32);
    entry.localHeaderOffset = le32(h + 42);
    if (pos + 46 + nameLen + extraLen + commentLen > dir.size()) return corrupt("central directory entry overruns");
    entry.name.assign(reinterpret_cast<const char*>(h + 46), nameLen);
    // Zip64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF, in order.
    const unsigned char* x = h + 46 + nameLen;
    for (size_t off = 0; off + 4 <= extraLen;) {
      uint16_t id = le16(x + off), len = le16(x + off + 2);
      if (off + 4 + len > extraLen) break;
      if (id == 0x0001) {
        const unsigned char* v = x + off + 4;
        size_t left = len;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          if (left >= 8) {
            field = le64(v);
            v += 8;
            left -= 8;
          }
        };
        take(entry.size);
        take(entry.compressedSize);
        take(entry.localHeaderOffset);
      }
      off += 4 + len;
    }
    pos += 46 + nameLen + extraLen + commentLen;
    archive.entries_.push_back(std::move(entry));
  }
  archive.file_ = std::move(file);
  return archive;
}

Expected<std::unique_ptr<ByteSource>> ZipArchive::openEntry(const ZipEntry& entry) const {
  std::string label = path_ + ":" + entry.name;
  if (entry.flags & 0x1) return unimplemented(label + ": encrypted zip entries are not supported");
  unsigned char local[30];
  if (entry.localHeaderOffset > file_->size() || file_->size() - entry.localHeaderOffset < 30) {
    return invalidInput(label + ": local header out of range");
  }
  WH_RETURN_IF_ERROR(file_->readAt(entry.localHeaderOffset, local, 30));
  if (le32(local) != kLocalHeader) return invalidInput(label + ": bad local header");
  uint64_t dataOffset = entry.localHeaderOffset + 30 + le16(local + 26) + le16(local + 28);
  if (dataOffset > file_->size() || entry.compressedSize > file_->size() - dataOffset) {
    return invalidInput(label + ": data out of range (truncated archive?)");
  }
  switch (entry.method) {
    case 0:
      if (entry.compressedSize != entry.size) return invalidInput(label + ": stored entry with differing sizes");
      return fileRangeSource(file_, dataOffset, entry.size, label);
    case 8:
      // Readers allocate what an entry declares: a size that deflate cannot reach from the
      // compressed bytes (it expands at most 1032:1) is a corrupt or hostile directory.
      if (entry.size / kMaxDeflateRatio > entry.compressedSize) {
        return invalidInput(label + ": declares " + std::to_string(entry.size) + " bytes from " +
                            std::to_string(entry.compressedSize) + " compressed bytes, more than deflate can expand to");
      }
      return inflateSource(file_, dataOffset, entry.compressedSize, entry.size, label);
    default:
      return unimplemented(label + ": zip compression method " + std::to_string(entry.method) +
                           " is not supported (only stored and deflate; numpy's savez and savez_compressed write those)");
  }
}

}  // namespace whittle::data
