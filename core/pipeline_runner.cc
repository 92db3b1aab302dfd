#include "core/pipeline_runner.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "adapters/adapter.h"
#include "backbones/backbone.h"
#include "core/adapted_scoring.h"
#include "core/device.h"
#include "core/fnv1a.h"
#include "core/feature_cache.h"
#include "core/feature_extractor.h"
#include "core/image_stream.h"
#include "core/logging.h"
#include "core/memory_budget.h"
#include "core/pipeline_config.h"
#include "core/run_summary.h"
#include "core/segmented_scoring.h"
#include "core/sharded_extraction.h"
#include "core/status_macros.h"
#include "core/subset.h"
#include "datasets/dataset.h"
#include "distributed/process_group.h"
#include "google/protobuf/text_format.h"
#include "metrics/average_precision.h"
#include "metrics/binary_scores.h"
#include "metrics/f1_max.h"
#include "metrics/normal_score_threshold.h"
#include "metrics/roc_auc.h"
#include "scorers/scorer.h"
#include "segmenters/patch_features.h"
#include "segmenters/segmenter.h"
#include "torch/torch.h"

namespace panda {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// One split's chosen images with their features, cached or freshly
// extracted.
struct SplitFeatures {
  // The labels of the chosen images, always. Their pixels (and masks) only
  // where the run needs them in memory: for adapters that train and for
  // segmentation. Pooled features are extracted from `reader` instead.
  ImageSet images;
  // Positions of the chosen images in the data set's split, increasing.
  std::vector<int64_t> indices;
  // Images in the whole split, before the subset.
  int64_t all_images = 0;
  // The split's reader until the features are attached; null on the paths
  // that load the images.
  std::unique_ptr<SplitReader> reader;
  torch::Tensor features;
};

class Runner {
 public:
  Runner(const PipelineConfig& config, std::vector<RunFile>* files)
      : config_(config), files_(files) {}

  absl::StatusOr<RunResult> Run();

 private:
  absl::Status SetUp();
  absl::Status LogSetUp() const;
  // Creates the configured segmenter once and checks its taps against the
  // backbone's outputs.
  absl::Status CheckSegmenter() const;
  absl::StatusOr<SplitFeatures> LoadSplit(Split split, int64_t seed);
  // Checks the memory estimate of the loaded splits against the budget,
  // before any image is decoded, except by segmentation, which has loaded
  // both splits.
  absl::Status CheckMemory(const SplitFeatures& train,
                           const SplitFeatures& test) const;
  // Decodes the chosen images of a split for an adapter that trains, which
  // goes over them many times.
  absl::Status ReadImagesForTraining(SplitFeatures& split_features) const;
  absl::Status AttachFeatures(Split split, int64_t seed, SplitFeatures& split_features);
  // Returns the pooled features of `split_features`' images, from the cache
  // or, on a miss, extracted while its reader decodes them.
  absl::StatusOr<torch::Tensor> CachedFeatures(
      Split split, int64_t seed, const SplitFeatures& split_features);
  absl::StatusOr<ClassResult> RunClass(int64_t normal_class, int64_t seed,
                                       const SplitFeatures& train,
                                       const SplitFeatures& test);
  absl::StatusOr<std::unique_ptr<Scorer>> FitScorer(
      int64_t normal_class, int64_t seed, const torch::Tensor& train_features);
  // A class of a segmentation run; see core/segmented_scoring.h.
  absl::StatusOr<ClassResult> RunSegmentedClass(
      int64_t normal_class, int64_t seed, const SplitFeatures& train,
      const torch::Tensor& train_indices, const torch::Tensor& holdout_indices,
      const SplitFeatures& test, ClassResult result,
      std::chrono::steady_clock::time_point start);
  // A class under an adapter that trains; see core/adapted_scoring.h.
  absl::StatusOr<ClassResult> RunAdaptedClass(
      int64_t normal_class, int64_t seed, const SplitFeatures& train,
      const torch::Tensor& train_indices, const torch::Tensor& holdout_indices,
      const SplitFeatures& test, ClassResult result,
      std::chrono::steady_clock::time_point start);
  // Metrics of a class from its scores; `holdout_scores` may be undefined.
  absl::StatusOr<ClassResult> FinishClass(
      const torch::Tensor& scores, const torch::Tensor& holdout_scores,
      const SplitFeatures& test, ClassResult result,
      std::chrono::steady_clock::time_point start);
  // 0 for test images of `normal_class`, 1 for the others.
  std::vector<int> BinaryLabels(const SplitFeatures& test,
                                int64_t normal_class) const;
  // Training checkpoints of one class and seed, under the cache folder;
  // empty without a cache.
  std::string CheckpointDir(int64_t normal_class, int64_t seed) const;

