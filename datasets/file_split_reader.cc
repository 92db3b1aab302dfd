#include "datasets/file_split_reader.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "datasets/parallel_for.h"
#include "torch/torch.h"

namespace panda {

FileSplitReader::FileSplitReader(std::string description,
                                 std::vector<int64_t> labels,
                                 int64_t image_size, int num_threads,
                                 DecodeFunction decode)
    : description_(std::move(description)),
      labels_(std::move(labels)),
      image_size_(image_size),
      num_threads_(std::max(1, num_threads)),
      decode_(std::move(decode)) {}

absl::StatusOr<torch::Tensor> FileSplitReader::Read(
    absl::Span<const int64_t> indices) const {
  const absl::Status checked = CheckReadIndices(indices, size());
  if (!checked.ok()) return checked;

  const int64_t count = static_cast<int64_t>(indices.size());
  const int64_t image_bytes = image_size_ * image_size_ * 3;
  torch::Tensor images;
  try {
    images = torch::empty({count, image_size_, image_size_, 3}, torch::kUInt8);
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat(description_, ": failed to allocate ", count,
                     " images of ", image_size_, "x", image_size_, " pixels (",
                     count * image_bytes, " bytes)"));
  }
  uint8_t* pixels = images.data_ptr<uint8_t>();

  // ParallelFor stops taking new positions after a failure but finishes
  // every lower one, so the lowest failing position is the same for any
  // thread count.
  std::vector<absl::Status> errors(indices.size());
  ParallelFor(count, num_threads_, [&](int64_t i) {
    errors[i] = decode_(indices[i], pixels + i * image_bytes);
    return errors[i].ok();
  });
  for (const absl::Status& error : errors) {
    if (!error.ok()) return error;
  }
  return images;
}

}  // namespace panda
