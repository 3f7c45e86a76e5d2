#include "whittle/common/file_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace whittle {
namespace {

std::string errnoText() { return std::strerror(errno); }

}  // namespace

Expected<OpenFile> openRegularFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return notFound(path + ": no such file");
    return ioError(path + ": cannot open: " + errnoText());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return ioError(path + ": not a regular file");
  }
  return OpenFile{fd, static_cast<uint64_t>(st.st_size)};
}

Expected<std::shared_ptr<const MappedFile>> MappedFile::open(const std::string& path) {
  WH_ASSIGN_OR_RETURN(OpenFile opened, openRegularFile(path));
  const int fd = opened.fd;
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->size_ = static_cast<size_t>(opened.size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return ioError(path + ": cannot map: " + errnoText());
    }
    file->data_ = static_cast<std::byte*>(p);
  }
  ::close(fd);
  return std::shared_ptr<const MappedFile>(std::move(file));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

Expected<std::string> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return notFound(path + ": no such file");
    return ioError(path + ": cannot open: " + errnoText());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    return ioError(path + ": is a directory, expected a file");
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return ioError(path + ": read failed: " + (n < 0 ? errnoText() : std::string("unexpected end of file")));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return out;
}

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tempPath_.empty()) ::unlink(tempPath_.c_str());
}

Status AtomicFileWriter::open() {
  std::string pattern = path_ + ".tmp-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  fd_ = ::mkstemp(buffer.data());
  if (fd_ < 0) return ioError(path_ + ": cannot create a file here: " + errnoText());
  tempPath_ = buffer.data();
  ::fchmod(fd_, 0644);
  return Status::ok();
}

Status AtomicFileWriter::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ioError(path_ + ": write failed: " + errnoText());
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::ok();
}

Status AtomicFileWriter::commit() {
  if (::close(fd_) != 0) {
    fd_ = -1;
    return ioError(path_ + ": write failed: " + errnoText());
  }
  fd_ = -1;
  if (::rename(tempPath_.c_str(), path_.c_str()) != 0) return ioError(path_ + ": cannot rename into place: " + errnoText());
  committed_ = true;
  return Status::ok();
}

Status writeFileAtomic(const std::string& path, const std::string& contents) {
  AtomicFileWriter writer(path);
  WH_RETURN_IF_ERROR(writer.open());
  WH_RETURN_IF_ERROR(writer.write(contents.data(), contents.size()));
  return writer.commit();
}

std::string parentDirectory(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool sameFile(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool fileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

int64_t fileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

}  // namespace whittle
