// The CPU kernel registry: one explicit list of op families (no self-registering statics,
// which linkers drop from static libraries). Each family lives in its own file.
#include "cpu/families.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime {

const KernelRegistry& KernelRegistry::cpu() {
  static const KernelRegistry registry = [] {
    KernelRegistry r;
    cpu::registerElementwiseKernels(r);
    cpu::registerShapeKernels(r);
    cpu::registerConvKernels(r);
    cpu::registerPoolKernels(r);
    cpu::registerMatMulKernels(r);
    cpu::registerMatMulNBitsKernels(r);
    cpu::registerNormalizationKernels(r);
    cpu::registerReductionKernels(r);
    cpu::registerRecurrentKernels(r);
    cpu::registerQuantKernels(r);
    cpu::registerLossKernels(r);
    cpu::registerGridSampleKernels(r);
    cpu::registerCol2ImKernels(r);
    cpu::registerDetectionKernels(r);
    cpu::registerEinsumKernels(r);
    cpu::registerSelectionKernels(r);
    cpu::registerMathMiscKernels(r);
    cpu::registerBitwiseKernels(r);
    cpu::registerSignalKernels(r);
    cpu::registerTrainingKernels(r);
    cpu::registerRandomKernels(r);
    cpu::registerStringKernels(r);
    cpu::registerTfIdfKernels(r);
    cpu::registerMlKernels(r);
    cpu::registerMlTreeKernels(r);
    cpu::registerMlSvmKernels(r);
    cpu::registerImageDecoderKernels(r);
    cpu::registerTransformerKernels(r);
    cpu::registerSequenceKernels(r);
    cpu::registerRmsRotaryKernels(r);
    cpu::registerOnnxAttentionKernels(r);
    return r;
  }();
  return registry;
}

}  // namespace whittle::runtime
