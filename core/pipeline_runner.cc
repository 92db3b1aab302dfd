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
#include "adapters/adapter.h"
#include "backbones/backbone.h"
#include "core/device.h"
#include "core/feature_cache.h"
#include "core/feature_extractor.h"
#include "core/logging.h"
#include "core/status_macros.h"
#include "datasets/dataset.h"
#include "google/protobuf/text_format.h"
#include "metrics/roc_auc.h"
#include "scorers/scorer.h"
#include "torch/torch.h"

namespace panda {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

std::string ToText(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.SetExpandAny(true);
  printer.PrintToString(message, &text);
  return text;
}

// Keeps the first `max_per_class` images of each class, in order; 0 keeps all.
ImageSet LimitPerClass(const ImageSet& set, int max_per_class) {
  if (max_per_class <= 0) return set;
  std::map<int64_t, int> kept_per_class;
  std::vector<int64_t> keep;
  ImageSet subset;
  for (size_t i = 0; i < set.labels.size(); ++i) {
    if (kept_per_class[set.labels[i]]++ < max_per_class) {
      keep.push_back(static_cast<int64_t>(i));
      subset.labels.push_back(set.labels[i]);
    }
  }
  subset.images = set.images.index_select(0, torch::tensor(keep, torch::kInt64));
  return subset;
}

torch::Tensor IndicesOfClass(const std::vector<int64_t>& labels,
                             int64_t normal_class) {
  std::vector<int64_t> indices;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == normal_class) indices.push_back(static_cast<int64_t>(i));
  }
  return torch::tensor(indices, torch::kInt64);
}

// One split's images with its features, cached or freshly extracted.
struct SplitFeatures {
  ImageSet images;
  torch::Tensor features;
};

class Runner {
 public:
  explicit Runner(const PipelineConfig& config) : config_(config) {}

  absl::StatusOr<RunResult> Run();

 private:
  absl::Status SetUp();
  absl::StatusOr<SplitFeatures> LoadSplit(Split split);
  absl::StatusOr<torch::Tensor> CachedFeatures(Split split,
                                               const ImageSet& images);
  absl::StatusOr<ClassResult> RunClass(int64_t normal_class,
                                       const SplitFeatures& train,
                                       const SplitFeatures& test);

  const PipelineConfig& config_;
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
  PANDA_LOG(INFO) << "pipeline " << config_.name() << ": dataset "
                  << config_.dataset().name() << ", backbone "
                  << config_.backbone().name() << " ("
                  << backbone_->feature_dim() << "-d features), adapter "
                  << config_.adapter().name() << ", scorer "
                  << config_.scorer().name() << ", device "
                  << result_.device() << ", " << result_.threads()
                  << " threads";
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> Runner::CachedFeatures(Split split,
                                                     const ImageSet& images) {
  ExtractionStats* stats = result_.add_extraction();
  stats->set_split(SplitName(split));
  stats->set_images(images.images.size(0));

  std::unique_ptr<FeatureCache> cache;
  FeatureCacheKey key;
  if (!config_.cache_dir().empty()) {
    cache = std::make_unique<FeatureCache>(config_.cache_dir());
    key.dataset = ToText(config_.dataset());
    key.split = SplitName(split);
    // Only the split's own limit, so pipelines that subsample the training
    // split alone share the test features.
    key.subset = split == Split::kTrain
                     ? absl::StrCat("max_train_per_class: ",
                                    config_.subset().max_train_per_class())
                     : absl::StrCat("max_test_per_class: ",
                                    config_.subset().max_test_per_class());
    key.backbone = ToText(config_.backbone());
    PANDA_ASSIGN_OR_RETURN(key.data_fingerprint, dataset_->Fingerprint(split));
    key.backbone_fingerprint = backbone_->Fingerprint();
    if (split == Split::kTrain) {
      train_cache_stem_ =
          std::filesystem::path(cache->PathFor(key)).stem().string();
    }

    absl::StatusOr<torch::Tensor> cached = cache->Load(key);
    if (cached.ok() && cached->size(0) == images.images.size(0)) {
      PANDA_LOG(INFO) << "loaded " << cached->size(0) << " " << SplitName(split)
                      << " features from " << cache->PathFor(key);
      stats->set_extracted(false);
      return *cached;
    }
    if (absl::IsFailedPrecondition(cached.status())) return cached.status();
    if (cached.ok()) {
      PANDA_LOG(WARNING) << "feature cache " << cache->PathFor(key) << " holds "
                         << cached->size(0) << " rows for "
                         << images.images.size(0) << " images; extracting again";
    } else if (cached.status().message().find("no feature cache") ==
               absl::string_view::npos) {
      PANDA_LOG(WARNING) << cached.status().message() << "; extracting again";
    }
  }

  const auto start = std::chrono::steady_clock::now();
  PANDA_ASSIGN_OR_RETURN(
      torch::Tensor features,
      ExtractPooledFeatures(*backbone_, images.images, config_.batch_size(),
                            device_, absl::StrCat(SplitName(split), " features")));
  const double seconds = SecondsSince(start);
  stats->set_extracted(true);
  stats->set_seconds(seconds);
  stats->set_images_per_second(seconds > 0 ? features.size(0) / seconds : 0);
  PANDA_LOG(INFO) << absl::StrFormat(
      "extracted %d %s features in %.1f s (%.1f images/s, %d threads)",
      features.size(0), SplitName(split), seconds, stats->images_per_second(),
      result_.threads());

  if (cache != nullptr) {
    absl::Status stored = cache->Store(key, features);
    if (!stored.ok()) {
      PANDA_LOG(WARNING) << "could not write the feature cache: " << stored;
    }
  }
  return features;
}

absl::StatusOr<SplitFeatures> Runner::LoadSplit(Split split) {
  SplitFeatures result;
  PANDA_ASSIGN_OR_RETURN(ImageSet all, dataset_->Load(split));
  const SubsetConfig& subset = config_.subset();
  result.images = LimitPerClass(all, split == Split::kTrain
                                         ? subset.max_train_per_class()
                                         : subset.max_test_per_class());
  if (result.images.labels.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", SplitName(split), " split of dataset ",
        config_.dataset().name(), " holds no images"));
  }
  PANDA_LOG(INFO) << SplitName(split) << " split: "
                  << result.images.labels.size() << " images of "
                  << result.images.images.size(1) << "x"
                  << result.images.images.size(2);

  // Adapters that change the backbone extract their own features per class.
  if (adapter_->preserves_features()) {
    PANDA_ASSIGN_OR_RETURN(result.features,
                           CachedFeatures(split, result.images));
  }
  return result;
}

