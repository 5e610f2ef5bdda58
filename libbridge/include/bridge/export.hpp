#pragma once
/// @file BRIDGE_API marks the public client API, the only names libgpubridge exports: everything
/// else in the library is compiled with hidden visibility (libbridge/CMakeLists.txt), and
/// libbridge/gpubridge.map keeps the standard library's template instances local too.

#define BRIDGE_API [[gnu::visibility("default")]]
