// Crash-safe file output: data goes to a temporary file beside the target,
// is flushed to disk, and is renamed over the target only when complete. An
// interrupted run leaves either the old file or the new one, never a part.
#ifndef PANDA_CORE_ATOMIC_FILE_H_
#define PANDA_CORE_ATOMIC_FILE_H_

#include <cstddef>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace panda {

// Streams a file to a temporary name and renames it on Commit(). Destroying
// an uncommitted writer deletes the temporary file.
class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // Creates the parent folders of `path` and opens the temporary file.
  absl::Status Open(const std::string& path);

  absl::Status Write(const void* data, size_t size);
  absl::Status Write(absl::string_view data) {
    return Write(data.data(), data.size());
  }

  // Flushes, syncs and renames the temporary file to the target path.
  absl::Status Commit();

 private:
  std::string path_;
  std::string temporary_path_;
  std::FILE* file_ = nullptr;
};

// Writes `contents` to `path` through an AtomicFileWriter.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents);

// Reads the whole file at `path`; NotFound if it does not exist.
absl::Status ReadFile(const std::string& path, std::string* contents);

}  // namespace panda

#endif  // PANDA_CORE_ATOMIC_FILE_H_