absl::StatusOr<ClassResult> Runner::RunClass(int64_t normal_class,
                                             const SplitFeatures& train,
                                             const SplitFeatures& test) {
  const auto start = std::chrono::steady_clock::now();
  ClassResult result;
  result.set_normal_class(static_cast<int32_t>(normal_class));
  result.set_class_name(dataset_->class_names()[normal_class]);

  const torch::Tensor train_indices =
      IndicesOfClass(train.images.labels, normal_class);
  if (train_indices.numel() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "normal class ", normal_class, " (", result.class_name(),
        ") has no training images"));
  }

  torch::Tensor train_features;
  torch::Tensor test_features;
  if (adapter_->preserves_features()) {
    train_features = train.features.index_select(0, train_indices);
    test_features = test.features;
  } else {
    // A fresh pretrained backbone per class, adapted to that class alone.
    PANDA_ASSIGN_OR_RETURN(
        std::unique_ptr<Backbone> backbone,
        BackboneRegistry().Create(config_.backbone().name(),
                                  config_.backbone().options()));
    ImageSet normal_train;
    normal_train.images = train.images.images.index_select(0, train_indices);
    normal_train.labels.assign(train_indices.numel(), normal_class);
    AdaptationContext context;
    context.device = device_;
    context.batch_size = config_.batch_size();
    PANDA_RETURN_IF_ERROR(adapter_->Adapt(*backbone, normal_train, context));
    PANDA_ASSIGN_OR_RETURN(
        train_features,
        ExtractPooledFeatures(*backbone, normal_train.images,
                              config_.batch_size(), device_, "adapted train"));
    PANDA_ASSIGN_OR_RETURN(
        test_features,
        ExtractPooledFeatures(*backbone, test.images.images,
                              config_.batch_size(), device_, "adapted test"));
  }

  PANDA_ASSIGN_OR_RETURN(
      std::unique_ptr<Scorer> scorer,
      ScorerRegistry().Create(config_.scorer().name(),
                              config_.scorer().options()));
  if (adapter_->preserves_features() && !train_cache_stem_.empty()) {
    scorer->SetCacheLocation(
        config_.cache_dir(),
        absl::StrCat(train_cache_stem_, "-class", normal_class));
  }
  PANDA_RETURN_IF_ERROR(scorer->Fit(train_features.to(device_)));
  PANDA_ASSIGN_OR_RETURN(torch::Tensor scores, scorer->Score(test_features));

  std::vector<int> labels;
  labels.reserve(test.images.labels.size());
  for (int64_t label : test.images.labels) {
    labels.push_back(label == normal_class ? 0 : 1);
  }
  const torch::Tensor cpu_scores = scores.to(torch::kCPU, torch::kFloat32).contiguous();
  PANDA_ASSIGN_OR_RETURN(
      const double auc,
      RocAuc(absl::MakeConstSpan(cpu_scores.data_ptr<float>(),
                                 cpu_scores.numel()),
             labels));

  result.set_roc_auc(auc);
  result.set_train_images(train_indices.numel());
  result.set_test_images(static_cast<int64_t>(labels.size()));
  result.set_test_anomalies(std::count(labels.begin(), labels.end(), 1));
  result.set_seconds(SecondsSince(start));
  PANDA_LOG(INFO) << absl::StrFormat("class %d (%s): ROC-AUC %.4f", normal_class,
                                     result.class_name(), auc);
  return result;
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
  if (normal_classes.empty()) {
    for (int64_t c = 0; c < num_classes; ++c) normal_classes.push_back(c);
  }
  for (int64_t c : normal_classes) {
    if (c < 0 || c >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "normal_classes: class ", c, " is out of range; the dataset has ",
          num_classes, " classes (0 to ", num_classes - 1, ")"));
    }
  }

  PANDA_ASSIGN_OR_RETURN(SplitFeatures train, LoadSplit(Split::kTrain));
  PANDA_ASSIGN_OR_RETURN(SplitFeatures test, LoadSplit(Split::kTest));

  double sum = 0;
  for (int64_t c : normal_classes) {
    PANDA_ASSIGN_OR_RETURN(ClassResult class_result, RunClass(c, train, test));
    sum += class_result.roc_auc();
    *result_.add_classes() = class_result;
  }
  result_.set_mean_roc_auc(sum / normal_classes.size());
  result_.set_wall_seconds(SecondsSince(start));
  return result_;
}

}  // namespace

absl::StatusOr<RunResult> RunPipeline(const PipelineConfig& config) {
  Runner runner(config);
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
