// `wick plot`: training metrics (JSONL, one object per step) to an SVG of the loss curves.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "plot/plot.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

struct PlotCliOptions {
  std::vector<std::string> metrics;
  std::vector<std::string> labels;
  std::string output;
  std::string title = "Training loss";
  double smoothing = 0.9;
  bool log_y = false;
  bool no_lr = false;
  bool skip_bad = false;
  int width = 960, height = 540;
  bool json = false;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the metrics file");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return s.str();
}

std::string base_name(const std::string& p) {
  size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Steps are integers in practice: print them as such.
nlohmann::json step_json(double step) {
  if (step == std::floor(step) && std::fabs(step) < 9e15) return static_cast<int64_t>(step);
  return step;
}

int run_plot(const PlotCliOptions& o) {
  if (!o.labels.empty() && o.labels.size() != o.metrics.size())
    throw Error("plot: give one --label per --metrics file (" + std::to_string(o.metrics.size()) +
                " files, " + std::to_string(o.labels.size()) + " labels)");
  std::vector<plot::Run> runs;
  for (size_t i = 0; i < o.metrics.size(); ++i) {
    runs.push_back(plot::parse_metrics(read_all(o.metrics[i]), o.metrics[i], o.skip_bad));
    runs.back().label = o.labels.empty() ? base_name(o.metrics[i]) : o.labels[i];
  }
  // Two files of the same name (run1/metrics.jsonl, run2/metrics.jsonl): show the paths.
  for (size_t i = 0; o.labels.empty() && i < runs.size(); ++i)
    for (size_t j = 0; j < runs.size(); ++j)
      if (i != j && base_name(o.metrics[i]) == base_name(o.metrics[j])) runs[i].label = o.metrics[i];

  plot::Options opts;
  opts.title = o.title;
  opts.log_y = o.log_y;
  opts.smoothing = o.smoothing;
  opts.width = o.width;
  opts.height = o.height;
  opts.lr_panel = !o.no_lr;
  write_file_atomic(o.output, plot::render_svg(runs, opts));

  nlohmann::json summary = {{"output", o.output}, {"runs", nlohmann::json::array()}};
  for (size_t i = 0; i < runs.size(); ++i) {
    const plot::Run& r = runs[i];
    nlohmann::json j = {{"file", o.metrics[i]},
                        {"label", r.label},
                        {"points", r.loss.size()},
                        {"val_points", r.val_loss.size()},
                        {"lr_points", r.lr.size()},
                        {"skipped_lines", r.skipped_lines},
                        {"null_values", r.null_values}};
    if (!r.loss.empty()) {
      auto best = std::min_element(r.loss.begin(), r.loss.end(),
                                   [](const plot::Point& a, const plot::Point& b) { return a.value < b.value; });
      j["min_loss"] = best->value;
      j["min_loss_step"] = step_json(best->step);
      j["last_loss"] = r.loss.back().value;
      j["last_step"] = step_json(r.loss.back().step);
    }
    j["last_val_loss"] = r.val_loss.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.val_loss.back().value);
    if (!r.val_loss.empty()) {
      auto best = std::min_element(r.val_loss.begin(), r.val_loss.end(),
                                   [](const plot::Point& a, const plot::Point& b) { return a.value < b.value; });
      j["min_val_loss"] = best->value;
      j["min_val_loss_step"] = step_json(best->step);
    }
    summary["runs"].push_back(j);
  }
  if (o.json) {
    std::printf("%s\n", summary.dump().c_str());
    return 0;
  }
  for (const auto& j : summary["runs"]) {
    std::string line = j["label"].get<std::string>() + ": " + std::to_string(j["points"].get<size_t>()) +
                       " train points";
    if (j.contains("min_loss"))
      line += ", min loss " + j["min_loss"].dump() + " at step " + j["min_loss_step"].dump();
    if (!j["last_val_loss"].is_null())
      line += ", " + std::to_string(j["val_points"].get<size_t>()) + " validation points, last val loss " +
              j["last_val_loss"].dump();
    if (j["skipped_lines"].get<size_t>()) line += ", " + j["skipped_lines"].dump() + " bad lines skipped";
    std::printf("%s\n", line.c_str());
  }
  std::printf("wrote %s\n", o.output.c_str());
  return 0;
}

[[maybe_unused]] const Command plot_command{
    "plot", "Draw training metrics (loss, validation loss, learning rate) as an SVG",
    [](CLI::App& app) {
      auto o = std::make_shared<PlotCliOptions>();
      app.add_option("--metrics", o->metrics,
                     "a metrics JSONL file ({\"step\",\"loss\",\"lr\",...,\"val_loss\"} per line); "
                     "repeat to overlay runs")
          ->required()
          ->check(CLI::ExistingFile);
      app.add_option("--label", o->labels, "legend name of each --metrics file, in order (default: file names)");
      app.add_option("--output", o->output, "the SVG file to write")->required();
      app.add_option("--title", o->title, "title above the plot")->capture_default_str();
      app.add_option("--smooth", o->smoothing,
                     "EMA weight of the smoothed train loss, s = w*s + (1-w)*loss, debiased; 0: raw only")
          ->capture_default_str()
          ->check(CLI::Range(0.0, 0.999));
      app.add_flag("--log-y", o->log_y, "logarithmic loss axis");
      app.add_flag("--no-lr", o->no_lr, "leave out the learning-rate panel");
      app.add_flag("--skip-bad", o->skip_bad, "pass over malformed lines instead of failing");
      app.add_option("--width", o->width, "picture width in pixels")->capture_default_str()->check(CLI::Range(200, 10000));
      app.add_option("--height", o->height, "loss panel height in pixels")
          ->capture_default_str()
          ->check(CLI::Range(150, 10000));
      app.add_flag("--json", o->json, "print a JSON summary (points, min loss, last validation loss)");
      return [o] { return run_plot(*o); };
    }};

}  // namespace
}  // namespace wick::cli