  bool segmenting() const { return config_.has_segmentation(); }

  const PipelineConfig& config_;
  // Pictures of segmentation runs go here when not null.
  std::vector<RunFile>* files_;
  torch::Device device_ = torch::kCPU;
  std::unique_ptr<Dataset> dataset_;
  std::unique_ptr<Backbone> backbone_;
  std::unique_ptr<Adapter> adapter_;
  RunResult result_;
  // File stem of the training split's feature cache, which names indexes
  // that scorers build on it; empty without a cache.
  std::string train_cache_stem_;
};

absl::Status Runner::SetUp() {
  PANDA_ASSIGN_OR_RETURN(device_, ResolveDevice(config_.device()));
  const int threads = config_.num_threads() > 0
                          ? config_.num_threads()
                          : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(std::max(1, threads));
  result_.set_threads(torch::get_num_threads());
  result_.set_device(device_.is_cuda() ? "cuda" : "cpu");

  PANDA_ASSIGN_OR_RETURN(
      dataset_, DatasetRegistry().Create(config_.dataset().name(),
                                         config_.dataset().options()));
  PANDA_ASSIGN_OR_RETURN(
      backbone_, BackboneRegistry().Create(config_.backbone().name(),
                                           config_.backbone().options()));
  PANDA_ASSIGN_OR_RETURN(
      adapter_, AdapterRegistry().Create(config_.adapter().name(),
                                         config_.adapter().options()));
  // One scorer and segmenter now, unused, so that bad options fail before
  // extraction rather than after it.
  if (segmenting()) PANDA_RETURN_IF_ERROR(CheckSegmenter());
  if (!config_.has_scorer()) return LogSetUp();
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<Scorer> scorer,
                         ScorerRegistry().Create(config_.scorer().name(),
                                                 config_.scorer().options()));
  if (scorer->needs_score_head() && !adapter_->trains_score_head()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scorer \"", config_.scorer().name(), "\" scores with a head that the "
        "adapter trains, but adapter \"", config_.adapter().name(),
        "\" trains none; use outlier_exposure or deep_svdd"));
  }
  return LogSetUp();
}

absl::Status Runner::CheckSegmenter() const {
  const PluginConfig& plugin = config_.segmentation().segmenter();
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<Segmenter> segmenter,
                         SegmenterRegistry().Create(plugin.name(), plugin.options()));
  const std::vector<std::string> names = backbone_->tap_names();
  for (const std::string& tap : segmenter->patch_spec().taps) {
    if (std::find(names.begin(), names.end(), tap) != names.end()) continue;
    // Keras models have hundreds of outputs: the first few show the naming.
    constexpr size_t kListed = 12;
    std::string listed = absl::StrJoin(
        names.begin(), names.begin() + std::min(names.size(), kListed), ", ");
    if (names.size() > kListed) absl::StrAppend(&listed, ", ... (", names.size(), " in all)");
    return absl::InvalidArgumentError(absl::StrCat(
        "segmenter ", plugin.name(), ": tap \"", tap, "\" is not an output of backbone ",
        config_.backbone().name(), "; its outputs are ", listed));
  }
  return absl::OkStatus();
}

