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
  // The returned pointer owns the real buffer through its deleter, which also takes the
  // bytes off the live count when the last holder lets go.
  std::shared_ptr<ir::Buffer> real = allocator_ ? allocator_(bytes) : ir::Buffer::allocateUninitialized(bytes);
  if (!real) return nullptr;
  ir::Buffer* raw = real.get();
  const size_t size = real->size();
  std::shared_ptr<ir::Buffer> tracked(raw, [real = std::move(real), live = live_, size](ir::Buffer*) mutable {
    real.reset();
    *live -= size;
  });
  peak_ = std::max(peak_, *live_ += size);
  return tracked;
}

void BufferPool::release(std::shared_ptr<ir::Buffer> buffer) {
  if (!buffer || buffer.use_count() != 1 || !buffer->writable()) return;
  size_t size = buffer->size();
  free_.emplace(size, std::move(buffer));
}

}  // namespace whittle::runtime
