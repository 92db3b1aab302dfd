// On-disk cache of extracted features, so runs that differ only after
// feature extraction (another scorer, another k) skip the backbone.
//
// A cache file is named after the configuration that produced it (data set,
// split, subset, backbone config) and records in its header what the
// features were computed from (data file and weight fingerprints). Load()
// distinguishes three cases:
//   - no file: NotFound, extract and Store();
//   - corrupt file, or stale (same configuration, but the data or the
//     weights changed since): NotFound with the reason, extract again;
//   - a file whose header names another configuration (copied or renamed
//     from another backbone or data set): FailedPrecondition naming the file,
//     because silently replacing it could hide a mistake in the cache folder.
#ifndef PANDA_CORE_FEATURE_CACHE_H_
#define PANDA_CORE_FEATURE_CACHE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/types.h"

namespace panda {

struct FeatureCacheKey {
  // Configuration identity: text-format protos and the split name.
  std::string dataset;
  std::string split;
  std::string subset;
  std::string backbone;
  // Provenance: Dataset::Fingerprint() and Backbone::Fingerprint().
  std::string data_fingerprint;
  std::string backbone_fingerprint;
};

class FeatureCache {
 public:
  explicit FeatureCache(std::string directory)
      : directory_(std::move(directory)) {}

  // Path of the file for `key`'s configuration.
  std::string PathFor(const FeatureCacheKey& key) const;

  // Returns float32 [N, D] CPU features, or an error as described above.
  absl::StatusOr<torch::Tensor> Load(const FeatureCacheKey& key) const;

  // Writes float32 [N, D] `features` atomically.
  absl::Status Store(const FeatureCacheKey& key,
                     const torch::Tensor& features) const;

 private:
  std::string directory_;
};

}  // namespace panda

#endif  // PANDA_CORE_FEATURE_CACHE_H_
