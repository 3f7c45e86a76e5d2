// The float outputs kept for the tuner's trials (src/tune/output_store.h).
#include "tune/output_store.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace whittle::tune {

Status OutputStore::append(BatchOutputs batch) {
  int64_t bytes = 0;
  for (const auto& v : batch) bytes += static_cast<int64_t>(v.size() * sizeof(float));
  Entry e;
  if (!file_ && heldBytes_ + bytes <= memoryBytes_) {
    e.memoryIndex = static_cast<int64_t>(memory_.size());
    memory_.push_back(std::move(batch));
    heldBytes_ += bytes;
    entries_.push_back(std::move(e));
    return Status::ok();
  }
  std::lock_guard<std::mutex> lock(fileMutex_);
  if (!file_) {
    file_.reset(std::tmpfile());
    if (!file_) return ioError(std::string("the float outputs past the evaluation cache: cannot make a temporary file: ") +
                               std::strerror(errno));
  }
  e.offset = fileBytes_;
  for (const auto& v : batch) {
    e.sizes.push_back(v.size());
    if (std::fseek(file_.get(), static_cast<long>(fileBytes_), SEEK_SET) != 0 ||
        std::fwrite(v.data(), sizeof(float), v.size(), file_.get()) != v.size()) {
      return ioError(std::string("the float outputs past the evaluation cache: cannot write the temporary file: ") +
                     std::strerror(errno));
    }
    fileBytes_ += static_cast<int64_t>(v.size() * sizeof(float));
  }
  entries_.push_back(std::move(e));
  return Status::ok();
}

Expected<const BatchOutputs*> OutputStore::get(size_t b, BatchOutputs& scratch) const {
  if (b >= entries_.size()) return internalError("output store: batch " + std::to_string(b) + " was never stored");
  const Entry& e = entries_[b];
  if (e.memoryIndex >= 0) return &memory_[static_cast<size_t>(e.memoryIndex)];
  scratch.resize(e.sizes.size());
  std::lock_guard<std::mutex> lock(fileMutex_);
  if (std::fflush(file_.get()) != 0 || std::fseek(file_.get(), static_cast<long>(e.offset), SEEK_SET) != 0) {
    return ioError("the float outputs past the evaluation cache: cannot read the temporary file back");
  }
  for (size_t k = 0; k < e.sizes.size(); ++k) {
    scratch[k].resize(e.sizes[k]);
    if (std::fread(scratch[k].data(), sizeof(float), e.sizes[k], file_.get()) != e.sizes[k]) {
      return ioError("the float outputs past the evaluation cache: the temporary file ended early (batch " +
                     std::to_string(b) + ")");
    }
  }
  return &scratch;
}

}  // namespace whittle::tune
