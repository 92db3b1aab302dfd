#include "datasets/dataset.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "torch/torch.h"

namespace panda {

const char* SplitName(Split split) {
  return split == Split::kTrain ? "train" : "test";
}

std::vector<int64_t> Dataset::normal_classes() const {
  std::vector<int64_t> classes(class_names().size());
  for (size_t c = 0; c < classes.size(); ++c) classes[c] = static_cast<int64_t>(c);
  return classes;
}

absl::Status CheckReadIndices(absl::Span<const int64_t> indices,
                              int64_t size) {
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= size) {
      return absl::OutOfRangeError(
          absl::StrCat("image index ", indices[i], " at position ", i,
                       " of the read is outside the split's ", size,
                       " images"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> InMemorySplitReader::Read(
    absl::Span<const int64_t> indices) const {
  const absl::Status checked = CheckReadIndices(indices, size());
  if (!checked.ok()) return checked;
  const std::vector<int64_t> rows(indices.begin(), indices.end());
  return set_.images.index_select(0, torch::tensor(rows, torch::kInt64));
}

absl::StatusOr<std::unique_ptr<SplitReader>> Dataset::Open(Split split) const {
  absl::StatusOr<ImageSet> set = Load(split);
  if (!set.ok()) return set.status();
  return std::make_unique<InMemorySplitReader>(*std::move(set));
}

Registry<Dataset>& DatasetRegistry() {
  static auto* registry = new Registry<Dataset>("dataset");
  return *registry;
}

}  // namespace panda
