#include "data/byte_source.h"

#include "whittle/common/file_util.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

namespace whittle::data {
namespace {

std::string errnoText() { return std::strerror(errno); }

class FileRangeSource final : public ByteSource {
 public:
  FileRangeSource(std::shared_ptr<FileHandle> file, uint64_t offset, uint64_t length, std::string label)
      : file_(std::move(file)), offset_(offset), length_(length), label_(std::move(label)) {}

  Status readAt(uint64_t offset, void* dst, size_t n) override {
    if (offset > length_ || n > length_ - offset) {
      return invalidInput(label_ + ": truncated: needs " + std::to_string(offset + n) + " bytes, has " +
                          std::to_string(length_));
    }
    return file_->readAt(offset_ + offset, dst, n);
  }
  int64_t size() const override { return static_cast<int64_t>(length_); }
  const std::string& label() const override { return label_; }

 private:
  std::shared_ptr<FileHandle> file_;
  uint64_t offset_;
  uint64_t length_;
  std::string label_;
};

class InflateSource final : public ByteSource {
 public:
  InflateSource(std::shared_ptr<FileHandle> file, uint64_t offset, uint64_t compressedSize, uint64_t size,
                std::string label)
      : file_(std::move(file)), offset_(offset), compressedSize_(compressedSize), size_(size), label_(std::move(label)) {}
  ~InflateSource() override {
    if (initialized_) inflateEnd(&stream_);
  }

  Status readAt(uint64_t offset, void* dst, size_t n) override {
    if (offset > size_ || n > size_ - offset) {
      return invalidInput(label_ + ": truncated: needs " + std::to_string(offset + n) + " bytes, has " +
                          std::to_string(size_));
    }
    if (!initialized_ || offset < position_) WH_RETURN_IF_ERROR(restart());
    // Skip forward to `offset`, then inflate straight into the caller's buffer.
    std::vector<unsigned char> scratch;
    while (position_ < offset) {
      size_t step = static_cast<size_t>(std::min<uint64_t>(offset - position_, 1 << 16));
      scratch.resize(step);
      WH_RETURN_IF_ERROR(inflateInto(scratch.data(), step));
    }
    return inflateInto(static_cast<unsigned char*>(dst), n);
  }
  int64_t size() const override { return static_cast<int64_t>(size_); }
  const std::string& label() const override { return label_; }

 private:
  Status restart() {
    if (initialized_) {
      inflateReset(&stream_);
    } else {
      std::memset(&stream_, 0, sizeof(stream_));
      if (inflateInit2(&stream_, -MAX_WBITS) != Z_OK) return internalError(label_ + ": cannot initialise zlib");
      initialized_ = true;
    }
    stream_.next_in = nullptr;
    stream_.avail_in = 0;
    consumed_ = 0;
    position_ = 0;
    return Status::ok();
  }

  Status inflateInto(unsigned char* dst, size_t n) {
    while (n > 0) {
      if (stream_.avail_in == 0) {
        uint64_t left = compressedSize_ - consumed_;
        if (left == 0) return invalidInput(label_ + ": compressed data ends early (corrupt archive)");
        size_t chunk = static_cast<size_t>(std::min<uint64_t>(left, input_.size()));
        WH_RETURN_IF_ERROR(file_->readAt(offset_ + consumed_, input_.data(), chunk));
        consumed_ += chunk;
        stream_.next_in = input_.data();
        stream_.avail_in = static_cast<uInt>(chunk);
      }
      uInt want = static_cast<uInt>(std::min<size_t>(n, UINT_MAX));
      stream_.next_out = dst;
      stream_.avail_out = want;
      int rc = inflate(&stream_, Z_NO_FLUSH);
      size_t produced = want - stream_.avail_out;
      dst += produced;
      n -= produced;
      position_ += produced;
      if (rc == Z_STREAM_END && n > 0) return invalidInput(label_ + ": compressed data ends early (corrupt archive)");
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        return invalidInput(label_ + ": corrupt deflate data" +
                            (stream_.msg != nullptr ? std::string(" (") + stream_.msg + ")" : std::string()));
      }
      if (rc == Z_BUF_ERROR && produced == 0 && stream_.avail_in != 0) {
        return invalidInput(label_ + ": corrupt deflate data");
      }
    }
    return Status::ok();
  }

