// The `wick` command line: builds the subcommand tree from the self-registered commands
// (see command.h), parses, and runs the one subcommand that was chosen.
#include <CLI/CLI.hpp>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "wick/wick.h"

// WICK_VERSION_STRING comes from the CMake project version (tools/wick/CMakeLists.txt).

namespace wick::cli {

std::vector<Registration>& registry() {
  // Function-local so that registrations from other files' static objects always find it
  // constructed, whatever the initialisation order of the translation units.
  static std::vector<Registration> r;
  return r;
}

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::istringstream in(path);
  for (std::string w; in >> w;) parts.push_back(w);
  return parts;
}

std::string version_text() {
  const dnnl_version_t* v = dnnl_version();
  std::ostringstream s;
  s << "wick " << WICK_VERSION_STRING << " (oneDNN " << v->major << '.' << v->minor << '.'
    << v->patch << ", " << std::thread::hardware_concurrency() << " hardware threads)";
  return s.str();
}

}  // namespace
}  // namespace wick::cli

int main(int argc, char** argv) {
  using namespace wick::cli;
  CLI::App app{"wick: tensor engine and LLM fine-tuning toolkit", "wick"};
  app.set_version_flag("--version", version_text());
  app.require_subcommand(1);

  // Parents before children; groups without a registration of their own are made on demand.
  auto regs = registry();
  std::stable_sort(regs.begin(), regs.end(), [](const Registration& a, const Registration& b) {
    return split_path(a.path).size() < split_path(b.path).size();
  });
  std::map<std::string, CLI::App*> apps;  // path -> app
  std::vector<std::pair<CLI::App*, Action>> actions;
  for (const Registration& r : regs) {
    std::vector<std::string> parts = split_path(r.path);
    if (parts.empty()) continue;
    CLI::App* parent = &app;
    std::string prefix;
    for (size_t i = 0; i < parts.size(); ++i) {
      prefix += (i ? " " : "") + parts[i];
      auto it = apps.find(prefix);
      bool last = i + 1 == parts.size();
      if (it == apps.end()) {
        CLI::App* sub = parent->add_subcommand(parts[i], last ? r.description : "");
        it = apps.emplace(prefix, sub).first;
      } else if (last && !r.description.empty()) {
        it->second->description(r.description);
      }
      parent = it->second;
    }
    if (r.setup) {
      actions.emplace_back(parent, r.setup(*parent));
    }
  }
  // A group (an app with children but no action of its own) requires one of its children.
  for (auto& [path, sub] : apps) {
    bool has_action = std::any_of(actions.begin(), actions.end(),
                                  [&](const auto& a) { return a.first == sub; });
    if (!has_action) sub->require_subcommand(1);
  }

  CLI11_PARSE(app, argc, argv);

  // The chosen leaf is the deepest parsed app that has an action.
  for (auto it = actions.rbegin(); it != actions.rend(); ++it) {
    if (!it->first->parsed()) continue;
    try {
      return it->second();
    } catch (const wick::Error& e) {
      std::fprintf(stderr, "wick: error: %s\n", e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "wick: unexpected error: %s\n", e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "%s", app.help().c_str());
  return 1;
}
