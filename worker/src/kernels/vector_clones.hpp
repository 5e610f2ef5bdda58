#pragma once
// BRIDGE_VECTOR_CLONES: compiles a function three times (AVX-512, AVX2+FMA, baseline x86-64) and
// picks the best one the CPU has when the program loads, so that one portable binary gets the wide
// vectors where they exist. For the loops the compiler vectorises; a no-op off GCC on x86-64.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BRIDGE_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BRIDGE_VECTOR_CLONES
#endif
