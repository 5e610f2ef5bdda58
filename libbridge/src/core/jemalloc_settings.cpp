// Compiled into the programs linked with jemalloc (cmake/BridgeAllocator.cmake), never into the
// client library. jemalloc reads this string when it starts; MALLOC_CONF in the environment is read
// after it and wins (docs/operations.md, "Memory allocator and huge pages").
//
// thp:always: jemalloc asks for transparent huge pages on all its memory. A tensor's bytes arrive in
// a buffer ZeroMQ has just allocated, and fresh memory takes a page fault per 4 KiB page on its
// first write: with jemalloc's default (4 KiB pages where the system gives huge pages only on
// request), a 64 MiB passthrough ran at half the rate it has with huge pages. Where the system
// gives them always or never, this changes nothing.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "thp:always";
}
