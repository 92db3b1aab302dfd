// Identifies a file's contents cheaply, for dataset fingerprints: its path,
// size and modification time.
#ifndef PANDA_DATASETS_FILE_STAMP_H_
#define PANDA_DATASETS_FILE_STAMP_H_

#include <string>

#include "absl/status/statusor.h"

namespace panda {

// Returns "<path> size=<bytes> mtime=<seconds>.<nanoseconds>". A missing
// file is NotFound naming `path`; other failures map from errno.
absl::StatusOr<std::string> FileStamp(const std::string& path);

}  // namespace panda

#endif  // PANDA_DATASETS_FILE_STAMP_H_
