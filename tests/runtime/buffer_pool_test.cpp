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

}  // namespace whittle