absl::Status Runner::LogSetUp() const {
  std::string plugins = absl::StrCat(
      "dataset ", config_.dataset().name(), ", backbone ", config_.backbone().name(),
      " (", backbone_->feature_dim(), "-d features), adapter ", config_.adapter().name());
  if (config_.has_scorer()) absl::StrAppend(&plugins, ", scorer ", config_.scorer().name());
  if (segmenting()) {
    absl::StrAppend(&plugins, ", segmenter ", config_.segmentation().segmenter().name());
  }
  PANDA_LOG(INFO) << "pipeline " << config_.name() << ": " << plugins << ", device "
                  << result_.device() << ", " << result_.threads() << " threads";
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> Runner::CachedFeatures(
    Split split, int64_t seed, const SplitFeatures& split_features) {
  const int64_t count = static_cast<int64_t>(split_features.indices.size());
  ExtractionStats* stats = result_.add_extraction();
  stats->set_split(SplitName(split));
  stats->set_images(count);

  DistributedContext& distributed = ProcessDistributedContext();
  std::unique_ptr<FeatureCache> cache;
  FeatureCacheKey key;
  if (!config_.cache_dir().empty()) {
    cache = std::make_unique<FeatureCache>(config_.cache_dir());
    key.dataset = SingleLineText(config_.dataset());
    key.split = SplitName(split);
    // Only the split's own limit, so pipelines that subsample the training
    // split alone share the test features.
    const SubsetConfig& subset = config_.subset();
    const int limit = split == Split::kTrain ? subset.max_train_per_class()
                                             : subset.max_test_per_class();
    key.subset = absl::StrCat(SplitName(split), " limit ", limit);
    if (limit > 0 && subset.random()) absl::StrAppend(&key.subset, " seed ", seed);
    key.backbone = SingleLineText(config_.backbone());
    PANDA_ASSIGN_OR_RETURN(key.data_fingerprint, dataset_->Fingerprint(split));
    key.backbone_fingerprint = backbone_->Fingerprint();
    if (split == Split::kTrain) {
      train_cache_stem_ =
          std::filesystem::path(cache->PathFor(key)).stem().string();
    }

    absl::StatusOr<torch::Tensor> cached = cache->Load(key);
    bool hit = cached.ok() && cached->size(0) == count;
    if (distributed.is_distributed()) {
      // The ranks extract together, so they load only when all of them can.
      torch::Tensor misses = torch::full({1}, hit ? 0 : 1, torch::kLong);
      PANDA_RETURN_IF_ERROR(distributed.AllReduceSum(
          misses, absl::StrCat(SplitName(split), " feature cache misses")));
      hit = misses.item<int64_t>() == 0;
    }
    if (hit) {
      PANDA_LOG(INFO) << "loaded " << cached->size(0) << " " << SplitName(split)
                      << " features from " << cache->PathFor(key);
      stats->set_extracted(false);
      return *cached;
    }
    if (absl::IsFailedPrecondition(cached.status())) return cached.status();
    if (cached.ok() && cached->size(0) == count) {
      PANDA_LOG(INFO) << "another rank found no " << SplitName(split)
                      << " feature cache; extracting together with the other ranks";
    } else if (cached.ok()) {
      PANDA_LOG(WARNING) << "feature cache " << cache->PathFor(key) << " holds "
                         << cached->size(0) << " rows for " << count
                         << " images; extracting again";
    } else if (cached.status().message().find("no feature cache") ==
               absl::string_view::npos) {
      PANDA_LOG(WARNING) << cached.status().message() << "; extracting again";
    }
  }

  // Images are decoded only here, on a miss, a few batches ahead of the
  // backbone.
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor features;
  if (distributed.is_distributed()) {
    ShardedExtractionJob job;
    job.reader = split_features.reader.get();
    job.indices = split_features.indices;
    job.backbone = backbone_.get();
    job.device = device_;
    job.batch_size = config_.batch_size();
    job.label = absl::StrCat(SplitName(split), " features");
    job.cache = cache.get();
    job.key = key;
    PANDA_ASSIGN_OR_RETURN(features, ExtractShardedFeatures(job, distributed));
  } else {
    PANDA_ASSIGN_OR_RETURN(
        std::unique_ptr<ImageStream> stream,
        ImageStream::Start(*split_features.reader, split_features.indices,
                           config_.batch_size()));
    PANDA_ASSIGN_OR_RETURN(
        features,
        ExtractPooledFeatures(*backbone_, *stream, device_,
                              absl::StrCat(SplitName(split), " features")));
  }
  const double seconds = SecondsSince(start);
  stats->set_extracted(true);
  stats->set_seconds(seconds);
  stats->set_images_per_second(seconds > 0 ? features.size(0) / seconds : 0);
  PANDA_LOG(INFO) << absl::StrFormat(
      "%s %d %s features in %.1f s (%.1f images/s, %d threads)",
      distributed.is_distributed()
          ? absl::StrCat("gathered from ", distributed.world_size(), " ranks")
          : "extracted",
      features.size(0), SplitName(split), seconds, stats->images_per_second(),
      result_.threads());

  // Rank 0 writes the whole split's file, which later runs on any number
  // of ranks load.
  if (cache != nullptr && distributed.rank() == 0) {
    absl::Status stored = cache->Store(key, features);
    if (!stored.ok()) {
      PANDA_LOG(WARNING) << "could not write the feature cache: " << stored;
    }
  }
  return features;
}

absl::StatusOr<SplitFeatures> Runner::LoadSplit(Split split, int64_t seed) {
  SplitFeatures result;
  const SubsetConfig& subset = config_.subset();
  const int limit = split == Split::kTrain ? subset.max_train_per_class()
                                           : subset.max_test_per_class();
  if (segmenting()) {
    // Segmentation needs the masks, which only Load() returns.
    PANDA_ASSIGN_OR_RETURN(ImageSet all, dataset_->Load(split));
    result.all_images = static_cast<int64_t>(all.labels.size());
    result.images = LimitPerClass(all, limit, subset.random(), seed);
  } else {
    // The subset is chosen from the labels, before any image is decoded.
    PANDA_ASSIGN_OR_RETURN(result.reader, dataset_->Open(split));
    const std::vector<int64_t>& labels = result.reader->labels();
    result.all_images = static_cast<int64_t>(labels.size());
    result.indices =
        LimitPerClassIndices(labels, limit, subset.random(), seed);
    for (int64_t index : result.indices) {
      result.images.labels.push_back(labels[index]);
    }
  }
  if (result.images.labels.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", SplitName(split), " split of dataset ",
        config_.dataset().name(), " holds no images"));
  }

  if (result.images.images.defined()) {
    PANDA_LOG(INFO) << SplitName(split) << " split: "
                    << result.images.labels.size() << " images of "
                    << result.images.images.size(1) << "x"
                    << result.images.images.size(2);
  } else if (adapter_->preserves_features()) {
    PANDA_LOG(INFO) << SplitName(split) << " split: "
                    << result.images.labels.size()
                    << " images, decoded only if their features are not cached";
  }
  return result;
}

