#include "cpu_isa.hpp"

#include <cstdlib>
#include <string_view>

namespace bridge::worker {

CpuIsa kernel_isa() {
  const char* cap = std::getenv("BRIDGE_CPU_ISA");
  const std::string_view limit = cap == nullptr ? "" : cap;
#if BRIDGE_KERNELS_PICK_ISA
  if (limit != "avx2" && limit != "baseline" && __builtin_cpu_supports("x86-64-v4")) return CpuIsa::kAvx512;
  if (limit != "baseline" && __builtin_cpu_supports("x86-64-v3")) return CpuIsa::kAvx2;
#endif
  return CpuIsa::kBaseline;
}

}  // namespace bridge::worker
