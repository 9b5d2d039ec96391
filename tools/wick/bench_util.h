#pragma once
// Timing and reporting shared by the `wick bench ...` subcommands.
//
// Rule for every caller: the timed function must return only when its result is ready
// (eval() returns after the data is ready; for eval_async, wait on the future inside the
// timed function). Nothing here can check that, so each benchmark says how it complies.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wick::bench {

struct TimingOptions {
  double min_time_s = 0.5;  // keep repeating until this much time has been measured ...
  int64_t min_iters = 10;   // ... and at least this many samples were taken
  int64_t max_iters = 1'000'000;
  int64_t warmup = 3;       // untimed runs first (caches, allocator, thread pools)
};

/// Summary of the samples of one benchmark, in microseconds.
struct Timing {
  double median_us = 0;
  double p10_us = 0;
  double p90_us = 0;
  int64_t iters = 0;
};

/// Times `run` repeatedly: `warmup` untimed calls, then samples until both min_time_s and
/// min_iters are reached. `prepare`, when given, runs before every call (timed or not) and is
/// never timed: use it to build a fresh graph whose evaluation `run` then times.
Timing measure(const std::function<void()>& run, const TimingOptions& opts,
               const std::function<void()>& prepare = {});

/// Median / percentile (linear interpolation) of samples; the vector is sorted in place.
double percentile(std::vector<double>& samples, double p);

/// One reported line.
struct Result {
  std::string name;
  Timing timing;
  std::string baseline;  // name of the entry this one is compared with ("" for none)
  double ratio = 0;      // median / baseline median (set by Reporter when baseline is known)
  std::map<std::string, double> extra;  // additional figures (e.g. "gflops")
};

/// Prints results as they arrive: one JSON object per line, or an aligned table.
class Reporter {
 public:
  Reporter(bool json, std::FILE* out = stdout) : json_(json), out_(out) {}
  /// Fills in `ratio` from an earlier result named `baseline`, prints, and remembers the result.
  const Result& add(Result r);
  /// A previously added result, or nullptr.
  const Result* find(const std::string& name) const;
  /// A free-form note line (table mode only; ignored in JSON mode so the output stays parseable).
  void note(const std::string& text);
  bool json() const { return json_; }

 private:
  void print_header();
  bool json_;
  std::FILE* out_;
  bool header_done_ = false;
  std::vector<Result> results_;
};

/// JSON string literal with escapes.
std::string json_quote(const std::string& s);

/// Profiles one more run of `fn` and prints its kernel times, slowest first, to stderr (so a
/// --json report on stdout stays parseable).
void print_profile(const std::string& name, const std::function<void()>& fn);

/// Prevents the optimiser from dropping a value the benchmark computes only for timing.
void keep(const void* p);

}  // namespace wick::bench
