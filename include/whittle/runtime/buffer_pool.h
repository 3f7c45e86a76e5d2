#pragma once

#include <map>
#include <memory>

#include "whittle/ir/tensor.h"

namespace whittle::runtime {

/// Reuses tensor buffers across values whose lifetimes do not overlap: the session gives a
/// buffer back when the last consumer of its value has run, and the next allocation of a
/// similar size takes it. Buffers are 64-byte aligned and uninitialised.
class BufferPool {
 public:
  std::shared_ptr<ir::Buffer> acquire(size_t bytes);
  /// Takes a buffer back if nobody else holds it.
  void release(std::shared_ptr<ir::Buffer> buffer);
  /// Bytes currently held, free or in use, and the peak.
  size_t bytesAllocated() const { return allocated_; }
  size_t peakBytes() const { return peak_; }

 private:
  std::multimap<size_t, std::shared_ptr<ir::Buffer>> free_;
  size_t allocated_ = 0;
  size_t peak_ = 0;
};

}  // namespace whittle::runtime
