#pragma once
// The float model's outputs on the evaluation data, batch by batch, kept for every trial: in
// memory up to a byte budget, the batches after it in an unnamed temporary file (removed by the
// system when the store closes), so that the tuner's memory does not grow with the samples.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "whittle/common/status.h"

namespace whittle::tune {

/// One batch: per output, its real elements as floats (empty for an output not compared).
using BatchOutputs = std::vector<std::vector<float>>;

class OutputStore {
 public:
  /// `memoryBytes`: the batches are kept in memory while their floats total at most this; the
  /// first batch past it and every later one go to the file.
  explicit OutputStore(int64_t memoryBytes) : memoryBytes_(memoryBytes) {}

  /// Appends the next batch. An I/O error when the temporary file cannot be made or written.
  Status append(BatchOutputs batch);
  size_t size() const { return entries_.size(); }
  /// Batch `b`: a pointer into memory, or the batch read back into `scratch` (then `scratch`).
  /// Safe to call from several threads.
  Expected<const BatchOutputs*> get(size_t b, BatchOutputs& scratch) const;
  /// Bytes held in memory and in the file.
  int64_t memoryBytes() const { return heldBytes_; }
  int64_t fileBytes() const { return fileBytes_; }

 private:
  struct Entry {
    int64_t memoryIndex = -1;      ///< into memory_, or -1 when in the file
    int64_t offset = 0;            ///< in the file
    std::vector<uint64_t> sizes;   ///< floats per output, in the file
  };
  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  int64_t memoryBytes_;
  int64_t heldBytes_ = 0;
  int64_t fileBytes_ = 0;
  std::vector<Entry> entries_;
  std::vector<BatchOutputs> memory_;
  std::unique_ptr<std::FILE, FileCloser> file_;
  mutable std::mutex fileMutex_;
};

}  // namespace whittle::tune
