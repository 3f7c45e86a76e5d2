#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>

#include "whittle/ir/tensor.h"

namespace whittle::runtime {

/// Reuses tensor buffers across values whose lifetimes do not overlap: the session gives a
/// buffer back when the last consumer of its value has run, and the next allocation of a
/// similar size takes it. Buffers are 64-byte aligned and uninitialised.
class BufferPool {
 public:
  /// Where new buffers come from: the session's backend (Backend::allocate); the host heap
  /// by default. A null buffer means the allocation failed.
  using Allocator = std::function<std::shared_ptr<ir::Buffer>(size_t)>;
  void setAllocator(Allocator allocator) { allocator_ = std::move(allocator); }

  std::shared_ptr<ir::Buffer> acquire(size_t bytes);
  /// Takes a buffer back if nobody else holds it.
  void release(std::shared_ptr<ir::Buffer> buffer);
  /// Bytes of the pool's buffers alive now, free in the pool or held by anyone (a kernel,
  /// a caller holding an output), and the peak of that. A buffer stops counting when its last
  /// holder drops it, so repeated runs do not add up.
  size_t bytesAllocated() const { return live_->load(); }
  size_t peakBytes() const { return peak_; }

 private:
  Allocator allocator_;
  std::multimap<size_t, std::shared_ptr<ir::Buffer>> free_;
  /// Shared with each buffer's deleter, which may outlive the pool.
  std::shared_ptr<std::atomic<size_t>> live_ = std::make_shared<std::atomic<size_t>>(0);
  size_t peak_ = 0;
};

}  // namespace whittle::runtime
