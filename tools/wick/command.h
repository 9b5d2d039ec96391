#pragma once
// Self-registration of `wick` subcommands. Each subcommand lives in its own .cpp file and
// registers itself with a file-scope `wick::cli::Command` object; main.cpp builds the CLI11
// tree from whatever registered, so adding a subcommand never touches main.cpp.
//
//   static wick::cli::Command bench_engine{
//       "bench engine", "Time the tensor engine's basic operations",
//       [](CLI::App& app) {
//         auto opts = std::make_shared<Options>();
//         app.add_flag("--json", opts->json, "...");
//         return [opts] { return run(*opts); };   // runs after parsing; returns the exit code
//       }};
//
// A path with spaces ("bench engine") nests under a group ("bench"). A group needs no
// registration of its own; register it with `Command::group` to give it a description.
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace wick::cli {

/// Runs a parsed subcommand; returns the process exit code.
using Action = std::function<int()>;
/// Adds the subcommand's options to `app` and returns the action to run once parsed.
using Setup = std::function<Action(CLI::App& app)>;

struct Registration {
  std::string path;  // "bench engine"
  std::string description;
  Setup setup;       // empty for a group
};

/// Every registration, in registration order (unspecified across files; main.cpp sorts).
std::vector<Registration>& registry();

/// Registers a subcommand (or, with `group`, describes a group of subcommands) at static
/// initialisation time.
class Command {
 public:
  Command(std::string path, std::string description, Setup setup) {
    registry().push_back({std::move(path), std::move(description), std::move(setup)});
  }
  static Command group(std::string path, std::string description) {
    return Command(std::move(path), std::move(description), Setup{});
  }
};

}  // namespace wick::cli
