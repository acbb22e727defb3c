#pragma once
// Progress of a long run on stderr: cells and samples done/total, rate, ETA. On a terminal the
// line is redrawn in place; otherwise nothing is printed unless asked (`--progress`), and then a
// plain line every `every_s` seconds and at each cell's end, so a log stays readable.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace kvcanary::run {

inline std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

class Progress {
 public:
  enum class Style { Quiet, Lines, Redraw };

  static Style style_for(bool asked) {
    if (::isatty(STDERR_FILENO)) return Style::Redraw;
    return asked ? Style::Lines : Style::Quiet;
  }

  Progress(Style style, std::size_t cells_total, std::size_t samples_total, double every_s = 10)
      : style_(style), cells_total_(cells_total), samples_total_(samples_total), every_s_(every_s) {}

  void begin_cell(const std::string& label) {
    label_ = label;
    print(false);
  }
  void sample_done() {
    ++samples_done_;
    print(false);
  }
  void cell_done() {
    ++cells_done_;
    print(true);
  }
  void finish() {
    if (style_ == Style::Redraw) std::fputc('\n', stderr);
  }

  std::size_t samples_done() const { return samples_done_; }
  double elapsed() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

 private:
  using clock = std::chrono::steady_clock;

  void print(bool milestone) {
    if (style_ == Style::Quiet) return;
    const auto now = clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (style_ == Style::Lines && !milestone && since < every_s_) return;
    if (style_ == Style::Redraw && !milestone && since < 0.2) return;
    last_ = now;
    const double t = elapsed();
    const double rate = t > 0 ? static_cast<double>(samples_done_) / t : 0.0;
    const double eta = rate > 0 ? static_cast<double>(samples_total_ - samples_done_) / rate : -1;
    char buf[512];
    std::snprintf(buf, sizeof buf, "sweep: cells %zu/%zu · samples %zu/%zu · %.2f samples/s · elapsed %s · ETA %s · %s",
                  cells_done_, cells_total_, samples_done_, samples_total_, rate, format_duration(t).c_str(),
                  format_duration(eta).c_str(), label_.c_str());
    if (style_ == Style::Redraw)
      std::fprintf(stderr, "\r\033[K%s", buf);
    else
      std::fprintf(stderr, "%s\n", buf);
    std::fflush(stderr);
  }

  Style style_;
  std::size_t cells_total_, samples_total_, cells_done_ = 0, samples_done_ = 0;
  double every_s_;
  std::string label_;
  clock::time_point start_ = clock::now(), last_ = clock::time_point{};
};

}  // namespace kvcanary::run
