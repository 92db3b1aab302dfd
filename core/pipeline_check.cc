#include "core/pipeline_check.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "adapters/adapter.h"
#include "backbones/backbone.h"
#include "core/atomic_file.h"
#include "core/device.h"
#include "core/memory_budget.h"
#include "datasets/dataset.h"
#include "scorers/scorer.h"
#include "segmenters/patch_features.h"
#include "segmenters/segmenter.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr double kMebibyte = 1 << 20;

// Images of one split that a run keeps, and the shape of one image.
struct SplitFacts {
  int64_t images = 0;
  // Images of the whole split, before the subset.
  int64_t all_images = 0;
  std::vector<int64_t> image_shape;  // H, W, C
  torch::Tensor first_image;         // uint8 [1, H, W, C]
};

// Counts the images the config's subset keeps from `labels`.
int64_t KeptImages(const std::vector<int64_t>& labels, int limit) {
  if (limit <= 0) return static_cast<int64_t>(labels.size());
  std::map<int64_t, int64_t> per_class;
  for (int64_t label : labels) ++per_class[label];
  int64_t kept = 0;
  for (const auto& [label, count] : per_class) kept += std::min<int64_t>(count, limit);
  return kept;
}

class Checker {
 public:
  explicit Checker(const PipelineConfig& config) : config_(config) {}

  std::vector<CheckFinding> Run();

 private:
  void Add(std::string subject, absl::Status status, std::string detail = "") {
    findings_.push_back({std::move(subject), std::move(status), std::move(detail)});
  }

  void CheckDataset();
  void CheckSplit(Split split);
  void CheckBackbone();
  void CheckOtherPlugins();
  void CheckFolders();
  void CheckMemory();

  const PipelineConfig& config_;
  std::vector<CheckFinding> findings_;
  std::unique_ptr<Dataset> dataset_;
  std::unique_ptr<Backbone> backbone_;
  std::map<Split, SplitFacts> splits_;
  // Patch grid [H, W, C] of a segmentation run, once known.
  std::vector<int64_t> patch_grid_;
  // Whether the adapter keeps the pretrained features, so that images are
  // streamed into extraction rather than held; once known.
  bool streams_images_ = true;
};

void Checker::CheckDataset() {
  const std::string subject = absl::StrCat("dataset ", config_.dataset().name());
  absl::StatusOr<std::unique_ptr<Dataset>> dataset =
      DatasetRegistry().Create(config_.dataset().name(), config_.dataset().options());
  if (!dataset.ok()) return Add(subject, dataset.status());
  dataset_ = *std::move(dataset);
  Add(subject, absl::OkStatus(), absl::StrCat(dataset_->class_names().size(), " classes"));
  CheckSplit(Split::kTrain);
  CheckSplit(Split::kTest);
}

void Checker::CheckSplit(Split split) {
  const std::string subject =
      absl::StrCat("dataset ", config_.dataset().name(), ", ", SplitName(split), " split");
  // Decoding the whole split checks every file, not only the first.
  absl::StatusOr<ImageSet> set = dataset_->Load(split);
  if (!set.ok()) return Add(subject, set.status());
  if (set->labels.empty()) {
    return Add(subject, absl::InvalidArgumentError("the split holds no images"));
  }
  const int limit = split == Split::kTrain ? config_.subset().max_train_per_class()
                                           : config_.subset().max_test_per_class();
  SplitFacts facts;
  facts.images = KeptImages(set->labels, limit);
  facts.all_images = static_cast<int64_t>(set->labels.size());
  facts.first_image = set->images.slice(0, 0, 1);
  facts.image_shape = {set->images.size(1), set->images.size(2), set->images.size(3)};
  Add(subject, absl::OkStatus(),
      absl::StrFormat("%d images kept of %d, each %dx%dx%d; all decode%s", facts.images,
                      set->labels.size(), facts.image_shape[0], facts.image_shape[1],
                      facts.image_shape[2], set->masks.defined() ? ", with masks" : ""));
  if (split == Split::kTest && config_.has_segmentation() && !set->masks.defined()) {
    Add(absl::StrCat(subject, ", masks"),
        absl::InvalidArgumentError("segmentation needs ground-truth masks, and the data set "
                                   "gives none"));
  }
  splits_[split] = std::move(facts);
}

void Checker::CheckBackbone() {
  const std::string subject = absl::StrCat("backbone ", config_.backbone().name());
  absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      BackboneRegistry().Create(config_.backbone().name(), config_.backbone().options());
  if (!backbone.ok()) return Add(subject, backbone.status());
  backbone_ = *std::move(backbone);
  Add(subject, absl::OkStatus(),
      absl::StrCat("weights loaded, ", backbone_->feature_dim(), "-d pooled features"));

  auto split = splits_.find(Split::kTest);
  if (split == splits_.end()) return;
  const std::string forward = absl::StrCat(subject, ", forward pass on one test image");
  try {
    torch::NoGradGuard no_grad;
    backbone_->module().eval();
    absl::StatusOr<TapMap> outputs =
        backbone_->Forward(backbone_->Preprocess(split->second.first_image), {"pooled"});
    if (!outputs.ok()) return Add(forward, outputs.status());
    if (!torch::isfinite(outputs->at("pooled")).all().item<bool>()) {
      return Add(forward, absl::InvalidArgumentError(
                              "the features hold NaN or infinite values; check the weights"));
    }
    Add(forward, absl::OkStatus(), "finite features");
  } catch (const c10::Error& error) {
    Add(forward, absl::InvalidArgumentError(error.what_without_backtrace()));
  }
}

