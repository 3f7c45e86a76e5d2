#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "whittle/common/status.h"

namespace whittle {

/// A read-only memory mapping of a whole file; unmapped when the last reference goes.
class MappedFile {
 public:
  static Expected<std::shared_ptr<const MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile() = default;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

/// A file opened read-only: its descriptor (the caller closes it) and its size in bytes.
struct OpenFile {
  int fd = -1;
  uint64_t size = 0;
};

/// Opens `path` read-only. A missing path is notFound; anything but a regular file, or a file
/// that cannot be opened, is an error naming it.
Expected<OpenFile> openRegularFile(const std::string& path);

/// Reads a whole file; a missing or unreadable file is an error naming it.
Expected<std::string> readFile(const std::string& path);

/// Writes a file by way of a temporary file in the same folder, renamed into place when
/// everything was written. On any failure the temporary file is removed and the
/// destination is left as it was.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();  ///< Removes the temporary file unless commit() succeeded.
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Status open();
  Status write(const void* data, size_t size);
  /// Flushes, closes and renames the temporary file onto the destination.
  Status commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tempPath_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Writes `contents` to `path` atomically.
Status writeFileAtomic(const std::string& path, const std::string& contents);

/// The folder part of a path ("." when there is none).
std::string parentDirectory(const std::string& path);
/// Whether two paths name the same existing file (same device and inode).
bool sameFile(const std::string& a, const std::string& b);
bool fileExists(const std::string& path);
/// Size of a file in bytes, or -1.
int64_t fileSize(const std::string& path);

}  // namespace whittle
