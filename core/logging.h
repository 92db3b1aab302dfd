// Minimal leveled logging to stderr. Debian's Abseil (20220623) predates
// absl/log, so the project carries this small stand-in:
//
//   PANDA_LOG(INFO) << "extracted " << n << " features in " << s << " s";
//
// Each message is one line with a UTC timestamp and the level.
#ifndef PANDA_CORE_LOGGING_H_
#define PANDA_CORE_LOGGING_H_

#include <sstream>
#include <string>

namespace panda {

enum class LogLevel { kInfo, kWarning, kError };

// Collects one message and writes it to stderr when destroyed.
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();

  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Messages below this level are dropped; tests and quiet runs raise it.
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();

// Text put before every message, such as "rank 1/4: " in a multi-process
// run; empty by default. Set it before other threads log.
void SetLogPrefix(std::string prefix);

}  // namespace panda

#define PANDA_LOG_LEVEL_INFO ::panda::LogLevel::kInfo
#define PANDA_LOG_LEVEL_WARNING ::panda::LogLevel::kWarning
#define PANDA_LOG_LEVEL_ERROR ::panda::LogLevel::kError

#define PANDA_LOG(level) \
  ::panda::LogMessage(PANDA_LOG_LEVEL_##level).stream()

#endif  // PANDA_CORE_LOGGING_H_
