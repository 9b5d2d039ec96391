#include "bench_util.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "wick/runtime.h"

namespace wick::bench {

void print_profile(const std::string& name, const std::function<void()>& fn) {
  profile_report(true);
  set_profiling(true);
  fn();
  set_profiling(false);
  std::fprintf(stderr, "profile of one %s run:\n", name.c_str());
  double total = 0;
  auto entries = profile_report(true);
  for (const auto& e : entries) total += e.total_us;
  for (size_t i = 0; i < entries.size() && i < 25; ++i)
    std::fprintf(stderr, "  %-60s %6llu calls %10.0f us %5.1f%%\n", entries[i].name.c_str(),
                 static_cast<unsigned long long>(entries[i].calls), entries[i].total_us,
                 100.0 * entries[i].total_us / std::max(total, 1e-9));
}

double percentile(std::vector<double>& s, double p) {
  if (s.empty()) return 0;
  std::sort(s.begin(), s.end());
  double pos = p * static_cast<double>(s.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, s.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return s[lo] + (s[hi] - s[lo]) * frac;
}

Timing measure(const std::function<void()>& run, const TimingOptions& opts,
               const std::function<void()>& prepare) {
  using clock = std::chrono::steady_clock;
  for (int64_t i = 0; i < opts.warmup; ++i) {
    if (prepare) prepare();
    run();
  }
  std::vector<double> samples;
  double total_s = 0;
  while (static_cast<int64_t>(samples.size()) < opts.max_iters &&
         (total_s < opts.min_time_s || static_cast<int64_t>(samples.size()) < opts.min_iters)) {
    if (prepare) prepare();
    auto t0 = clock::now();
    run();
    auto t1 = clock::now();
    double s = std::chrono::duration<double>(t1 - t0).count();
    samples.push_back(s * 1e6);
    total_s += s;
  }
  Timing t;
  t.iters = static_cast<int64_t>(samples.size());
  t.median_us = percentile(samples, 0.5);
  t.p10_us = percentile(samples, 0.1);
  t.p90_us = percentile(samples, 0.9);
  return t;
}

std::string json_quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += c;
        }
    }
  }
  return o + "\"";
}

namespace {
// Shortest round-trippable enough number for reports; JSON has no NaN/inf, so map them to null.
std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
}  // namespace

const Result* Reporter::find(const std::string& name) const {
  for (const Result& r : results_)
    if (r.name == name) return &r;
  return nullptr;
}

void Reporter::print_header() {
  if (header_done_ || json_) return;
  header_done_ = true;
  std::fprintf(out_, "%-44s %11s %11s %11s %8s  %s\n", "benchmark", "median_us", "p10_us",
               "p90_us", "iters", "vs baseline");
  std::fprintf(out_, "%s\n", std::string(110, '-').c_str());
}

void Reporter::note(const std::string& text) {
  if (json_) return;
  print_header();
  std::fprintf(out_, "  # %s\n", text.c_str());
  std::fflush(out_);
}

const Result& Reporter::add(Result r) {
  if (!r.baseline.empty()) {
    const Result* b = find(r.baseline);
    r.ratio = (b && b->timing.median_us > 0) ? r.timing.median_us / b->timing.median_us : NAN;
  }
  const Timing& t = r.timing;
  if (json_) {
    std::string line = "{\"name\":" + json_quote(r.name) + ",\"median_us\":" + num(t.median_us) +
                       ",\"p10_us\":" + num(t.p10_us) + ",\"p90_us\":" + num(t.p90_us) +
                       ",\"iters\":" + std::to_string(t.iters);
    if (!r.baseline.empty())
      line += ",\"baseline\":" + json_quote(r.baseline) + ",\"ratio\":" + num(r.ratio);
    for (const auto& [k, v] : r.extra) line += "," + json_quote(k) + ":" + num(v);
    line += "}";
    std::fprintf(out_, "%s\n", line.c_str());
  } else {
    print_header();
    std::string cmp;
    if (!r.baseline.empty()) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%.3fx of %s", r.ratio, r.baseline.c_str());
      cmp = buf;
    }
    for (const auto& [k, v] : r.extra) cmp += (cmp.empty() ? "" : "; ") + k + "=" + num(v);
    std::fprintf(out_, "%-44s %11.1f %11.1f %11.1f %8lld  %s\n", r.name.c_str(), t.median_us,
                 t.p10_us, t.p90_us, static_cast<long long>(t.iters), cmp.c_str());
  }
  std::fflush(out_);
  results_.push_back(std::move(r));
  return results_.back();
}

void keep(const void* p) { asm volatile("" : : "g"(p) : "memory"); }

}  // namespace wick::bench
