#pragma once
/// @file Command lines with CLI11, the same way in every program of the fleet: flags that override
/// a config file's keys, and the exit codes of program.hpp (0 done, 1 failure, 2 usage). Include it
/// only from a program's main file: CLI11 is a large header.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bridge/core/program.hpp"

namespace bridge::core {

/// Flags that override fields a config file has set: each flag is parsed into its own value and
/// copied into its field by apply(), after the file is read, only when it was given.
class Overrides {
 public:
  template <class T>
  CLI::Option* add(CLI::App& app, const std::string& name, T& field, const std::string& help) {
    auto given = std::make_shared<T>();
    CLI::Option* option = app.add_option(name, *given, help);
    apply_.push_back([option, given, &field] {
      if (option->count() > 0) field = *given;
    });
    return option;
  }
  /// A flag that takes one of two words, for a bool field: true for `yes`.
  CLI::Option* add_either(CLI::App& app, const std::string& name, bool& field, const std::string& yes,
                          const std::string& no, const std::string& help) {
    auto given = std::make_shared<std::string>();
    CLI::Option* option = app.add_option(name, *given, help)->check(CLI::IsMember({yes, no}));
    apply_.push_back([option, given, &field, yes] {
      if (option->count() > 0) field = *given == yes;
    });
    return option;
  }
  void apply() const {
    for (const auto& f : apply_) f();
  }

 private:
  std::vector<std::function<void()>> apply_;
};

/// Parses argv with `app`, then runs `body` as run_program() does. --help prints the help and
/// exits 0; a command line CLI11 refuses prints "NAME: what is wrong" and exits 2.
inline int run_cli(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  const std::string name = app.get_name();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see %s --help)\n", name.c_str(), e.what(), name.c_str());
    return 2;
  }
  return run_program(name.c_str(), body);
}

}  // namespace bridge::core
