#pragma once
/// @file What the fleet's programs share around main(): exit codes and stop signals.

#include <functional>

#include "bridge/core/notifier.hpp"

namespace bridge::core {

/// Runs a program's body and maps failures to the documented exit codes: a ConfigError prints
/// "NAME: message" and returns 2; any other exception prints "NAME: fatal: message" and returns 1.
/// First, before the body starts any thread, SIGINT, SIGTERM and SIGHUP are blocked and left to one
/// thread of their own (sigwait), so that no signal interrupts another thread's system call (libzmq
/// reports EINTR from a send or a receive). Until a notifier is set below, each does what it does by
/// default: end the process.
int run_program(const char* name, const std::function<int()>& body);

/// From now on SIGINT and SIGTERM call `stop.notify()` (on the signals' thread). `stop` must outlive
/// the process's signal handling; call clear_stop_signals() before it dies. Outside run_program(),
/// call it before the program starts any thread (threads started before would take these signals
/// and end the process).
void stop_on_signals(Notifier& stop);
void clear_stop_signals();

/// From now on SIGHUP calls `reload.notify()`; clear_stop_signals() ends it too.
void reload_on_sighup(Notifier& reload);

/// Called first in main(): where the system gives transparent huge pages only on request
/// (/sys/kernel/mm/transparent_hugepage/enabled is `madvise`), runs this program again (same pid,
/// same arguments) with glibc's malloc asking for them on its large blocks (GLIBC_TUNABLES
/// glibc.malloc.hugetlb=1). A tensor's bytes arrive in a buffer ZeroMQ has just allocated, and
/// fresh memory takes a page fault per 4 KiB page on its first write: a 64 MiB transfer took 3 to
/// 6 times longer for that on a virtual machine. Does nothing where GLIBC_TUNABLES already names
/// glibc.malloc.hugetlb (the operator's choice: `glibc.malloc.hugetlb=0` keeps 4 KiB pages), where
/// huge pages are always or never given, where malloc is jemalloc's (which has a setting of its
/// own), for a setuid or file-capability binary, when started through the dynamic loader by hand,
/// or if the exec fails. The run again names its thread after argv[0] (not "exe").
void use_huge_pages_for_large_blocks(char** argv);

}  // namespace bridge::core
