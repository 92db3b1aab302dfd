// Dataset plugins: labelled images split into a training and a test part.
//
// Lifecycle: the registry creates a dataset from its options (a bad path or
// option is an error at that point or at Load); Load() decodes one split
// into memory. The one-class protocol is applied by the pipeline, not here:
// a dataset returns every class.
#ifndef PANDA_DATASETS_DATASET_H_
#define PANDA_DATASETS_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/registry.h"
#include "torch/types.h"

namespace panda {

enum class Split { kTrain, kTest };

// Returns "train" or "test".
const char* SplitName(Split split);

// Decoded images of one split.
struct ImageSet {
  // uint8 [N, H, W, C] with C = 1 (grey) or 3 (RGB), on the CPU.
  torch::Tensor images;
  // Class index of each image, in [0, number of classes); size N.
  std::vector<int64_t> labels;
  // Ground truth of defect data sets: uint8 [N, H, W], 1 where a pixel
  // belongs to a defect and 0 elsewhere, on the CPU. Undefined for data
  // sets without pixel labels.
  torch::Tensor masks;
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  // Names of the classes, indexed by label.
  virtual const std::vector<std::string>& class_names() const = 0;

  // Classes that can serve as the normal class; a run whose config lists
  // none takes each in turn. Every class by default. Defect data sets
  // (MVTec AD's layout, synthetic defects) train on defect-free images only
  // and return {0}, their "good" class.
  virtual std::vector<int64_t> normal_classes() const;

  // Reads and decodes every image of `split`. Missing or corrupt files are
  // NotFound or DataLoss naming the file.
  virtual absl::StatusOr<ImageSet> Load(Split split) const = 0;

  // Identifies the bytes behind `split` (file paths, sizes, modification
  // times), so the feature cache notices when the data changes.
  virtual absl::StatusOr<std::string> Fingerprint(Split split) const = 0;
};

Registry<Dataset>& DatasetRegistry();

}  // namespace panda

#endif  // PANDA_DATASETS_DATASET_H_
