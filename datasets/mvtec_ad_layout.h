// Lists the classes, images and ground-truth masks of one category of
// MVTec AD (<root>/<category>/{train,test,ground_truth}/...), in sorted
// order. No decoding happens here. The folder layout is described in
// datasets/mvtec_ad_dataset_options.proto.
#ifndef PANDA_DATASETS_MVTEC_AD_LAYOUT_H_
#define PANDA_DATASETS_MVTEC_AD_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace panda {

// Name of the defect-free class, label 0.
inline constexpr char kMvtecAdGoodClass[] = "good";

// One image of a category and its ground truth.
struct MvtecAdFile {
  std::string image_path;
  int64_t label = 0;
  // The mask file of a defect image, or empty for a good image.
  std::string mask_path;
};

// Checks that the folders <root>, <root>/<category>, its train/good and its
// test exist. A missing folder is NotFound naming it.
absl::Status CheckMvtecAdCategory(const std::string& root,
                                  const std::string& category);

// The functions below take `category_directory`, <root>/<category>.

// Returns the class names: "good", then the folders of test/ other than
// good/, sorted bytewise. Returns NotFound naming test/ when it is missing
// or has no folders.
absl::StatusOr<std::vector<std::string>> ListMvtecAdClasses(
    const std::string& category_directory);

// Returns the images of train/good, all of label 0. NotFound names
// train/good when it is missing or contains no images.
absl::StatusOr<std::vector<MvtecAdFile>> ListMvtecAdTrainFiles(
    const std::string& category_directory);

// Returns the images of every folder of test/, class by class in label
// order, with the mask path of each defect image. `class_names` are those
// of ListMvtecAdClasses. A test folder not among them is FailedPrecondition.
// A folder without images is NotFound, and so is a defect image whose mask
// file is missing; both name the path.
absl::StatusOr<std::vector<MvtecAdFile>> ListMvtecAdTestFiles(
    const std::string& category_directory,
    const std::vector<std::string>& class_names);

}  // namespace panda

#endif  // PANDA_DATASETS_MVTEC_AD_LAYOUT_H_
