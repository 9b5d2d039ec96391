// `wick plot`'s parts (tools/wick/plot): metrics parsing (train and validation lines, repeated
// steps, nulls, bad lines), the debiased EMA, axis ticks, and the SVG: polyline coordinates of
// known points computed here from the documented margins, legend, colours, escaping, errors.
#include <gtest/gtest.h>

#include <string>

#include "plot/plot.h"
#include "wick/error.h"

namespace {

using wick::plot::Point;

// Steps 0..100 and losses 1..4 give the axes [0, 100] (ticks every 20) and [1, 4] (every 0.5).
const char* kMetrics =
    "{\"step\": 0, \"loss\": 4.0, \"lr\": 0.001, \"grad_norm\": 1.5, \"tokens\": 0, \"tok_s\": 0}\n"
    "{\"step\": 50, \"loss\": 2.0, \"lr\": 0.001}\n"
    "\n"
    "{\"step\": 50, \"val_loss\": 3.0}\n"
    "{\"step\": 100, \"loss\": 1.0, \"val_loss\": 1.5, \"lr\": 0.0005}\n";

// The points="..." of the first element with this class and run.
std::string points_of(const std::string& svg, const std::string& cls, int run) {
  std::string key = "class=\"" + cls + "\" data-run=\"" + std::to_string(run) + "\"";
  size_t at = svg.find(key);
  if (at == std::string::npos) return "<none>";
  size_t p = svg.find("points=\"", at);
  size_t end = svg.find('"', p + 8);
  return svg.substr(p + 8, end - p - 8);
}

std::string error_of(const std::string& text, bool skip_bad = false) {
  try {
    wick::plot::parse_metrics(text, "m.jsonl", skip_bad);
  } catch (const wick::Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Plot, ParsesTrainAndValidationLines) {
  wick::plot::Run r = wick::plot::parse_metrics(kMetrics, "m.jsonl", false);
  ASSERT_EQ(r.loss.size(), 3u);
  EXPECT_EQ(r.loss[1].step, 50);
  EXPECT_EQ(r.loss[1].value, 2.0);
  ASSERT_EQ(r.val_loss.size(), 2u);
  EXPECT_EQ(r.val_loss[0].value, 3.0);
  EXPECT_EQ(r.val_loss[1].step, 100);
  ASSERT_EQ(r.lr.size(), 3u);
  EXPECT_EQ(r.lr[2].value, 0.0005);

  // A resumed run repeats steps: the last value wins and the series stays sorted.
  r = wick::plot::parse_metrics(
      "{\"step\":1,\"loss\":5}\n{\"step\":2,\"loss\":4}\n{\"step\":1,\"loss\":3}\n"
      "{\"step\":3,\"loss\":null}\n",
      "m.jsonl", false);
  ASSERT_EQ(r.loss.size(), 2u);
  EXPECT_EQ(r.loss[0].step, 1);
  EXPECT_EQ(r.loss[0].value, 3);
  EXPECT_EQ(r.null_values, 1u);
}

TEST(Plot, BadLinesNameFileAndLine) {
  EXPECT_NE(error_of("{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":\n").find("m.jsonl:2: not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of("\n\n[1,2]\n").find("m.jsonl:3: expected a JSON object, got array"), std::string::npos);
  EXPECT_NE(error_of("{\"loss\":2}\n").find("m.jsonl:1: missing \"step\""), std::string::npos);
  EXPECT_NE(error_of("{\"step\":1,\"loss\":\"2\"}\n").find("m.jsonl:1: loss: expected a number, got string"),
            std::string::npos);
  EXPECT_NE(error_of("{\"step\":1,\"loss\":1e999}\n").find("m.jsonl:1:"), std::string::npos);
  EXPECT_NE(error_of("").find("m.jsonl: no \"loss\" or \"val_loss\""), std::string::npos);
  EXPECT_NE(error_of("{\"step\":1,\"lr\":0.1}\n").find("no \"loss\""), std::string::npos);

  // --skip-bad: bad lines are counted; a bad line leaves none of its values behind.
  wick::plot::Run r = wick::plot::parse_metrics(
      "{\"step\":1,\"loss\":2}\nnot json\n{\"step\":2,\"loss\":1,\"lr\":\"x\"}\n{\"step\":3,\"loss\":0.5}",
      "m.jsonl", true);
  EXPECT_EQ(r.skipped_lines, 2u);
  ASSERT_EQ(r.loss.size(), 2u);
  EXPECT_EQ(r.loss[1].step, 3);
  EXPECT_TRUE(r.lr.empty());
  EXPECT_NE(error_of("nothing good\n", true).find("no \"loss\""), std::string::npos);
}

TEST(Plot, EmaIsDebiased) {
  std::vector<Point> e = wick::plot::ema({{0, 4}, {1, 2}, {2, 1}}, 0.5);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_DOUBLE_EQ(e[0].value, 4);             // 0.5·4 / (1 - 0.5)
  EXPECT_DOUBLE_EQ(e[1].value, 2.0 / 0.75);    // (0.5·2 + 0.5·2) / (1 - 0.25)
  EXPECT_DOUBLE_EQ(e[2].value, 1.5 / 0.875);   // (0.5·2 + 0.5·1) / (1 - 0.125)
  EXPECT_EQ(wick::plot::ema({{0, 4}, {1, 2}}, 0.0)[1].value, 2);
}

TEST(Plot, NiceAxes) {
  wick::plot::Axis a = wick::plot::nice_axis(0.13, 2.7, 6, false);
  EXPECT_DOUBLE_EQ(a.lo, 0);
  EXPECT_DOUBLE_EQ(a.hi, 3);
  EXPECT_EQ(a.ticks.size(), 7u);  // 0, 0.5, ..., 3
  a = wick::plot::nice_axis(1, 4, 6, false);
  EXPECT_DOUBLE_EQ(a.lo, 1);
  EXPECT_DOUBLE_EQ(a.hi, 4);
  a = wick::plot::nice_axis(7, 7, 6, false);  // one value: widened around it
  EXPECT_LT(a.lo, 7);
  EXPECT_GT(a.hi, 7);
  a = wick::plot::nice_axis(1.7, 8.3, 6, true);
  EXPECT_DOUBLE_EQ(a.lo, 1);
  EXPECT_DOUBLE_EQ(a.hi, 10);
  EXPECT_EQ(a.ticks, (std::vector<double>{1, 2, 5, 10}));
  a = wick::plot::nice_axis(0.002, 30, 6, true);  // many decades: powers of ten only
  EXPECT_EQ(a.ticks.size(), 6u);
}

TEST(Plot, SvgPutsKnownPointsWhereTheAxesSay) {
  wick::plot::Run r = wick::plot::parse_metrics(kMetrics, "m.jsonl", false);
  r.label = "run <a&b>";
  wick::plot::Options o;
  o.smoothing = 0.5;
  o.lr_panel = false;
  std::string svg = wick::plot::render_svg({r}, o);
  // Plot area: x 72..936 for steps 0..100, y 492..48 for losses 1..4 (960 x 540, margins
  // 72/24/48/48).
  EXPECT_EQ(points_of(svg, "loss-raw", 0), "72.00,48.00 504.00,344.00 936.00,492.00");
  // EMA 4, 8/3, 12/7 -> y = 492 - (v - 1) / 3 * 444.
  EXPECT_EQ(points_of(svg, "loss-ema", 0), "72.00,48.00 504.00,245.33 936.00,386.29");
  EXPECT_EQ(points_of(svg, "val-loss", 0), "504.00,196.00 936.00,418.00");
  EXPECT_NE(svg.find("<circle class=\"val-marker\" data-run=\"0\" cx=\"504.00\" cy=\"196.00\""), std::string::npos);
  EXPECT_EQ(points_of(svg, "lr", 0), "<none>");
  EXPECT_NE(svg.find("height=\"540.00\""), std::string::npos);
  // Legend and labels, escaped.
  EXPECT_NE(svg.find(">run &lt;a&amp;b&gt;: train loss (EMA 0.5)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">run &lt;a&amp;b&gt;: validation loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">faint: raw train loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Training loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">2.5</text>"), std::string::npos);  // a y tick
  EXPECT_NE(svg.find(">80</text>"), std::string::npos);   // an x tick
  EXPECT_EQ(svg.find("run <a"), std::string::npos);
}

TEST(Plot, SvgOverlaysRunsAndDrawsLearningRate) {
  wick::plot::Run a = wick::plot::parse_metrics(kMetrics, "a.jsonl", false);
  wick::plot::Run b = wick::plot::parse_metrics("{\"step\":100,\"loss\":4}\n{\"step\":0,\"loss\":1}\n", "b.jsonl", false);
  wick::plot::Options o;
  std::string svg = wick::plot::render_svg({a, b}, o);
  // The learning-rate panel sits kLrGap below the loss panel: y 532..652 for lr 0..0.001.
  EXPECT_NE(svg.find("height=\"700.00\""), std::string::npos);
  EXPECT_EQ(points_of(svg, "lr", 0), "72.00,532.00 504.00,532.00 936.00,592.00");
  EXPECT_EQ(points_of(svg, "loss-raw", 1), "72.00,492.00 936.00,48.00");
  EXPECT_NE(svg.find("class=\"loss-ema\" data-run=\"1\" fill=\"none\" stroke=\"#d62728\""), std::string::npos);
  EXPECT_NE(svg.find(">a.jsonl: train loss (EMA 0.9)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">b.jsonl: train loss (EMA 0.9)</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">b.jsonl: validation loss</text>"), std::string::npos);  // b has none
  EXPECT_NE(svg.find(">0.001</text>"), std::string::npos);                      // an lr tick
}

TEST(Plot, LogAxisNeedsPositiveLosses) {
  wick::plot::Run r = wick::plot::parse_metrics("{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":0}\n", "m.jsonl", false);
  wick::plot::Options o;
  o.log_y = true;
  try {
    wick::plot::render_svg({r}, o);
    ADD_FAILURE() << "no error";
  } catch (const wick::Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.jsonl: loss 0 at step 2"), std::string::npos) << e.what();
  }
  o.log_y = false;
  EXPECT_NO_THROW(wick::plot::render_svg({r}, o));
  EXPECT_THROW(wick::plot::render_svg({}, o), wick::Error);
}

}  // namespace
