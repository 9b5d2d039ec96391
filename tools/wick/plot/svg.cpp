// Drawing loss curves as SVG for `wick plot`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "plot/plot.h"
#include "wick/error.h"

namespace wick::plot {

namespace {

// Colour-blind-safe enough and distinct on white (matplotlib's first colours).
constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                    "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string num(double v) { return fmt("%.2f", v); }

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A tick label with as many decimals as the tick spacing needs.
std::string tick_label(double v, const Axis& a) {
  if (a.log) return fmt("%g", v);
  double step = a.ticks.size() > 1 ? a.ticks[1] - a.ticks[0] : 1;
  if (std::fabs(v) < step * 1e-9) v = 0;
  if (std::max(std::fabs(a.lo), std::fabs(a.hi)) >= 1e5 && step >= 1000) return fmt("%gk", v / 1000);
  if (step < 0.01) return fmt("%g", v);  // learning rates: 0.0003, 5e-05
  int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// A rectangle of the picture with the axes that map data into it.
struct Frame {
  double left, top, right, bottom;
  Axis x, y;
  double px(double step) const { return left + (step - x.lo) / (x.hi - x.lo) * (right - left); }
  double py(double v) const {
    double t = y.log ? (std::log10(v) - std::log10(y.lo)) / (std::log10(y.hi) - std::log10(y.lo))
                     : (v - y.lo) / (y.hi - y.lo);
    return bottom - t * (bottom - top);
  }
};

void polyline(std::string& o, const Frame& f, const std::vector<Point>& pts, const char* cls,
              size_t run, const std::string& style) {
  if (pts.empty()) return;
  o += "<polyline class=\"" + std::string(cls) + "\" data-run=\"" + std::to_string(run) +
       "\" fill=\"none\" " + style + " points=\"";
  for (size_t i = 0; i < pts.size(); ++i) {
    if (i) o += ' ';
    o += num(f.px(pts[i].step)) + "," + num(f.py(pts[i].value));
  }
  o += "\"/>\n";
}

void axes(std::string& o, const Frame& f, const std::string& y_label, bool x_labels) {
  o += "<g class=\"grid\" stroke=\"#e5e5e5\" stroke-width=\"1\">\n";
  for (double t : f.y.ticks)
    o += "<line x1=\"" + num(f.left) + "\" y1=\"" + num(f.py(t)) + "\" x2=\"" + num(f.right) +
         "\" y2=\"" + num(f.py(t)) + "\"/>\n";
  for (double t : f.x.ticks)
    o += "<line x1=\"" + num(f.px(t)) + "\" y1=\"" + num(f.top) + "\" x2=\"" + num(f.px(t)) +
         "\" y2=\"" + num(f.bottom) + "\"/>\n";
  o += "</g>\n";
  o += "<rect x=\"" + num(f.left) + "\" y=\"" + num(f.top) + "\" width=\"" + num(f.right - f.left) +
       "\" height=\"" + num(f.bottom - f.top) + "\" fill=\"none\" stroke=\"#444\"/>\n";
  o += "<g class=\"ticks\" font-size=\"11\" fill=\"#333\">\n";
  for (double t : f.y.ticks)
    o += "<text x=\"" + num(f.left - 6) + "\" y=\"" + num(f.py(t) + 4) + "\" text-anchor=\"end\">" +
         tick_label(t, f.y) + "</text>\n";
  for (double t : f.x.ticks)
    o += "<text x=\"" + num(f.px(t)) + "\" y=\"" + num(f.bottom + 16) + "\" text-anchor=\"middle\">" +
         tick_label(t, f.x) + "</text>\n";
  o += "</g>\n";
  double mid = (f.top + f.bottom) / 2;
  o += "<text class=\"axis-label\" x=\"16\" y=\"" + num(mid) + "\" font-size=\"12\" transform=\"rotate(-90 16 " +
       num(mid) + ")\" text-anchor=\"middle\">" + escape(y_label) + "</text>\n";
  if (x_labels)
    o += "<text class=\"axis-label\" x=\"" + num((f.left + f.right) / 2) + "\" y=\"" + num(f.bottom + 36) +
         "\" font-size=\"12\" text-anchor=\"middle\">step</text>\n";
}

void check_positive(const Run& r, const std::vector<Point>& pts, const char* what) {
  for (const Point& p : pts)
    if (p.value <= 0)
      throw Error(r.label + ": " + what + " " + fmt("%g", p.value) + " at step " + fmt("%g", p.step) +
                  " cannot be drawn on a logarithmic axis (--log-y)");
}

}  // namespace

Axis nice_axis(double lo, double hi, int target_ticks, bool log) {
  Axis a;
  a.log = log;
  if (hi < lo) std::swap(lo, hi);
  if (log) {
    double d0 = std::floor(std::log10(lo) + 1e-12), d1 = std::ceil(std::log10(hi) - 1e-12);
    if (d1 <= d0) d1 = d0 + 1;
    a.lo = std::pow(10.0, d0);
    a.hi = std::pow(10.0, d1);
    for (double d = d0; d <= d1; ++d) {
      double p = std::pow(10.0, d);
      a.ticks.push_back(p);
      if (d1 - d0 <= 2 && d < d1) {
        a.ticks.push_back(2 * p);
        a.ticks.push_back(5 * p);
      }
    }
    return a;
  }
  if (hi == lo) {
    double pad = lo != 0 ? std::fabs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  double raw = (hi - lo) / std::max(1, target_ticks);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double r = raw / mag;
  double step = (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
  double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  a.lo = first * step;
  a.hi = last * step;
  for (double i = first; i <= last + 1e-9; ++i) a.ticks.push_back(i * step);
  return a;
}

std::string render_svg(const std::vector<Run>& runs, const Options& o) {
  if (runs.empty()) throw Error("plot: no runs to draw");
  const double inf = std::numeric_limits<double>::infinity();
  double x_lo = inf, x_hi = -inf, y_lo = inf, y_hi = -inf, lr_lo = 0, lr_hi = -inf;
  std::vector<std::vector<Point>> smooth;
  for (const Run& r : runs) {
    if (o.log_y) {
      check_positive(r, r.loss, "loss");
      check_positive(r, r.val_loss, "val_loss");
    }
    smooth.push_back(ema(r.loss, o.smoothing));
    for (const auto* s : {&r.loss, &r.val_loss, &r.lr})
      for (const Point& p : *s) {
        x_lo = std::min(x_lo, p.step);
        x_hi = std::max(x_hi, p.step);
      }
    for (const auto* s : {&r.loss, &r.val_loss})
      for (const Point& p : *s) {
        y_lo = std::min(y_lo, p.value);
        y_hi = std::max(y_hi, p.value);
      }
    for (const Point& p : r.lr) {
      lr_lo = std::min(lr_lo, p.value);
      lr_hi = std::max(lr_hi, p.value);
    }
  }
  if (!(y_lo <= y_hi)) throw Error("plot: no loss values to draw");
  bool lr_panel = o.lr_panel && lr_hi > -inf;
  if (lr_panel && lr_hi == lr_lo) lr_hi = lr_lo + 1;  // all zero
  double width = o.width, height = o.height + (lr_panel ? kLrGap + kLrPanel : 0);

  Frame main{kMarginLeft, kMarginTop, width - kMarginRight, o.height - kMarginBottom,
             nice_axis(x_lo, x_hi, 8, false), nice_axis(y_lo, y_hi, 6, o.log_y)};
  if (main.right - main.left < 10 || main.bottom - main.top < 10)
    throw Error("plot: the picture is too small for its margins");

  std::string s;
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" + num(height) +
       "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
       "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text class=\"title\" x=\"" + num(width / 2) + "\" y=\"28\" font-size=\"16\" text-anchor=\"middle\">" +
       escape(o.title) + "</text>\n";
  axes(s, main, o.log_y ? "loss (log scale)" : "loss", !lr_panel);
  std::string ema_name = o.smoothing > 0 ? "EMA " + fmt("%g", o.smoothing) : "raw";
  for (size_t i = 0; i < runs.size(); ++i) {
    std::string c = kPalette[i % std::size(kPalette)];
    if (o.smoothing > 0)
      polyline(s, main, runs[i].loss, "loss-raw", i, "stroke=\"" + c + "\" stroke-opacity=\"0.3\" stroke-width=\"1\"");
    polyline(s, main, smooth[i], "loss-ema", i, "stroke=\"" + c + "\" stroke-width=\"2\"");
    polyline(s, main, runs[i].val_loss, "val-loss", i,
             "stroke=\"" + c + "\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\"");
    for (const Point& p : runs[i].val_loss)
      s += "<circle class=\"val-marker\" data-run=\"" + std::to_string(i) + "\" cx=\"" + num(main.px(p.step)) +
           "\" cy=\"" + num(main.py(p.value)) + "\" r=\"3\" fill=\"" + c + "\"/>\n";
  }

  // Legend, top right inside the plot.
  std::vector<std::pair<std::string, std::string>> rows;  // (swatch svg, text)
  size_t longest = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    std::string c = kPalette[i % std::size(kPalette)];
    if (!runs[i].loss.empty())
      rows.emplace_back("stroke=\"" + c + "\" stroke-width=\"2\"", runs[i].label + ": train loss (" + ema_name + ")");
    if (!runs[i].val_loss.empty())
      rows.emplace_back("stroke=\"" + c + "\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\"",
                        runs[i].label + ": validation loss");
  }
  bool any_loss = std::any_of(runs.begin(), runs.end(), [](const Run& r) { return !r.loss.empty(); });
  if (any_loss && o.smoothing > 0)
    rows.emplace_back("stroke=\"#888\" stroke-opacity=\"0.4\" stroke-width=\"1\"", "faint: raw train loss");
  for (const auto& r : rows) longest = std::max(longest, r.second.size());
  double lw = 40 + 6.6 * static_cast<double>(longest), lh = 8 + 18 * static_cast<double>(rows.size());
  double lx = main.right - lw - 8, ly = main.top + 8;
  s += "<g class=\"legend\" font-size=\"12\">\n<rect x=\"" + num(lx) + "\" y=\"" + num(ly) + "\" width=\"" +
       num(lw) + "\" height=\"" + num(lh) + "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n";
  for (size_t k = 0; k < rows.size(); ++k) {
    double y = ly + 17 + 18 * static_cast<double>(k);
    s += "<line x1=\"" + num(lx + 8) + "\" y1=\"" + num(y - 4) + "\" x2=\"" + num(lx + 30) + "\" y2=\"" +
         num(y - 4) + "\" " + rows[k].first + "/>\n";
    s += "<text x=\"" + num(lx + 36) + "\" y=\"" + num(y) + "\">" + escape(rows[k].second) + "</text>\n";
  }
  s += "</g>\n";

  if (lr_panel) {
    double top = main.bottom + kLrGap;
    Frame lr{main.left, top, main.right, top + kLrPanel, main.x, nice_axis(lr_lo, lr_hi, 3, false)};
    lr.y.log = false;
    axes(s, lr, "learning rate", true);
    for (size_t i = 0; i < runs.size(); ++i)
      polyline(s, lr, runs[i].lr, "lr", i,
               "stroke=\"" + std::string(kPalette[i % std::size(kPalette)]) + "\" stroke-width=\"1.5\"");
  }
  s += "</svg>\n";
  return s;
}

}  // namespace wick::plot
