#include "core/logging.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>
#include <utility>

namespace panda {
namespace {

std::atomic<LogLevel> min_level{LogLevel::kInfo};

std::string& LogPrefix() {
  static std::string* const prefix = new std::string();
  return *prefix;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

LogMessage::~LogMessage() {
  if (level_ < min_level.load()) return;

  std::time_t now = std::time(nullptr);
  std::tm utc;
  gmtime_r(&now, &utc);
  char timestamp[32];
  std::strftime(timestamp, sizeof(timestamp), "%Y-%m-%d %H:%M:%S", &utc);

  // One fprintf per message keeps lines from concurrent threads whole.
  std::fprintf(stderr, "%s %s %s%s\n", timestamp, LevelName(level_),
               LogPrefix().c_str(), stream_.str().c_str());
}

void SetMinLogLevel(LogLevel level) { min_level.store(level); }
LogLevel MinLogLevel() { return min_level.load(); }

void SetLogPrefix(std::string prefix) { LogPrefix() = std::move(prefix); }

}  // namespace panda
