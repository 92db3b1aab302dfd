#include "benchmarks/regression/scratch_folder.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace panda {
namespace {

constexpr absl::string_view kPrefix = "panda-benchmark-";

// Whether the folder name `name` belongs to a benchmark run whose process
// has ended. Names of other forms, or of live processes, are kept.
bool IsLeftByDeadRun(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kPrefix)) return false;
  const size_t dash = name.find('-');
  if (dash == absl::string_view::npos) return false;
  int pid = 0;
  if (!absl::SimpleAtoi(name.substr(0, dash), &pid) || pid <= 0) return false;
  return kill(pid, 0) != 0 && errno == ESRCH;
}

void RemoveFoldersOfDeadRuns(const std::filesystem::path& temp) {
  std::error_code error;
  for (const auto& item : std::filesystem::directory_iterator(temp, error)) {
    if (!item.is_directory(error)) continue;
    if (!IsLeftByDeadRun(item.path().filename().string())) continue;
    std::filesystem::remove_all(item.path(), error);
  }
}

}  // namespace

ScratchFolder::~ScratchFolder() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

absl::Status ScratchFolder::Create() {
  const std::filesystem::path temp = std::filesystem::temp_directory_path();
  RemoveFoldersOfDeadRuns(temp);

  std::string pattern =
      (temp / absl::StrCat(kPrefix, getpid(), "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("could not create a temporary folder like ", pattern));
  }
  path_ = pattern;
  return absl::OkStatus();
}

}  // namespace panda