absl::Status Runner::ReadImagesForTraining(SplitFeatures& split_features) const {
  if (segmenting() || adapter_->preserves_features()) return absl::OkStatus();
  PANDA_ASSIGN_OR_RETURN(split_features.images.images,
                         split_features.reader->Read(split_features.indices));
  split_features.reader.reset();
  PANDA_LOG(INFO) << split_features.images.labels.size() << " images of "
                  << split_features.images.images.size(1) << "x"
                  << split_features.images.images.size(2)
                  << " decoded for training";
  return absl::OkStatus();
}

absl::Status Runner::CheckMemory(const SplitFeatures& train,
                                 const SplitFeatures& test) const {
  const int64_t budget = MemoryBudgetBytes(config_);
  if (budget <= 0) return absl::OkStatus();

  // The image shape comes from the reader where the reader can tell it
  // without decoding, so that a run whose features are all cached decodes
  // no image. Otherwise one test image is decoded.
  std::vector<int64_t> image_shape;
  torch::Tensor image;
  if (test.images.images.defined()) {
    image = test.images.images.slice(0, 0, 1);
  } else {
    image_shape = test.reader->image_shape();
    if (image_shape.size() != 3) {
      PANDA_ASSIGN_OR_RETURN(image, test.reader->Read({test.indices.front()}));
    }
  }
  if (image.defined()) {
    image_shape = {image.size(1), image.size(2), image.size(3)};
  }

  RunMemoryShape shape;
  shape.train_images = static_cast<int64_t>(train.images.labels.size());
  shape.test_images = static_cast<int64_t>(test.images.labels.size());
  if (segmenting()) {
    // NOTE: Load() has decoded both whole splits by now, so this check
    // comes after their images but before the patch features, which are
    // most of a segmentation run's memory.
    shape.decoded_images = train.all_images + test.all_images;
  } else if (adapter_->preserves_features()) {
    // The splits are streamed one after the other.
    shape.decoded_images =
        std::max(StreamedImages(shape.train_images, config_.batch_size()),
                 StreamedImages(shape.test_images, config_.batch_size()));
  } else {
    shape.decoded_images = shape.train_images + shape.test_images;
  }
  shape.image_shape = image_shape;
  shape.feature_dim = backbone_->feature_dim();
  if (segmenting()) {
    const PluginConfig& plugin = config_.segmentation().segmenter();
    PANDA_ASSIGN_OR_RETURN(
        std::unique_ptr<Segmenter> segmenter,
        SegmenterRegistry().Create(plugin.name(), plugin.options()));
    torch::NoGradGuard no_grad;
    backbone_->module().eval();
    PANDA_ASSIGN_OR_RETURN(
        PatchFeatures features,
        ExtractPatchFeatures(*backbone_, image, segmenter->patch_spec(), 1,
                             device_, "patch features of one test image"));
    shape.patch_grid = {features.patches.size(1), features.patches.size(2),
                        features.patches.size(3)};
  }

  const MemoryEstimate estimate = EstimateRunMemory(shape);
  PANDA_RETURN_IF_ERROR(
      CheckMemoryBudget(estimate, budget, MemoryBudgetSource(config_)));
  PANDA_LOG(INFO) << "memory estimate: "
                  << absl::StrFormat("%.0f MiB for %s, budget %.0f MiB (%s)",
                                     estimate.bytes / double{1 << 20},
                                     estimate.parts, budget / double{1 << 20},
                                     MemoryBudgetSource(config_));
  return absl::OkStatus();
}

