// Dataset plugins: labelled images split into a training and a test part.
//
// Lifecycle: the registry creates a dataset from its options (a bad path or
// option is an error at that point or at Load/Open). Load() decodes one
// split into memory. Open() returns a SplitReader, which gives the split's
// labels first and decodes chosen images later, so that a caller can pick a
// subset, or skip decoding altogether when features are cached. The
// one-class protocol is applied by the pipeline, not here: a dataset
// returns every class.
#ifndef PANDA_DATASETS_DATASET_H_
#define PANDA_DATASETS_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
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

// The images of one split, read on request. Its labels are known when it is
// created; images are decoded only by Read.
//
// Thread safety: every member function may be called from any thread, also
// concurrently.
class SplitReader {
 public:
  virtual ~SplitReader() = default;

  // Class index of every image of the split, in data set order (the order
  // of Dataset::Load).
  virtual const std::vector<int64_t>& labels() const = 0;

  // Number of images in the split.
  int64_t size() const { return static_cast<int64_t>(labels().size()); }

  // Shape [H, W, C] of every image that Read returns, known without
  // decoding; empty when the reader cannot tell before decoding.
  virtual std::vector<int64_t> image_shape() const { return {}; }

  // Decodes the images at `indices` (positions in labels(), any order,
  // repeats allowed) and returns them as uint8 [n, H, W, C] on the CPU, in
  // the order of `indices`. Each image equals its row in Load()'s tensor.
  // An index outside [0, size()) is OutOfRange. A file that cannot be
  // decoded is an error naming it, with the code Load() gives it. When
  // several fail, the error is that of the first in `indices`.
  virtual absl::StatusOr<torch::Tensor> Read(
      absl::Span<const int64_t> indices) const = 0;
};

// A SplitReader over an ImageSet already in memory: Read copies rows.
class InMemorySplitReader : public SplitReader {
 public:
  explicit InMemorySplitReader(ImageSet set) : set_(std::move(set)) {}

  const std::vector<int64_t>& labels() const override { return set_.labels; }

  std::vector<int64_t> image_shape() const override {
    if (!set_.images.defined() || set_.images.dim() != 4) return {};
    return {set_.images.size(1), set_.images.size(2), set_.images.size(3)};
  }

  absl::StatusOr<torch::Tensor> Read(
      absl::Span<const int64_t> indices) const override;

 private:
  ImageSet set_;
};

// Returns OutOfRange naming the first of `indices` outside [0, size), or OK.
absl::Status CheckReadIndices(absl::Span<const int64_t> indices, int64_t size);

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

  // Returns a reader of `split` whose labels and images equal Load()'s. The
  // default calls Load() and serves the images from memory. Plugins that
  // can list a split's labels without decoding override it, so that Open
  // decodes nothing. Their listing errors (a missing folder) come from
  // Open, and a corrupt file is an error of the Read that reaches it.
  virtual absl::StatusOr<std::unique_ptr<SplitReader>> Open(Split split) const;

  // Identifies the bytes behind `split` (file paths, sizes, modification
  // times), so the feature cache notices when the data changes.
  virtual absl::StatusOr<std::string> Fingerprint(Split split) const = 0;
};

Registry<Dataset>& DatasetRegistry();

}  // namespace panda

#endif  // PANDA_DATASETS_DATASET_H_
