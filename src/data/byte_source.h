#pragma once
// Random-access byte sources for the data readers: a plain file (pread), a zip entry stored
// or deflate-compressed, and a gzip file. Compressed sources decompress forward and restart
// from the beginning when asked for an earlier offset, so sequential reading costs one pass
// and memory stays bounded by the caller's buffers.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "whittle/common/status.h"

namespace whittle::data {

/// An open file descriptor, closed with the last reference.
class FileHandle {
 public:
  /// Opens `path` for reading; a missing file is kNotFound, a folder an I/O error.
  static Expected<std::shared_ptr<FileHandle>> open(const std::string& path);
  ~FileHandle();
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  /// Reads exactly `n` bytes at `offset`; a short read is an error naming the file.
  Status readAt(uint64_t offset, void* dst, size_t n) const;

 private:
  FileHandle() = default;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

/// Bytes that can be read at any offset.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Reads exactly `n` bytes at `offset`; reading past the end is an error naming the source.
  virtual Status readAt(uint64_t offset, void* dst, size_t n) = 0;
  /// The number of bytes, or -1 when it is not known without reading everything (gzip).
  virtual int64_t size() const = 0;
  /// The name used in messages: "x.npy", "x.npz:arr_0".
  virtual const std::string& label() const = 0;
};

/// `length` bytes of a file from `offset` on (a whole file, or a stored zip entry).
std::unique_ptr<ByteSource> fileRangeSource(std::shared_ptr<FileHandle> file, uint64_t offset, uint64_t length,
                                            std::string label);
/// A raw-deflate stream of `compressedSize` bytes at `offset` that inflates to `size` bytes.
std::unique_ptr<ByteSource> inflateSource(std::shared_ptr<FileHandle> file, uint64_t offset, uint64_t compressedSize,
                                          uint64_t size, std::string label);
/// A gzip-compressed file (.gz); the uncompressed size is unknown.
Expected<std::unique_ptr<ByteSource>> gzipSource(const std::string& path);
/// The whole file at `path`, or its decompressed contents when the name ends in ".gz".
Expected<std::unique_ptr<ByteSource>> openByteSource(const std::string& path);

}  // namespace whittle::data
