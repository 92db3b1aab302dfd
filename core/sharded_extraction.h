// Feature extraction split across the ranks of a multi-process run. Each
// rank extracts one contiguous shard of the images (ShardRows), writes it to
// its own cache file and receives the other ranks' shards, so every rank
// ends with the features of all images. A rerun loads the shard files that
// exist and extracts only the missing shards, so a job that died after some
// ranks finished their shard resumes there.
#ifndef PANDA_CORE_SHARDED_EXTRACTION_H_
#define PANDA_CORE_SHARDED_EXTRACTION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "core/feature_cache.h"
#include "datasets/dataset.h"
#include "distributed/process_group.h"
#include "torch/types.h"

namespace panda {

struct ShardedExtractionJob {
  // The split to read and the positions of the chosen images in it; every
  // rank passes the same ones.
  const SplitReader* reader = nullptr;
  std::vector<int64_t> indices;
  Backbone* backbone = nullptr;
  torch::Device device = torch::kCPU;
  int64_t batch_size = 32;
  // Names the split in logs and errors ("train features").
  std::string label;
  // Cache for the shard files, or null to extract without one. A shard's
  // file is named after `key` with ".shard<rank>-of<world size>" added to
  // its split, so shards of another world size are never mixed in.
  const FeatureCache* cache = nullptr;
  FeatureCacheKey key;
};

// Name of rank `rank`'s shard under `key` among `world_size` ranks: the key
// with ".shard<rank>-of<world_size>" appended to its split.
FeatureCacheKey ShardCacheKey(const FeatureCacheKey& key, int rank,
                              int world_size);

// Extracts or loads this rank's shard of `job`'s images and returns the
// features of all of them, float32 [indices.size(), D] on the CPU, in the
// order of `indices`. The features of each image equal those that
// ExtractPooledFeatures gives for it alone up to float rounding, since its
// batch may hold other images. Extraction errors keep their code, a failed
// exchange with the other ranks is Unavailable, and a shard file that
// cannot be written is only logged.
absl::StatusOr<torch::Tensor> ExtractShardedFeatures(
    const ShardedExtractionJob& job, DistributedContext& context);

}  // namespace panda

#endif  // PANDA_CORE_SHARDED_EXTRACTION_H_
