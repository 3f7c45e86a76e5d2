// ActivationReorder (kernels/cpu/dnnl_glue.cpp): a channels-first <-> channels-last swap moves
// by a tiled transpose, anything else by a oneDNN reorder; both give oneDNN's own result.
#include "cpu/dnnl_glue.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

using namespace whittle::runtime::cpu;
using dt = dnnl::memory::data_type;

namespace {

/// `from` moved into `to` by ActivationReorder and by a plain oneDNN reorder: the same bytes.
void checkAgainstOneDnn(const dnnl::memory::desc& fromDesc, const dnnl::memory::desc& toDesc,
                        const std::vector<int64_t>& logical, bool transposes) {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  dnnl::memory from(fromDesc, engine), to(toDesc, engine), expected(toDesc, engine);
  const size_t bytes = fromDesc.get_size();
  auto* p = static_cast<unsigned char*>(from.get_data_handle());
  for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>((i * 131 + 7) % 251);
  std::memset(to.get_data_handle(), 0, toDesc.get_size());
  ActivationReorder move(from, to, logical);
  CHECK(move.transposes() == transposes);
  move.execute(stream, from, to);
  dnnl::reorder(from, expected).execute(stream, from, expected);
  stream.wait();
  CHECK(std::memcmp(to.get_data_handle(), expected.get_data_handle(), toDesc.get_size()) == 0);
}

}  // namespace

TEST_CASE("ActivationReorder moves channels last to first by a transpose", "[kernels][dnnl]") {
  // 512 x 508 is magika's Conv output (oneDNN's reorder runs at 3.6 GB/s on it); the others: a
  // spatial size under one tile, several images, 1-D and 3-D, and bfloat16. Channels first ->
  // last, and fewer than 32 channels, stay on oneDNN (as fast or faster there).
  const std::vector<std::vector<int64_t>> shapes = {
      {1, 512, 1, 508}, {1, 32, 5, 7}, {2, 40, 9, 11}, {3, 33, 17}, {1, 48, 3, 4, 5}, {1, 3, 5, 7}, {1, 31, 9, 9}};
  for (const auto& dims : shapes) {
    for (dt type : {dt::f32, dt::bf16}) {
      INFO("rank " << dims.size() << " channels " << dims[1] << " bf16 " << (type == dt::bf16));
      dnnl::memory::desc first = activationDesc(dims, type, Layout::kChannelsFirst);
      dnnl::memory::desc last = activationDesc(dims, type, Layout::kChannelsLast);
      checkAgainstOneDnn(last, first, dims, dims[1] >= ActivationReorder::kTransposeMinChannels);
      checkAgainstOneDnn(first, last, dims, false);
    }
  }
}

TEST_CASE("ActivationReorder leaves other layouts and types to oneDNN", "[kernels][dnnl]") {
  const std::vector<int64_t> dims = {1, 32, 6, 10};
  dnnl::memory::desc last = activationDesc(dims, dt::f32, Layout::kChannelsLast);
  dnnl::memory::desc blocked(toDnnlDims(dims), dt::f32, dnnl::memory::format_tag::nChw16c);
  checkAgainstOneDnn(blocked, last, dims, false);
  checkAgainstOneDnn(last, blocked, dims, false);
  // float32 into bfloat16: a conversion, not a move.
  checkAgainstOneDnn(last, activationDesc(dims, dt::bf16, Layout::kChannelsFirst), dims, false);
  // The same layout on both sides (a copy) is not a swap either.
  checkAgainstOneDnn(last, last, dims, false);
}

TEST_CASE("Blocked activations: dims, descriptor and permuteLayout agree with oneDNN's nChw16c", "[kernels][dnnl]") {
  const std::vector<int64_t> logical = {2, 32, 3, 5};
  CHECK(physicalDims(logical, Layout::kBlocked16) == std::vector<int64_t>{2, 2, 3, 5, 16});
  CHECK(logicalDims({2, 2, 3, 5, 16}, Layout::kBlocked16) == logical);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  std::vector<float> first(2 * 32 * 3 * 5), blocked(first.size()), back(first.size()), expected(first.size());
  for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<float>(i);
  const auto* src = reinterpret_cast<const std::byte*>(first.data());
  permuteLayout(src, reinterpret_cast<std::byte*>(blocked.data()), logical, Layout::kChannelsFirst, Layout::kBlocked16, 4);
  dnnl::memory plain(activationDesc(logical, dt::f32, Layout::kChannelsFirst), engine, first.data());
  dnnl::memory block(activationDesc(logical, dt::f32, Layout::kBlocked16), engine, expected.data());
  dnnl::reorder(plain, block).execute(stream, plain, block);
  stream.wait();
  CHECK(blocked == expected);
  // Blocked -> channels last -> channels first comes back to the start.
  std::vector<float> last(first.size());
  permuteLayout(reinterpret_cast<const std::byte*>(blocked.data()), reinterpret_cast<std::byte*>(last.data()), logical,
                Layout::kBlocked16, Layout::kChannelsLast, 4);
  permuteLayout(reinterpret_cast<const std::byte*>(last.data()), reinterpret_cast<std::byte*>(back.data()), logical,
                Layout::kChannelsLast, Layout::kChannelsFirst, 4);
  CHECK(back == first);
}
