#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

void registerElementwiseKernels(KernelRegistry& registry) {}

}  // namespace whittle::runtime::cpu
