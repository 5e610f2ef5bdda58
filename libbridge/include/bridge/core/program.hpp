#pragma once
/// @file What the fleet's programs share around main(): exit codes and stop signals.

#include <functional>

#include "bridge/core/notifier.hpp"

namespace bridge::core {

/// Runs a program's body and maps failures to the documented exit codes: a ConfigError prints
/// "NAME: message" and returns 2; any other exception prints "NAME: fatal: message" and returns 1.
int run_program(const char* name, const std::function<int()>& body);

/// From now on SIGINT and SIGTERM call `stop.notify()` (an eventfd write, async-signal-safe).
/// `stop` must outlive the process's signal handling; call clear_stop_signals() before it dies.
void stop_on_signals(Notifier& stop);
void clear_stop_signals();

/// From now on SIGHUP calls `reload.notify()`; clear_stop_signals() ends it too.
void reload_on_sighup(Notifier& reload);

}  // namespace bridge::core
