#include "datasets/image_folder_listing.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace panda {
namespace {

namespace fs = std::filesystem;

absl::Status FilesystemError(const std::error_code& error,
                             const std::string& action,
                             const std::string& path) {
  if (error == std::errc::no_such_file_or_directory) {
    return absl::NotFoundError(absl::StrCat(path, " does not exist"));
  }
  return absl::ErrnoToStatus(error.value(),
                             absl::StrCat("failed to ", action, " ", path));
}

bool IsHidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

}  // namespace

bool HasImageExtension(absl::string_view filename) {
  const size_t dot = filename.rfind('.');
  if (dot == absl::string_view::npos) return false;
  const std::string extension = absl::AsciiStrToLower(filename.substr(dot + 1));
  for (const char* known :
       {"png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"}) {
    if (extension == known) return true;
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> ListClassFolders(
    const std::string& split_directory) {
  std::error_code error;
  fs::directory_iterator it(split_directory, error);
  if (error) return FilesystemError(error, "list", split_directory);

  std::vector<std::string> names;
  for (; it != fs::directory_iterator(); it.increment(error)) {
    if (IsHidden(it->path())) continue;
    std::error_code type_error;
    if (it->is_directory(type_error)) {
      names.push_back(it->path().filename().string());
    }
  }
  if (error) return FilesystemError(error, "list", split_directory);

  if (names.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no class folders in ", split_directory,
        ": put each class's images in a subfolder named after the class"));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::vector<std::string>> ListImageFiles(
    const std::string& class_directory) {
  std::error_code error;
  fs::recursive_directory_iterator it(class_directory, error);
  if (error) return FilesystemError(error, "list", class_directory);

  std::vector<std::string> paths;
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    const fs::path& path = it->path();
    std::error_code type_error;
    if (IsHidden(path)) {
      if (it->is_directory(type_error)) it.disable_recursion_pending();
      continue;
    }
    // is_regular_file follows links to files. A link that leads nowhere
    // (dangling, or a loop) is listed too, so that decoding reports it by
    // name rather than the image silently leaving the set.
    const bool file = it->is_regular_file(type_error);
    const bool broken_link = !file && it->is_symlink(type_error) &&
                             !fs::exists(path, type_error);
    if ((file || broken_link) && HasImageExtension(path.filename().string())) {
      paths.push_back(path.string());
    }
  }
  if (error) return FilesystemError(error, "list", class_directory);

  if (paths.empty()) {
    return absl::NotFoundError(
        absl::StrCat("class folder ", class_directory,
                     " contains no images (files ending "
                     "in .png, .jpg, .jpeg, .bmp, .tif, .tiff or .webp)"));
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace panda
