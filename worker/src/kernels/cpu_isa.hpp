#pragma once
// The instruction set a kernel's hand-picked code path runs: the widest this CPU has, or a lesser
// one that the worker's environment names in BRIDGE_CPU_ISA (avx2, baseline), to compare them and
// for the tests, which check each path this machine can run. Read at each call: cheap beside a
// kernel, and a test may change it between runs.
namespace bridge::worker {

enum class CpuIsa { kBaseline, kAvx2, kAvx512 };

// Where the target attribute and __builtin_cpu_supports of GCC on x86-64 are there to pick a path
// at run time; elsewhere every kernel takes its portable path.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BRIDGE_KERNELS_PICK_ISA 1
#else
#define BRIDGE_KERNELS_PICK_ISA 0
#endif

CpuIsa kernel_isa();

}  // namespace bridge::worker
