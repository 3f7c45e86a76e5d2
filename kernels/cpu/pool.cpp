#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

void registerPoolKernels(KernelRegistry& registry) {}

}  // namespace whittle::runtime::cpu
