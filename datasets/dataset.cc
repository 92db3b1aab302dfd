#include "datasets/dataset.h"

namespace panda {

const char* SplitName(Split split) {
  return split == Split::kTrain ? "train" : "test";
}

Registry<Dataset>& DatasetRegistry() {
  static auto* registry = new Registry<Dataset>("dataset");
  return *registry;
}

}  // namespace panda
