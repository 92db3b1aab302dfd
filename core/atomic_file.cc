#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace panda {
namespace {

absl::Status ErrnoError(const std::string& action, const std::string& path) {
  return absl::InternalError(
      absl::StrCat("failed to ", action, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

AtomicFileWriter::~AtomicFileWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(temporary_path_.c_str());
  }
}

absl::Status AtomicFileWriter::Open(const std::string& path) {
  path_ = path;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code error;
    std::filesystem::create_directories(parent, error);
    if (error) {
      return absl::InternalError(absl::StrCat(
          "failed to create folder ", parent.string(), ": ", error.message()));
    }
  }

  // The process id keeps two concurrent writers of one path apart.
  temporary_path_ = absl::StrCat(path, ".tmp-", getpid());
  file_ = std::fopen(temporary_path_.c_str(), "wb");
  if (file_ == nullptr) return ErrnoError("create", temporary_path_);
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Write(const void* data, size_t size) {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError("AtomicFileWriter is not open");
  }
  if (size > 0 && std::fwrite(data, 1, size, file_) != size) {
    return ErrnoError("write", temporary_path_);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Commit() {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError("AtomicFileWriter is not open");
  }
  const bool flushed = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
  const int close_result = std::fclose(file_);
  file_ = nullptr;
  if (!flushed || close_result != 0) {
    absl::Status status = ErrnoError("flush", temporary_path_);
    std::remove(temporary_path_.c_str());
    return status;
  }
  if (std::rename(temporary_path_.c_str(), path_.c_str()) != 0) {
    absl::Status status = ErrnoError("rename to", path_);
    std::remove(temporary_path_.c_str());
    return status;
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents) {
  AtomicFileWriter writer;
  absl::Status status = writer.Open(path);
  if (status.ok()) status = writer.Write(contents);
  if (status.ok()) status = writer.Commit();
  return status;
}

absl::Status ReadFile(const std::string& path, std::string* contents) {
  // An ifstream opens a folder without error and reads it as empty.
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is a folder, not a file"));
  }

  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    if (!std::filesystem::exists(path)) {
      return absl::NotFoundError(absl::StrCat("file not found: ", path));
    }
    return ErrnoError("open", path);
  }
  std::ostringstream buffer;
  buffer << stream.rdbuf();
  if (stream.bad()) return ErrnoError("read", path);
  *contents = buffer.str();
  return absl::OkStatus();
}

}  // namespace panda
