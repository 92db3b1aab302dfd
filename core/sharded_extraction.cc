#include "core/sharded_extraction.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/feature_extractor.h"
#include "core/image_stream.h"
#include "core/logging.h"
#include "core/status_macros.h"
#include "distributed/sharding.h"
#include "torch/torch.h"

namespace panda {
namespace {

// Loads this rank's features from its shard file when that file has the
// expected number of rows, and otherwise extracts and stores them.
absl::StatusOr<torch::Tensor> ShardFeatures(const ShardedExtractionJob& job,
                                            const RowRange& rows,
                                            const DistributedContext& context) {
  const std::string shard_name = absl::StrCat(
      job.label, " shard ", context.rank(), " of ", context.world_size());
  if (rows.size() == 0) {
    return torch::empty({0, job.backbone->feature_dim()}, torch::kFloat32);
  }

  const FeatureCacheKey key =
      ShardCacheKey(job.key, context.rank(), context.world_size());
  if (job.cache != nullptr) {
    absl::StatusOr<torch::Tensor> cached = job.cache->Load(key);
    if (cached.ok() && cached->size(0) == rows.size()) {
      PANDA_LOG(INFO) << "loaded " << rows.size() << " " << shard_name
                      << " from " << job.cache->PathFor(key);
      return *cached;
    }
    if (absl::IsFailedPrecondition(cached.status())) return cached.status();
  }

  const std::vector<int64_t> indices(job.indices.begin() + rows.begin,
                                     job.indices.begin() + rows.end);
  PANDA_ASSIGN_OR_RETURN(
      std::unique_ptr<ImageStream> stream,
      ImageStream::Start(*job.reader, indices, job.batch_size));
  PANDA_ASSIGN_OR_RETURN(
      torch::Tensor features,
      ExtractPooledFeatures(*job.backbone, *stream, job.device, shard_name));
  PANDA_LOG(INFO) << "extracted " << rows.size() << " " << shard_name
                  << " (images " << rows.begin << " to " << rows.end - 1
                  << " of " << job.indices.size() << ")";
  if (job.cache != nullptr) {
    const absl::Status stored = job.cache->Store(key, features);
    if (!stored.ok()) {
      PANDA_LOG(WARNING) << "could not write the feature cache shard: "
                         << stored;
    }
  }
  return features;
}

}  // namespace

FeatureCacheKey ShardCacheKey(const FeatureCacheKey& key, int rank,
                              int world_size) {
  FeatureCacheKey shard = key;
  absl::StrAppend(&shard.split, ".shard", rank, "-of", world_size);
  return shard;
}

absl::StatusOr<torch::Tensor> ExtractShardedFeatures(
    const ShardedExtractionJob& job, DistributedContext& context) {
  const RowRange rows = ShardRows(static_cast<int64_t>(job.indices.size()),
                                  context.rank(), context.world_size());
  PANDA_ASSIGN_OR_RETURN(const torch::Tensor features,
                         ShardFeatures(job, rows, context));
  return context.AllGatherRows(features.to(torch::kCPU).contiguous(),
                               job.label);
}

}  // namespace panda
