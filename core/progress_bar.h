// Progress of long loops on stderr: a bar redrawn in place on a terminal,
// a line every 10% otherwise (logs, CI), with throughput and time left.
// Progress counts as INFO output: nothing is drawn while the minimum log
// level (core/logging.h) is above INFO.
#ifndef PANDA_CORE_PROGRESS_BAR_H_
#define PANDA_CORE_PROGRESS_BAR_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace panda {

class ProgressBar {
 public:
  // `unit` names what is counted, e.g. "images".
  ProgressBar(std::string label, int64_t total, std::string unit);
  ~ProgressBar();

  // Adds `count` finished items and redraws when due.
  void Advance(int64_t count);

  // Draws the final state once; called by the destructor if needed.
  void Finish();

  double elapsed_seconds() const;

 private:
  void Draw(bool final);

  std::string label_;
  std::string unit_;
  int64_t total_;
  int64_t done_ = 0;
  bool interactive_;
  bool finished_ = false;
  int last_reported_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace panda

#endif  // PANDA_CORE_PROGRESS_BAR_H_
