// Lists the class folders and image files of an image-folder data set
// (<split>/<class>/<files>), in sorted order. No decoding happens here.
#ifndef PANDA_DATASETS_IMAGE_FOLDER_LISTING_H_
#define PANDA_DATASETS_IMAGE_FOLDER_LISTING_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace panda {

// Whether `filename` ends in .png, .jpg, .jpeg, .bmp, .tif, .tiff or .webp,
// in any letter case.
bool HasImageExtension(absl::string_view filename);

// Returns the names of the subfolders of `split_directory`, sorted bytewise,
// leaving out names that start with ".". Returns NotFound naming
// `split_directory` when it is missing or has no class folders.
absl::StatusOr<std::vector<std::string>> ListClassFolders(
    const std::string& split_directory);

// Returns the paths of the image files (see HasImageExtension) under
// `class_directory` and its subfolders, sorted bytewise, leaving out files
// and folders whose names start with ".". Folder links are not followed.
// A folder without images is NotFound naming it.
absl::StatusOr<std::vector<std::string>> ListImageFiles(
    const std::string& class_directory);

}  // namespace panda

#endif  // PANDA_DATASETS_IMAGE_FOLDER_LISTING_H_
