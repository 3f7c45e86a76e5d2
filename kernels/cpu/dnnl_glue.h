#pragma once
// oneDNN glue for the conv and pool families: dims conversion, memory descriptors for
// channels-first (ONNX) and channels-last tensors, and dnnl::error → Status at the call.
// It could serve the other oneDNN-backed families too.

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/tensor.h"
#include "whittle/runtime/backend.h"

namespace whittle::runtime::cpu {

/// The CPU backend's per-session state: one oneDNN engine and stream (kernels/cpu/cpu_backend.cpp).
class CpuContext final : public ExecutionContext {
 public:
  explicit CpuContext(int threads) : ExecutionContext(threads), engine(dnnl::engine::kind::cpu, 0), stream(engine) {}
  dnnl::engine engine;
  dnnl::stream stream;
};

/// The oneDNN engine and stream of a CPU kernel's context.
inline dnnl::engine& engineOf(ExecutionContext& context) { return static_cast<CpuContext&>(context).engine; }
inline dnnl::stream& streamOf(ExecutionContext& context) { return static_cast<CpuContext&>(context).stream; }

/// Where an activation tensor keeps its channels. ONNX tensors are channels first
/// ([N, C, D1, ...]); the CPU lowering may keep values between convolutions channels last
/// ([N, D1, ..., C]), which oneDNN's fastest convolution and pooling kernels read directly,
/// or, for chains of 2-D convolutions at large spatial sizes, blocked ([N, C / 16, H, W, 16],
/// oneDNN's nChw16c: its jit kernels beat channels-last brgconv there; C a multiple of 16).
enum class Layout { kChannelsFirst, kChannelsLast, kBlocked16 };

/// The channel block of Layout::kBlocked16.
inline constexpr int64_t kChannelBlock = 16;

/// The internal domain of ops that the CPU lowering creates (FusedConv, channels-last pools).
inline constexpr const char* kInternalDomain = "com.whittle.internal";

/// Reads a layout attribute (an int: 1 = channels last, 2 = blocked); absent means channels first.
Layout layoutAttr(const ir::Node& node, std::string_view name);

/// The dims a tensor of logical (ONNX) dims `logical` has when stored in `layout`.
std::vector<int64_t> physicalDims(const std::vector<int64_t>& logical, Layout layout);
/// The logical (ONNX) dims of a tensor whose stored dims are `physical` in `layout`.
std::vector<int64_t> logicalDims(const std::vector<int64_t>& physical, Layout layout);

/// int64 dims as oneDNN dims.
dnnl::memory::dims toDnnlDims(const std::vector<int64_t>& dims);

/// The oneDNN element type of `dtype`, or nullopt when oneDNN has none.
std::optional<dnnl::memory::data_type> toDnnlType(ir::DataType dtype);

/// A descriptor for a tensor of logical dims `logical` (N, C, spatial...) stored in `layout`.
dnnl::memory::desc activationDesc(const std::vector<int64_t>& logical, dnnl::memory::data_type type, Layout layout);
/// Moves an activation of logical dims `logical` between two oneDNN memories: a tiled
/// transpose (copyStrided) from dense channels last to dense channels first with at least
/// kTransposeMinChannels channels, else a oneDNN reorder. oneDNN 2.6's channels-last ->
/// channels-first reorder runs at 3.6-9 GB/s where the spatial size is not a multiple of 16
/// (magika's Conv output, 512 channels x 508: 0.58 ms, the tiled transpose 0.07 ms; DNSMOS's
/// 32 x 450 x 60: 0.78 against 0.11 ms).
class ActivationReorder {
 public:
  static constexpr int64_t kTransposeMinChannels = 32;
  ActivationReorder() = default;
  ActivationReorder(const dnnl::memory& from, const dnnl::memory& to, const std::vector<int64_t>& logical);
  /// Whether it moves by a transpose rather than a oneDNN reorder.
  bool transposes() const { return elementSize_ != 0; }
  /// Copies `from`'s data into `to`'s (the memories of the constructor, or of the same descs).
  void execute(dnnl::stream& stream, dnnl::memory& from, dnnl::memory& to) const;