  std::shared_ptr<FileHandle> file_;
  uint64_t offset_;
  uint64_t compressedSize_;
  uint64_t size_;
  std::string label_;
  z_stream stream_{};
  bool initialized_ = false;
  uint64_t consumed_ = 0;
  uint64_t position_ = 0;
  std::vector<unsigned char> input_ = std::vector<unsigned char>(1 << 16);
};

class GzipSource final : public ByteSource {
 public:
  GzipSource(gzFile file, std::string label) : file_(file), label_(std::move(label)) {}
  ~GzipSource() override { gzclose(file_); }

  Status readAt(uint64_t offset, void* dst, size_t n) override {
    if (position_ != offset) {
      if (gzseek(file_, static_cast<z_off_t>(offset), SEEK_SET) < 0) return error("cannot seek");
      position_ = offset;
    }
    auto* out = static_cast<unsigned char*>(dst);
    while (n > 0) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n, 1u << 30));
      int got = gzread(file_, out, chunk);
      if (got < 0) return error("corrupt gzip data");
      if (got == 0) {
        position_ = UINT64_MAX;
        return invalidInput(label_ + ": truncated: ends before byte " + std::to_string(offset + (out - static_cast<unsigned char*>(dst)) + n));
      }
      out += got;
      n -= static_cast<size_t>(got);
      position_ += static_cast<uint64_t>(got);
    }
    return Status::ok();
  }
  int64_t size() const override { return -1; }
  const std::string& label() const override { return label_; }

 private:
  Status error(const std::string& what) {
    int code = 0;
    const char* msg = gzerror(file_, &code);
    position_ = UINT64_MAX;
    return invalidInput(label_ + ": " + what + (msg != nullptr && *msg ? std::string(" (") + msg + ")" : std::string()));
  }

  gzFile file_;
  std::string label_;
  uint64_t position_ = 0;
};

}  // namespace

Expected<std::shared_ptr<FileHandle>> FileHandle::open(const std::string& path) {
  WH_ASSIGN_OR_RETURN(OpenFile opened, openRegularFile(path));
  std::shared_ptr<FileHandle> file(new FileHandle());
  file->fd_ = opened.fd;
  file->size_ = opened.size;
  file->path_ = path;
  return file;
}

FileHandle::~FileHandle() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileHandle::readAt(uint64_t offset, void* dst, size_t n) const {
  auto* out = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ioError(path_ + ": read failed: " + errnoText());
    if (got == 0) return invalidInput(path_ + ": truncated: ends at byte " + std::to_string(offset));
    out += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return Status::ok();
}

std::unique_ptr<ByteSource> fileRangeSource(std::shared_ptr<FileHandle> file, uint64_t offset, uint64_t length,
                                            std::string label) {
  return std::make_unique<FileRangeSource>(std::move(file), offset, length, std::move(label));
}

std::unique_ptr<ByteSource> inflateSource(std::shared_ptr<FileHandle> file, uint64_t offset, uint64_t compressedSize,
                                          uint64_t size, std::string label) {
  return std::make_unique<InflateSource>(std::move(file), offset, compressedSize, size, std::move(label));
}

Expected<std::unique_ptr<ByteSource>> gzipSource(const std::string& path) {
  // Open through FileHandle first for the same missing-file and folder messages.
  WH_ASSIGN_OR_RETURN(auto handle, FileHandle::open(path));
  int fd = ::dup(handle->fd());
  if (fd < 0) return ioError(path + ": cannot open: " + errnoText());
  gzFile file = gzdopen(fd, "rb");
  if (file == nullptr) {
    ::close(fd);
    return ioError(path + ": cannot open as gzip");
  }
  gzbuffer(file, 1 << 16);
  return std::unique_ptr<ByteSource>(std::make_unique<GzipSource>(file, path));
}

Expected<std::unique_ptr<ByteSource>> openByteSource(const std::string& path) {
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) return gzipSource(path);
  WH_ASSIGN_OR_RETURN(auto handle, FileHandle::open(path));
  uint64_t size = handle->size();
  return fileRangeSource(std::move(handle), 0, size, path);
}

}  // namespace whittle::data
