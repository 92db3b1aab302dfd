#include "datasets/dataset.h"

namespace panda {

const char* SplitName(Split split) {
  return split == Split::kTrain ? "train" : "test";
}

std::vector<int64_t> Dataset::normal_classes() const {
  std::vector<int64_t> classes(class_names().size());
  for (size_t c = 0; c < classes.size(); ++c) classes[c] = static_cast<int64_t>(c);
  return classes;
}

Registry<Dataset>& DatasetRegistry() {
  static auto* registry = new Registry<Dataset>("dataset");
  return *registry;
}

}  // namespace panda