void Checker::CheckOtherPlugins() {
  const std::string adapter = absl::StrCat("adapter ", config_.adapter().name());
  absl::StatusOr<std::unique_ptr<Adapter>> created =
      AdapterRegistry().Create(config_.adapter().name(), config_.adapter().options());
  Add(adapter, created.status());
  if (created.ok()) streams_images_ = (*created)->preserves_features();
  if (config_.has_scorer()) {
    Add(absl::StrCat("scorer ", config_.scorer().name()),
        ScorerRegistry().Create(config_.scorer().name(), config_.scorer().options()).status());
  }
  if (!config_.has_segmentation()) return;

  const PluginConfig& plugin = config_.segmentation().segmenter();
  const std::string subject = absl::StrCat("segmenter ", plugin.name());
  absl::StatusOr<std::unique_ptr<Segmenter>> segmenter =
      SegmenterRegistry().Create(plugin.name(), plugin.options());
  if (!segmenter.ok()) return Add(subject, segmenter.status());
  auto split = splits_.find(Split::kTest);
  if (backbone_ == nullptr || split == splits_.end()) return Add(subject, absl::OkStatus());
  try {
    absl::StatusOr<PatchFeatures> features =
        ExtractPatchFeatures(*backbone_, split->second.first_image, (*segmenter)->patch_spec(),
                             1, torch::kCPU, "patch features of one test image");
    if (!features.ok()) return Add(subject, features.status());
    patch_grid_ = {features->patches.size(1), features->patches.size(2),
                   features->patches.size(3)};
    Add(subject, absl::OkStatus(),
        absl::StrFormat("patch features on a %dx%d grid, %d channels", patch_grid_[0],
                        patch_grid_[1], patch_grid_[2]));
  } catch (const c10::Error& error) {
    Add(subject, absl::InvalidArgumentError(error.what_without_backtrace()));
  }
}

void Checker::CheckFolders() {
  for (const auto& [field, folder] :
       {std::make_pair("output_dir", config_.output_dir()),
        std::make_pair("cache_dir", config_.cache_dir())}) {
    if (folder.empty()) continue;
    const std::string probe = (std::filesystem::path(folder) / ".panda-write-check").string();
    absl::Status written = WriteFileAtomically(probe, "");
    std::remove(probe.c_str());
    Add(absl::StrCat(field, " ", folder), written, "writable");
  }
}

void Checker::CheckMemory() {
  if (splits_.size() < 2 || backbone_ == nullptr) return;
  const SplitFacts& train = splits_[Split::kTrain];
  const SplitFacts& test = splits_[Split::kTest];

  // The images held at once depend on the path the runner takes.
  RunMemoryShape shape;
  shape.train_images = train.images;
  shape.test_images = test.images;
  if (config_.has_segmentation()) {
    shape.decoded_images = train.all_images + test.all_images;
  } else if (streams_images_) {
    // The splits are streamed one after the other.
    shape.decoded_images =
        std::max(StreamedImages(train.images, config_.batch_size()),
                 StreamedImages(test.images, config_.batch_size()));
  } else {
    shape.decoded_images = train.images + test.images;
  }
  shape.image_shape = train.image_shape;
  shape.feature_dim = backbone_->feature_dim();
  shape.patch_grid = patch_grid_;
  const MemoryEstimate estimate = EstimateRunMemory(shape);

  const int64_t budget = MemoryBudgetBytes(config_);
  const std::string detail = absl::StrFormat(
      "about %.0f MiB for %s; budget %.0f MiB (%s)", estimate.bytes / kMebibyte,
      estimate.parts, budget / kMebibyte, MemoryBudgetSource(config_));
  absl::Status status =
      CheckMemoryBudget(estimate, budget, MemoryBudgetSource(config_));
  Add("memory estimate", status, status.ok() ? detail : "");
}

std::vector<CheckFinding> Checker::Run() {
  absl::StatusOr<torch::Device> device = ResolveDevice(config_.device());
  Add(absl::StrCat("device ", config_.device()), device.status(),
      device.ok() ? (device->is_cuda() ? "cuda" : "cpu") : "");
  CheckDataset();
  CheckBackbone();
  CheckOtherPlugins();
  CheckFolders();
  CheckMemory();
  return findings_;
}

}  // namespace

std::vector<CheckFinding> CheckPipeline(const PipelineConfig& config) {
  Checker checker(config);
  try {
    return checker.Run();
  } catch (const std::exception& error) {
    return {{"check", absl::InternalError(absl::StrCat("unexpected error: ", error.what())),
             ""}};
  }
}

std::string FormatCheckReport(const std::vector<CheckFinding>& findings) {
  std::string report;
  int failed = 0;
  for (const CheckFinding& finding : findings) {
    if (finding.status.ok()) {
      absl::StrAppend(&report, "ok      ", finding.subject,
                      finding.detail.empty() ? "" : ": ", finding.detail, "\n");
    } else {
      ++failed;
      absl::StrAppend(&report, "FAILED  ", finding.subject, ": ", finding.status.message(),
                      "\n");
    }
  }
  absl::StrAppend(&report, failed == 0 ? "the pipeline can run\n"
                                       : absl::StrCat(failed, " checks failed\n"));
  return report;
}

}  // namespace panda
