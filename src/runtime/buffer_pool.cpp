#include "whittle/runtime/buffer_pool.h"

#include <algorithm>

namespace whittle::runtime {

std::shared_ptr<ir::Buffer> BufferPool::acquire(size_t bytes) {
  // Best fit among free buffers no more than twice the request, so big buffers are not
  // wasted on small values.
  auto it = free_.lower_bound(bytes);
  if (it != free_.end() && it->first <= std::max<size_t>(bytes * 2, 256)) {
    auto buffer = std::move(it->second);
    free_.erase(it);
    return buffer;
  }
  auto buffer = ir::Buffer::allocateUninitialized(bytes);
  allocated_ += bytes;
  peak_ = std::max(peak_, allocated_);
  return buffer;
}

void BufferPool::release(std::shared_ptr<ir::Buffer> buffer) {
  if (!buffer || buffer.use_count() != 1 || !buffer->writable()) return;
  size_t size = buffer->size();
  free_.emplace(size, std::move(buffer));
}

}  // namespace whittle::runtime