absl::Status Runner::AttachFeatures(Split split, int64_t seed,
                                    SplitFeatures& split_features) {
  // Adapters that change the backbone extract their own features per class,
  // and segmentation its patch features.
  if (!adapter_->preserves_features() || segmenting()) return absl::OkStatus();
  PANDA_ASSIGN_OR_RETURN(split_features.features,
                         CachedFeatures(split, seed, split_features));
  // The default reader keeps the whole loaded split in memory.
  split_features.reader.reset();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Scorer>> Runner::FitScorer(
    int64_t normal_class, int64_t seed, const torch::Tensor& train_features) {
  PANDA_ASSIGN_OR_RETURN(
      std::unique_ptr<Scorer> scorer,
      ScorerRegistry().Create(config_.scorer().name(),
                              config_.scorer().options()));
  // Indexes are named after the training bank, which is only stable when the
  // features come from the cache and no images are held out.
  if (adapter_->preserves_features() && !train_cache_stem_.empty() &&
      config_.deployment().holdout_fraction() == 0) {
    scorer->SetCacheLocation(
        config_.cache_dir(),
        absl::StrCat(train_cache_stem_, "-class", normal_class));
  }
  torch::manual_seed(static_cast<uint64_t>(seed));
  PANDA_RETURN_IF_ERROR(scorer->Fit(train_features.to(device_)));
  return scorer;
}

// Returns the scores as a contiguous float32 CPU tensor.
absl::StatusOr<torch::Tensor> ScoreOnCpu(Scorer& scorer,
                                         const torch::Tensor& features) {
  PANDA_ASSIGN_OR_RETURN(torch::Tensor scores, scorer.Score(features));
  return scores.to(torch::kCPU, torch::kFloat32).contiguous();
}

absl::Span<const float> AsSpan(const torch::Tensor& scores) {
  return absl::MakeConstSpan(scores.data_ptr<float>(), scores.numel());
}

// Fills the threshold-free metrics of `result` from test scores and labels.
absl::Status SetTestMetrics(const torch::Tensor& scores,
                            const std::vector<int>& labels,
                            ClassResult& result) {
  PANDA_ASSIGN_OR_RETURN(const double auc, RocAuc(AsSpan(scores), labels));
  PANDA_ASSIGN_OR_RETURN(const double average_precision,
                         AveragePrecision(AsSpan(scores), labels));
  PANDA_ASSIGN_OR_RETURN(const F1MaxResult f1, F1Max(AsSpan(scores), labels));
  result.set_roc_auc(auc);
  result.set_average_precision(average_precision);
  result.set_f1_max(f1.f1);
  result.set_f1_threshold(f1.threshold);

  // The curve's steps, resampled on a fixed grid of false positive rates.
  PANDA_ASSIGN_OR_RETURN(ClassCounts counts,
                         CountBinaryLabels("ROC curve", AsSpan(scores), labels));
  const std::vector<ThresholdCounts> sweep =
      SweepThresholds(AsSpan(scores), labels);
  constexpr int kGridSteps = 100;
  size_t next = 0;
  double true_positive_rate = 0;
  for (int step = 0; step <= kGridSteps; ++step) {
    const double false_positive_rate = static_cast<double>(step) / kGridSteps;
    while (next < sweep.size() &&
           sweep[next].false_positives <=
               false_positive_rate * counts.normal + 1e-9) {
      true_positive_rate =
          static_cast<double>(sweep[next].true_positives) / counts.anomalous;
      ++next;
    }
    result.add_roc_true_positive_rates(static_cast<float>(true_positive_rate));
  }
  return absl::OkStatus();
}

// Fills the deployment fields: the threshold from held-out normal scores and
// the test error rates it gives (scores above it are flagged).
absl::Status SetDeploymentMetrics(const torch::Tensor& holdout_scores,
                                  double false_positive_rate,
                                  const torch::Tensor& test_scores,
                                  const std::vector<int>& labels,
                                  ClassResult& result) {
  PANDA_ASSIGN_OR_RETURN(
      const float threshold,
      ThresholdFromNormalScores(AsSpan(holdout_scores), false_positive_rate));
  int64_t false_positives = 0, true_positives = 0, normal = 0, anomalous = 0;
  const float* scores = test_scores.data_ptr<float>();
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool flagged = scores[i] > threshold;
    if (labels[i] == 1) {
      ++anomalous;
      true_positives += flagged;
    } else {
      ++normal;
      false_positives += flagged;
    }
  }
  result.set_deployment_threshold(threshold);
  result.set_deployment_false_positive_rate(
      static_cast<double>(false_positives) / normal);
  result.set_deployment_true_positive_rate(
      static_cast<double>(true_positives) / anomalous);
  return absl::OkStatus();
}

