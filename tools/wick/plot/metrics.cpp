// Reading metrics JSONL files for `wick plot`.
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "plot/plot.h"
#include "wick/error.h"

namespace wick::plot {

namespace {

using Json = nlohmann::json;

struct BadLine : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads obj[key] into `out`; false when absent or null (`was_null` tells which).
bool number_field(const Json& obj, const char* key, double& out, bool& was_null) {
  auto it = obj.find(key);
  was_null = false;
  if (it == obj.end()) return false;
  if (it->is_null()) {
    was_null = true;
    return false;
  }
  if (!it->is_number()) throw BadLine(std::string(key) + ": expected a number, got " + it->type_name());
  out = it->get<double>();
  if (!std::isfinite(out)) throw BadLine(std::string(key) + ": not a finite number");
  return true;
}

std::vector<Point> sorted(const std::map<double, double>& m) {
  std::vector<Point> out;
  out.reserve(m.size());
  for (const auto& [s, v] : m) out.push_back({s, v});
  return out;
}

}  // namespace

Run parse_metrics(std::string_view text, const std::string& source, bool skip_bad) {
  Run run;
  run.label = source;
  std::map<double, double> loss, val, lr;
  size_t line_no = 0;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    try {
      Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) throw BadLine("not valid JSON");
      if (!j.is_object()) throw BadLine(std::string("expected a JSON object, got ") + j.type_name());
      double step = 0;
      bool was_null = false;
      if (!number_field(j, "step", step, was_null)) throw BadLine("missing \"step\"");
      // Parse every field before storing any, so that a bad line leaves nothing behind.
      double l = 0, vl = 0, r = 0;
      bool null_l, null_vl, null_r;
      bool has_l = number_field(j, "loss", l, null_l);
      bool has_vl = number_field(j, "val_loss", vl, null_vl);
      bool has_r = number_field(j, "lr", r, null_r);
      run.null_values += null_l + null_vl + null_r;
      if (has_l) loss[step] = l;
      if (has_vl) val[step] = vl;
      if (has_r) lr[step] = r;
    } catch (const BadLine& e) {
      if (!skip_bad)
        throw Error(source + ":" + std::to_string(line_no) + ": " + e.what() +
                    " (--skip-bad passes over bad lines)");
      ++run.skipped_lines;
    }
  }
  if (loss.empty() && val.empty())
    throw Error(source + ": no \"loss\" or \"val_loss\" values in " + std::to_string(line_no) + " lines");
  run.loss = sorted(loss);
  run.val_loss = sorted(val);
  run.lr = sorted(lr);
  return run;
}

std::vector<Point> ema(const std::vector<Point>& points, double weight) {
  std::vector<Point> out;
  out.reserve(points.size());
  double s = 0, w_n = 1;
  for (const Point& p : points) {
    s = weight * s + (1 - weight) * p.value;
    w_n *= weight;
    out.push_back({p.step, w_n < 1 ? s / (1 - w_n) : p.value});
  }
  return out;
}

}  // namespace wick::plot
