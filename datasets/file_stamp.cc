#include "datasets/file_stamp.h"

#include <sys/stat.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace panda {

absl::StatusOr<std::string> FileStamp(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("file not found: ", path));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("failed to inspect ", path));
  }
  return absl::StrCat(path, " size=", info.st_size,
                      " mtime=", info.st_mtim.tv_sec, ".",
                      absl::Dec(info.st_mtim.tv_nsec, absl::kZeroPad9));
}

}  // namespace panda
