// A SplitReader over image files whose labels come from a listing, so that
// opening it decodes nothing. Plugins that decode one file per image
// (image_folder, mvtec_ad) build their Dataset::Open on it.
#ifndef PANDA_DATASETS_FILE_SPLIT_READER_H_
#define PANDA_DATASETS_FILE_SPLIT_READER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "datasets/dataset.h"
#include "torch/types.h"

namespace panda {

class FileSplitReader : public SplitReader {
 public:
  // Decodes image `index` of the split into `rgb`, image_size x image_size
  // RGB bytes in row-major order. Called concurrently from several threads.
  using DecodeFunction =
      std::function<absl::Status(int64_t index, uint8_t* rgb)>;

  // `labels` has one entry per image of the split. `description` names the
  // split in allocation errors ("image_folder dataset, train split").
  // Each Read decodes on `num_threads` threads (at least 1).
  FileSplitReader(std::string description, std::vector<int64_t> labels,
                  int64_t image_size, int num_threads, DecodeFunction decode);

  const std::vector<int64_t>& labels() const override { return labels_; }

  std::vector<int64_t> image_shape() const override {
    return {image_size_, image_size_, 3};
  }

  // Decodes each of `indices` straight into its row of a new uint8
  // [n, image_size, image_size, 3] tensor. The first failure in the order
  // of `indices` is returned as it is, and no index after it is started.
  absl::StatusOr<torch::Tensor> Read(
      absl::Span<const int64_t> indices) const override;

 private:
  std::string description_;
  std::vector<int64_t> labels_;
  int64_t image_size_;
  int num_threads_;
  DecodeFunction decode_;
};

}  // namespace panda

#endif  // PANDA_DATASETS_FILE_SPLIT_READER_H_
