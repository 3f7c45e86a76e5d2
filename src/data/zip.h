#pragma once
// A minimal reader of zip archives (what numpy's savez and savez_compressed write): the
// central directory, zip64 sizes and offsets, entries stored or deflate-compressed.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/byte_source.h"
#include "whittle/common/status.h"

namespace whittle::data {

/// One member of a zip archive, as its central-directory record describes it.
struct ZipEntry {
  std::string name;
  uint16_t method = 0;  ///< 0 stored, 8 deflate.
  uint16_t flags = 0;
  uint64_t compressedSize = 0;
  uint64_t size = 0;
  uint64_t localHeaderOffset = 0;
};

/// An open zip archive. Entries are read on demand, one ByteSource each.
class ZipArchive {
 public:
  /// Reads the central directory of `path`; errors name the file.
  static Expected<ZipArchive> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  /// A source over the uncompressed bytes of `entry`, labelled "ARCHIVE:NAME".
  Expected<std::unique_ptr<ByteSource>> openEntry(const ZipEntry& entry) const;

 private:
  std::string path_;
  std::shared_ptr<FileHandle> file_;
  std::vector<ZipEntry> entries_;
};

}  // namespace whittle::data
