// Images from a second data set that an adapter needs beside the normal
// class: outliers for outlier exposure, the Fisher image set for EWC.
#ifndef PANDA_ADAPTERS_AUXILIARY_IMAGES_H_
#define PANDA_ADAPTERS_AUXILIARY_IMAGES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "config/pipeline.pb.h"
#include "torch/types.h"

namespace panda {

// Loads split `split` ("train" or "test") of the data set `dataset` and
// keeps `max_images` of its images drawn at random with `seed` (all when 0),
// every class together. `field` names the config field in errors.
absl::StatusOr<torch::Tensor> LoadAuxiliaryImages(const PluginConfig& dataset,
                                                  const std::string& split,
                                                  int64_t max_images, int64_t seed,
                                                  const std::string& field);

}  // namespace panda

#endif  // PANDA_ADAPTERS_AUXILIARY_IMAGES_H_
