#include "core/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/logging.h"

namespace panda {

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(std::max<int64_t>(total, 0)),
      interactive_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Advance(int64_t count) {
  done_ = std::min(total_, done_ + count);
  Draw(/*final=*/false);
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  Draw(/*final=*/true);
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       start_)
      .count();
}

void ProgressBar::Draw(bool final) {
  if (MinLogLevel() > LogLevel::kInfo) return;
  const auto now = std::chrono::steady_clock::now();
  const double fraction =
      total_ == 0 ? 1.0 : static_cast<double>(done_) / total_;

  // Redraw a terminal at most 5 times a second; log every tenth otherwise.
  if (interactive_) {
    if (!final && now - last_draw_ < std::chrono::milliseconds(200)) return;
  } else {
    const int decile = static_cast<int>(fraction * 10);
    if (!final && decile == last_reported_decile_) return;
    if (final && decile == last_reported_decile_ && done_ == total_) return;
    last_reported_decile_ = decile;
  }
  last_draw_ = now;

  const double seconds = elapsed_seconds();
  const double rate = seconds > 0 ? done_ / seconds : 0.0;
  const double remaining = rate > 0 ? (total_ - done_) / rate : 0.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth);
  const std::string bar =
      std::string(filled, '#') + std::string(kWidth - filled, '.');

  std::fprintf(stderr, "%s%s [%s] %lld/%lld %s, %.1f %s/s, %.0f s left%s",
               interactive_ ? "\r" : "", label_.c_str(), bar.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_),
               unit_.c_str(), rate, unit_.c_str(), remaining,
               interactive_ && !final ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace panda