absl::StatusOr<ClassResult> Runner::RunClass(int64_t normal_class,
                                             int64_t seed,
                                             const SplitFeatures& train,
                                             const SplitFeatures& test) {
  const auto start = std::chrono::steady_clock::now();
  ClassResult result;
  result.set_normal_class(static_cast<int32_t>(normal_class));
  result.set_class_name(dataset_->class_names()[normal_class]);
  result.set_seed(static_cast<int32_t>(seed));

  torch::Tensor train_indices = IndicesOfClass(train.images.labels, normal_class);
  if (train_indices.numel() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "normal class ", normal_class, " (", result.class_name(),
        ") has no training images"));
  }
  torch::Tensor holdout_indices;
  const DeploymentConfig& deployment = config_.deployment();
  if (deployment.holdout_fraction() > 0) {
    torch::Tensor rest;
    SplitHoldout(train_indices, deployment.holdout_fraction(), seed, &rest,
                 &holdout_indices);
    train_indices = rest;
    if (holdout_indices.numel() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "deployment.holdout_fraction ", deployment.holdout_fraction(),
          " holds out no image of class ", normal_class, "'s ",
          train_indices.numel(), " training images"));
    }
  }

  if (segmenting()) {
    return RunSegmentedClass(normal_class, seed, train, train_indices,
                             holdout_indices, test, std::move(result), start);
  }
  if (!adapter_->preserves_features()) {
    return RunAdaptedClass(normal_class, seed, train, train_indices,
                           holdout_indices, test, std::move(result), start);
  }

  const torch::Tensor train_features = train.features.index_select(0, train_indices);
  const torch::Tensor& test_features = test.features;
  torch::Tensor holdout_features;
  if (holdout_indices.defined()) {
    holdout_features = train.features.index_select(0, holdout_indices);
  }
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<Scorer> scorer,
                         FitScorer(normal_class, seed, train_features));
  PANDA_ASSIGN_OR_RETURN(torch::Tensor scores,
                         ScoreOnCpu(*scorer, test_features));
  torch::Tensor holdout_scores;
  if (holdout_features.defined()) {
    PANDA_ASSIGN_OR_RETURN(holdout_scores, ScoreOnCpu(*scorer, holdout_features));
  }
  result.set_train_images(static_cast<int32_t>(train_indices.numel()));
  return FinishClass(scores, holdout_scores, test, std::move(result), start);
}

std::vector<int> Runner::BinaryLabels(const SplitFeatures& test,
                                      int64_t normal_class) const {
  std::vector<int> labels;
  labels.reserve(test.images.labels.size());
  for (int64_t label : test.images.labels) {
    labels.push_back(label == normal_class ? 0 : 1);
  }
  return labels;
}

