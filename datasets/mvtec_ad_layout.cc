#include "datasets/mvtec_ad_layout.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "datasets/image_folder_listing.h"

namespace panda {
namespace {

namespace fs = std::filesystem;

std::string JoinPath(const std::string& directory, const std::string& name) {
  return (fs::path(directory) / name).string();
}

// Returns OK when `path` is a folder, and NotFound naming it otherwise.
absl::Status CheckDirectory(const std::string& path,
                            const std::string& description) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error && error != std::errc::no_such_file_or_directory) {
    return absl::ErrnoToStatus(error.value(),
                               absl::StrCat("failed to inspect ", path));
  }
  if (!fs::exists(status)) {
    return absl::NotFoundError(
        absl::StrCat(description, " ", path, " does not exist"));
  }
  if (!fs::is_directory(status)) {
    return absl::NotFoundError(
        absl::StrCat(description, " ", path, " is not a directory"));
  }
  return absl::OkStatus();
}

// Returns <category>/ground_truth/<defect>/<relative stem>_mask.png for the
// image at `image_path` inside `class_directory`. An image in a subfolder
// keeps that subfolder below ground_truth/<defect>/.
std::string MaskPath(const std::string& category_directory,
                     const std::string& defect,
                     const std::string& class_directory,
                     const std::string& image_path) {
  const fs::path relative =
      fs::path(image_path).lexically_relative(class_directory);
  const fs::path mask_name =
      relative.parent_path() / (relative.stem().string() + "_mask.png");
  return (fs::path(category_directory) / "ground_truth" / defect / mask_name)
      .string();
}

}  // namespace

absl::Status CheckMvtecAdCategory(const std::string& root,
                                  const std::string& category) {
  PANDA_RETURN_IF_ERROR(CheckDirectory(root, "MVTec AD root folder"));
  const std::string category_directory = JoinPath(root, category);
  PANDA_RETURN_IF_ERROR(
      CheckDirectory(category_directory, "MVTec AD category folder"));
  PANDA_RETURN_IF_ERROR(CheckDirectory(
      JoinPath(category_directory, "train/good"), "MVTec AD training folder"));
  return CheckDirectory(JoinPath(category_directory, "test"),
                        "MVTec AD test folder");
}

absl::StatusOr<std::vector<std::string>> ListMvtecAdClasses(
    const std::string& category_directory) {
  PANDA_ASSIGN_OR_RETURN(
      std::vector<std::string> folders,
      ListClassFolders(JoinPath(category_directory, "test")));

  std::vector<std::string> names = {kMvtecAdGoodClass};
  for (std::string& folder : folders) {
    if (folder != kMvtecAdGoodClass) names.push_back(std::move(folder));
  }
  return names;
}

absl::StatusOr<std::vector<MvtecAdFile>> ListMvtecAdTrainFiles(
    const std::string& category_directory) {
  PANDA_ASSIGN_OR_RETURN(
      std::vector<std::string> paths,
      ListImageFiles(JoinPath(category_directory, "train/good")));

  std::vector<MvtecAdFile> files;
  for (std::string& path : paths) {
    files.push_back({std::move(path), 0, ""});
  }
  return files;
}

absl::StatusOr<std::vector<MvtecAdFile>> ListMvtecAdTestFiles(
    const std::string& category_directory,
    const std::vector<std::string>& class_names) {
  const std::string test_directory = JoinPath(category_directory, "test");
  PANDA_ASSIGN_OR_RETURN(std::vector<std::string> folders,
                         ListClassFolders(test_directory));
  for (const std::string& folder : folders) {
    if (std::find(class_names.begin(), class_names.end(), folder) ==
        class_names.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "test folder ", JoinPath(test_directory, folder),
          " appeared after the dataset was created; create it again"));
    }
  }

  // Walks the classes in label order. "good" may have no test folder.
  std::vector<MvtecAdFile> files;
  for (size_t label = 0; label < class_names.size(); ++label) {
    const std::string& name = class_names[label];
    if (std::find(folders.begin(), folders.end(), name) == folders.end()) {
      continue;
    }
    const std::string class_directory = JoinPath(test_directory, name);
    PANDA_ASSIGN_OR_RETURN(std::vector<std::string> paths,
                           ListImageFiles(class_directory));

    const bool defect = label != 0;
    for (std::string& path : paths) {
      MvtecAdFile file{std::move(path), static_cast<int64_t>(label), ""};
      if (defect) {
        file.mask_path = MaskPath(category_directory, name, class_directory,
                                  file.image_path);
        std::error_code error;
        if (!fs::is_regular_file(file.mask_path, error)) {
          return absl::NotFoundError(absl::StrCat(
              "defect image ", file.image_path, " has no ground-truth mask: ",
              file.mask_path, " is missing or not a file"));
        }
      }
      files.push_back(std::move(file));
    }
  }
  return files;
}

}  // namespace panda
