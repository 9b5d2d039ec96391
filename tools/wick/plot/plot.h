#pragma once
// `wick plot`'s parts, kept apart from the command so that a test can check them: reading a
// training metrics JSONL file and drawing loss curves as a dependency-free SVG.
//
// Metrics lines are JSON objects with a "step" and any of "loss", "val_loss", "lr" (other keys
// are ignored); a validation line may carry only step and val_loss. A step seen twice (a run
// resumed from a checkpoint) keeps its last value.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace wick::plot {

struct Point {
  double step = 0;
  double value = 0;
};

/// One metrics file: its series, each sorted by step with one value per step.
struct Run {
  std::string label;
  std::vector<Point> loss, val_loss, lr;
  size_t skipped_lines = 0;  ///< bad lines passed over (with skip_bad)
  size_t null_values = 0;    ///< loss / val_loss / lr given as null (a NaN written as JSON)
};

/// Parses the text of a metrics file. Errors name `source` and the line ("m.jsonl:3: ...");
/// with `skip_bad` a bad line is counted in skipped_lines instead. A file without a single
/// loss or val_loss value is an error either way.
Run parse_metrics(std::string_view text, const std::string& source, bool skip_bad);

/// The exponential moving average `s = w·s + (1-w)·x`, divided by `1 - w^n` after n points
/// (TensorBoard's debiased smoothing, so the start is not pulled towards 0); w = 0 is the raw
/// series.
std::vector<Point> ema(const std::vector<Point>& points, double weight);

/// Ticks of an axis covering [lo, hi]: linear ones at 1, 2 or 5 times a power of ten, the range
/// widened to whole ticks; logarithmic ones at powers of ten (with 2 and 5 between them when
/// the range spans at most two decades), the range widened to whole decades.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;
};
Axis nice_axis(double lo, double hi, int target_ticks, bool log);

/// Where things go in the picture, in pixels.
inline constexpr double kMarginLeft = 72, kMarginRight = 24, kMarginTop = 48, kMarginBottom = 48;
/// Height of the learning-rate panel and the gap above it, when drawn.
inline constexpr double kLrPanel = 120, kLrGap = 40;

struct Options {
  std::string title = "Training loss";
  bool log_y = false;
  double smoothing = 0.9;  ///< EMA weight of the smoothed train-loss line
  int width = 960;
  int height = 540;  ///< without the learning-rate panel, which adds kLrGap + kLrPanel
  bool lr_panel = true;  ///< draw it when some run has lr values
};

/// The SVG text: per run (colours in order) the raw train loss (faint), its EMA, the validation
/// loss (dashed, with markers); axes with ticks and labels, title, legend with the run labels;
/// below, the learning rate of each run on the same step axis. Fails when log_y meets a value
/// that is not positive.
std::string render_svg(const std::vector<Run>& runs, const Options& options);

}  // namespace wick::plot