absl::StatusOr<ClassResult> Runner::FinishClass(
    const torch::Tensor& scores, const torch::Tensor& holdout_scores,
    const SplitFeatures& test, ClassResult result,
    std::chrono::steady_clock::time_point start) {
  const std::vector<int> labels = BinaryLabels(test, result.normal_class());
  PANDA_RETURN_IF_ERROR(SetTestMetrics(scores, labels, result));
  if (holdout_scores.defined()) {
    PANDA_RETURN_IF_ERROR(SetDeploymentMetrics(
        holdout_scores, config_.deployment().false_positive_rate(), scores,
        labels, result));
  }

  result.set_test_images(static_cast<int32_t>(labels.size()));
  result.set_test_anomalies(
      static_cast<int32_t>(std::count(labels.begin(), labels.end(), 1)));
  result.set_seconds(SecondsSince(start));
  PANDA_LOG(INFO) << absl::StrFormat(
      "class %d (%s), seed %d: ROC-AUC %.4f, AP %.4f, F1-max %.4f",
      result.normal_class(), result.class_name(), result.seed(),
      result.roc_auc(), result.average_precision(), result.f1_max());
  return result;
}

std::string Runner::CheckpointDir(int64_t normal_class, int64_t seed) const {
  if (config_.cache_dir().empty()) return "";
  // Everything that shapes the training and its checkpoint scores, and
  // nothing that only names or places the run.
  PipelineConfig key = config_;
  key.clear_name();
  key.clear_output_dir();
  key.clear_cache_dir();
  key.clear_num_threads();
  key.clear_normal_classes();
  key.clear_seeds();
  const std::string text = SingleLineText(key);
  return (std::filesystem::path(config_.cache_dir()) / "checkpoints" /
          absl::StrCat(absl::Hex(Fnv1a64(text.data(), text.size()), absl::kZeroPad16)) /
          absl::StrCat("class", normal_class, "-seed", seed))
      .string();
}

absl::StatusOr<ClassResult> Runner::RunSegmentedClass(
    int64_t normal_class, int64_t seed, const SplitFeatures& train,
    const torch::Tensor& train_indices, const torch::Tensor& holdout_indices,
    const SplitFeatures& test, ClassResult result,
    std::chrono::steady_clock::time_point start) {
  const SegmentationConfig& config = config_.segmentation();
  PANDA_ASSIGN_OR_RETURN(
      std::unique_ptr<Segmenter> segmenter,
      SegmenterRegistry().Create(config.segmenter().name(), config.segmenter().options()));
  SegmentationJob job;
  job.backbone = backbone_.get();
  job.segmenter = segmenter.get();
  job.config = &config;
  job.make_scorer = [this] {
    return ScorerRegistry().Create(config_.scorer().name(), config_.scorer().options());
  };
  job.device = device_;
  job.batch_size = config_.batch_size();
  job.train_images = train.images.images.index_select(0, train_indices);
  job.test_images = test.images.images;
  job.test_masks = test.images.masks;
  job.test_labels = BinaryLabels(test, normal_class);
  if (holdout_indices.defined()) {
    job.holdout_images = train.images.images.index_select(0, holdout_indices);
  }
  job.picture_prefix = absl::StrCat("class", normal_class, "-seed", seed);

  // The seed drives random parts of segmenters, such as coreset selection.
  torch::manual_seed(static_cast<uint64_t>(seed));
  PANDA_ASSIGN_OR_RETURN(SegmentedScores scores, SegmentAndScore(job));
  *result.mutable_segmentation() = scores.result;
  if (files_ != nullptr) {
    for (RunFile& picture : scores.pictures) files_->push_back(std::move(picture));
  }
  result.set_train_images(static_cast<int32_t>(train_indices.numel()));
  return FinishClass(scores.test, scores.holdout, test, std::move(result), start);
}

absl::StatusOr<ClassResult> Runner::RunAdaptedClass(
    int64_t normal_class, int64_t seed, const SplitFeatures& train,
    const torch::Tensor& train_indices, const torch::Tensor& holdout_indices,
    const SplitFeatures& test, ClassResult result,
    std::chrono::steady_clock::time_point start) {
  AdaptationJob job;
  job.make_backbone = [this] {
    return BackboneRegistry().Create(config_.backbone().name(),
                                     config_.backbone().options());
  };
  job.make_scorer = [this] {
    return ScorerRegistry().Create(config_.scorer().name(),
                                   config_.scorer().options());
  };
  job.adapter = adapter_.get();
  job.device = device_;
  job.batch_size = config_.batch_size();
  job.seed = seed;
  job.checkpoint_dir = CheckpointDir(normal_class, seed);
  job.normal_train.images = train.images.images.index_select(0, train_indices);
  job.normal_train.labels.assign(train_indices.numel(), normal_class);
  job.test_images = test.images.images;
  job.test_labels = BinaryLabels(test, normal_class);
  if (holdout_indices.defined()) {
    job.holdout_images = train.images.images.index_select(0, holdout_indices);
  }
  if (!job.checkpoint_dir.empty()) {
    PANDA_LOG(INFO) << "class " << normal_class << ": checkpoints in "
                    << job.checkpoint_dir;
  }

  PANDA_ASSIGN_OR_RETURN(AdaptedScores scores, AdaptAndScore(job));
  for (const EpochRecord& record : scores.epochs) *result.add_training() = record;
  result.set_train_images(static_cast<int32_t>(train_indices.numel()));
  return FinishClass(scores.test, scores.holdout, test, std::move(result), start);
}

