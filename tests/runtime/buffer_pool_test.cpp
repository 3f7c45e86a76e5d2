#include "whittle/runtime/buffer_pool.h"

#include <catch2/catch.hpp>

namespace whittle {

TEST_CASE("the buffer pool counts live bytes: free, held, and let go by their last holder", "[runtime]") {
  runtime::BufferPool pool;
  auto a = pool.acquire(1000);
  auto b = pool.acquire(4000);
  CHECK(pool.bytesAllocated() == 5000);
  CHECK(pool.peakBytes() == 5000);
  pool.release(std::move(a));  // back in the pool: still allocated
  CHECK(pool.bytesAllocated() == 5000);
  auto c = pool.acquire(900);  // reuses a's buffer
  CHECK(pool.bytesAllocated() == 5000);
  b.reset();  // a caller dropping an output it was handed: no longer counted
  CHECK(pool.bytesAllocated() == 1000);
  for (int run = 0; run < 100; ++run) {  // repeated runs that hand their outputs out
    auto out = pool.acquire(4000);
    CHECK(pool.bytesAllocated() == 5000);
  }
  CHECK(pool.bytesAllocated() == 1000);
  CHECK(pool.peakBytes() == 5000);
}

TEST_CASE("a buffer may outlive its pool", "[runtime]") {
  std::shared_ptr<ir::Buffer> kept;
  {
    runtime::BufferPool pool;
    kept = pool.acquire(64);
    kept->mutableData()[0] = std::byte{7};
  }
  CHECK(kept->data()[0] == std::byte{7});
}

TEST_CASE("the buffer pool takes new buffers from its allocator (a backend's memory)", "[runtime]") {
  runtime::BufferPool pool;
  std::vector<size_t> asked;
  bool fail = false;
  pool.setAllocator([&](size_t bytes) -> std::shared_ptr<ir::Buffer> {
    asked.push_back(bytes);
    if (fail) return nullptr;
    return ir::Buffer::allocateUninitialized(bytes);
  });
  auto a = pool.acquire(512);
  REQUIRE(a);
  CHECK(asked == std::vector<size_t>{512});
  pool.release(std::move(a));
  auto b = pool.acquire(500);  // from the pool, not the allocator
  CHECK(asked.size() == 1);
  fail = true;
  CHECK(pool.acquire(1 << 20) == nullptr);  // a failed allocation is a null buffer, not a throw
  CHECK(pool.bytesAllocated() == b->size());
  // Read-only views (the CUDA backend's device buffers) are never pooled.
  static const std::byte bytes[16] = {};
  fail = false;
  pool.setAllocator([](size_t n) { return ir::Buffer::view(bytes, n, nullptr); });
  auto v = pool.acquire(16);
  CHECK_FALSE(v->writable());
  CHECK(pool.bytesAllocated() == b->size() + 16);
  pool.release(std::move(v));  // not kept: its last holder let go
  CHECK(pool.bytesAllocated() == b->size());
}

}  // namespace whittle