 private:
  dnnl::reorder reorder_;
  std::vector<int64_t> dims_, toStrides_, fromStrides_;  ///< logical dims, strides in elements
  size_t elementSize_ = 0;
};

/// A descriptor for a row-major tensor of `dims`.
dnnl::memory::desc plainDesc(const std::vector<int64_t>& dims, dnnl::memory::data_type type);

/// Whether a primitive's implementation string names oneDNN's slow reference kernels.
bool isReferenceImpl(std::string_view implInfo);

/// Runs `fn`, turning a dnnl::error (or another exception) into a Status that names `what`
/// (usually the node, as "Conv 'conv1'").
template <typename F>
Status dnnlCall(const std::string& what, F&& fn) {
  try {
    fn();
  } catch (const dnnl::error& e) {
    return internalError(what + ": oneDNN failed: " + e.what());
  } catch (const std::exception& e) {
    return internalError(what + ": " + e.what());
  }
  return Status::ok();
}

/// Long-lived memory for packed weights and per-plan scratch, carved (64-byte aligned) from
/// 2 MiB-aligned chunks advised as transparent huge pages: a model's weights then cost a few
/// TLB entries instead of thousands, which matters most when other processes share the CPU.
/// The block lives as long as the returned pointer (or a copy) does. Thread-safe.
std::shared_ptr<std::byte> allocateLongLived(size_t bytes);

/// A oneDNN memory object over a new allocateLongLived() block; `hold` keeps the block alive.
dnnl::memory longLivedMemory(const dnnl::memory::desc& desc, const dnnl::engine& engine,
                             std::shared_ptr<std::byte>& hold);

/// What every int8 plan on a oneDNN primitive with constant weights sets up alike: the weights
/// (`user`, over `data`) reordered once into the layout the primitive chose, a scratchpad buffer
/// of its own (the attribute's scratchpad mode is user), and src/dst memories without a handle,
/// which each run points at its tensors. Plan has members weights, scratchBuffer, scratchpad, src
/// and dst.
template <class Plan, class PrimitiveDesc>
void packInt8Plan(Plan& plan, const PrimitiveDesc& pd, const dnnl::engine& engine, const dnnl::memory::desc& user,
                  void* data, const dnnl::memory::desc& srcMd, const dnnl::memory::desc& dstMd) {
  dnnl::stream stream(engine);
  dnnl::memory userWeights(user, engine, data);
  plan.weights = dnnl::memory(pd.weights_desc(), engine);
  dnnl::reorder(userWeights, plan.weights).execute(stream, userWeights, plan.weights);
  stream.wait();
  plan.scratchBuffer = ir::Buffer::allocateUninitialized(std::max<size_t>(pd.scratchpad_desc().get_size(), 64));
  plan.scratchpad = dnnl::memory(pd.scratchpad_desc(), engine, plan.scratchBuffer->mutableData());
  plan.src = dnnl::memory(srcMd, engine, DNNL_MEMORY_NONE);
  plan.dst = dnnl::memory(dstMd, engine, DNNL_MEMORY_NONE);
}

/// A primitive's arguments, prebuilt once: executing through them skips the C++ API's
/// per-call conversion of an argument map (a heap allocation per primitive per run).
class DnnlArgs {
 public:
  void set(int arg, const dnnl::memory& memory);
  /// Runs `primitive` on `stream` with these arguments; throws dnnl::error.
  void execute(const dnnl::primitive& primitive, dnnl::stream& stream) const;

 private:
  std::vector<dnnl::memory> memories_;
  std::vector<dnnl_exec_arg_t> args_;
};

/// Copies `src` (logical dims `logical`) from channels-first to channels-last order or back,
/// `elementBytes` bytes per element. Used by scalar paths and by tests.
void permuteLayout(const std::byte* src, std::byte* dst, const std::vector<int64_t>& logical, Layout from, Layout to,
                   size_t elementBytes);

}  // namespace whittle::runtime::cpu