absl::StatusOr<RunResult> Runner::Run() {
  const auto start = std::chrono::steady_clock::now();
  std::time_t now = std::time(nullptr);
  std::tm utc;
  gmtime_r(&now, &utc);
  char timestamp[32];
  std::strftime(timestamp, sizeof(timestamp), "%Y-%m-%dT%H:%M:%SZ", &utc);
  result_.set_started_at(timestamp);
  result_.set_pipeline(config_.name());

  PANDA_RETURN_IF_ERROR(SetUp());
  const int64_t num_classes =
      static_cast<int64_t>(dataset_->class_names().size());
  std::vector<int64_t> normal_classes(config_.normal_classes().begin(),
                                      config_.normal_classes().end());
  if (normal_classes.empty()) normal_classes = dataset_->normal_classes();
  for (int64_t c : normal_classes) {
    if (c < 0 || c >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "normal_classes: class ", c, " is out of range; the dataset has ",
          num_classes, " classes (0 to ", num_classes - 1, ")"));
    }
  }
  std::vector<int64_t> seeds(config_.seeds().begin(), config_.seeds().end());
  if (seeds.empty()) seeds.push_back(0);

  // Splits depend on the seed only through random subsets.
  const bool seeded_splits = config_.subset().random();
  absl::StatusOr<SplitFeatures> train = absl::UnknownError("not loaded");
  absl::StatusOr<SplitFeatures> test = absl::UnknownError("not loaded");
  for (size_t s = 0; s < seeds.size(); ++s) {
    const int64_t seed = seeds[s];
    if (s == 0 || seeded_splits) {
      // Both splits are opened before any extraction, so that a missing
      // folder fails the run at once. So does a corrupt file of a plugin
      // whose Open loads the split. Streamed splits report a corrupt file
      // at the batch that reads it.
      train = LoadSplit(Split::kTrain, seed);
      PANDA_RETURN_IF_ERROR(train.status());
      test = LoadSplit(Split::kTest, seed);
      PANDA_RETURN_IF_ERROR(test.status());
      if (segmenting() && !test->images.masks.defined()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "segmentation needs ground-truth masks, and dataset ", config_.dataset().name(),
            " gives none; use a defect data set such as mvtec_ad or synthetic_defects"));
      }
      if (s == 0) PANDA_RETURN_IF_ERROR(CheckMemory(*train, *test));
      PANDA_RETURN_IF_ERROR(ReadImagesForTraining(*train));
      PANDA_RETURN_IF_ERROR(ReadImagesForTraining(*test));
      PANDA_RETURN_IF_ERROR(AttachFeatures(Split::kTrain, seed, *train));
      PANDA_RETURN_IF_ERROR(AttachFeatures(Split::kTest, seed, *test));
    }
    for (int64_t c : normal_classes) {
      PANDA_ASSIGN_OR_RETURN(ClassResult class_result,
                             RunClass(c, seed, *train, *test));
      *result_.add_classes() = class_result;
    }
  }

  SummarizeRun(result_);
  result_.set_wall_seconds(SecondsSince(start));
  return result_;
}

}  // namespace

absl::StatusOr<RunResult> RunPipeline(const PipelineConfig& config,
                                      std::vector<RunFile>* files) {
  Runner runner(config, files);
  // Plugins turn the errors they expect into a Status; anything LibTorch
  // still throws is reported the same way instead of aborting the program.
  try {
    return runner.Run();
  } catch (const c10::Error& error) {
    return absl::InternalError(
        absl::StrCat("LibTorch error: ", error.what_without_backtrace()));
  } catch (const std::exception& error) {
    return absl::InternalError(absl::StrCat("unexpected error: ", error.what()));
  }
}

}  // namespace panda
