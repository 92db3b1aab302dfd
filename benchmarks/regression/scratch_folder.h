// The feature cache folder of one benchmark run, under the system's
// temporary folder.
#ifndef PANDA_BENCHMARKS_REGRESSION_SCRATCH_FOLDER_H_
#define PANDA_BENCHMARKS_REGRESSION_SCRATCH_FOLDER_H_

#include <string>

#include "absl/status/status.h"

namespace panda {

// A folder made empty for one benchmark run and removed with everything in
// it when the object goes out of scope. A run killed by a signal or a CI
// timeout skips the destructor and leaves its cached features behind. So
// the name carries the process id, and Create() removes the folders of
// earlier runs whose process no longer exists.
class ScratchFolder {
 public:
  ScratchFolder() = default;
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  ~ScratchFolder();

  // Creates "<temp>/panda-benchmark-<pid>-XXXXXX" after removing the
  // folders of dead runs. Errors: Internal when the folder cannot be made.
  absl::Status Create();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace panda

#endif  // PANDA_BENCHMARKS_REGRESSION_SCRATCH_FOLDER_H_
