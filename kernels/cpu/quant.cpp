#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

void registerQuantKernels(KernelRegistry& registry) {}

}  // namespace whittle::runtime::cpu
