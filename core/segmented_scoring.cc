#include "core/segmented_scoring.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/anomaly_map_picture.h"
#include "core/feature_extractor.h"
#include "core/logging.h"
#include "core/status_macros.h"
#include "metrics/aupro.h"
#include "metrics/pixel_roc.h"
#include "segmenters/anomaly_maps.h"
#include "segmenters/patch_features.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr double kBytesPerMebibyte = 1 << 20;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

class ClassSegmentation {
 public:
  explicit ClassSegmentation(const SegmentationJob& job) : job_(job) {}

  absl::StatusOr<SegmentedScores> Run();

 private:
  absl::StatusOr<PatchFeatures> Features(const torch::Tensor& images,
                                         const std::string& label);
  // Anomaly maps of `features`' images at the images' size: float32
  // [M, H, W] on the CPU.
  absl::StatusOr<torch::Tensor> Maps(const PatchFeatures& features);
  absl::Status SetPixelMetrics(const torch::Tensor& maps, SegmentationResult& result);
  absl::StatusOr<std::vector<RunFile>> Pictures(const torch::Tensor& maps);

  const SegmentationJob& job_;
  double extraction_seconds_ = 0;
  double score_seconds_ = 0;
};

absl::StatusOr<PatchFeatures> ClassSegmentation::Features(const torch::Tensor& images,
                                                          const std::string& label) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<PatchFeatures> features =
      ExtractPatchFeatures(*job_.backbone, images, job_.segmenter->patch_spec(),
                           job_.batch_size, job_.device, label);
  extraction_seconds_ += SecondsSince(start);
  return features;
}

absl::StatusOr<torch::Tensor> ClassSegmentation::Maps(const PatchFeatures& features) {
  const auto start = std::chrono::steady_clock::now();
  PANDA_ASSIGN_OR_RETURN(const torch::Tensor patch_scores, job_.segmenter->Score(features));
  const torch::Tensor maps = PatchScoresToAnomalyMaps(
      patch_scores, job_.test_images.size(1), job_.test_images.size(2),
      job_.config->smoothing_sigma());
  score_seconds_ += SecondsSince(start);
  if (!torch::isfinite(maps).all().item<bool>()) {
    return absl::InvalidArgumentError(
        "segmenter: the anomaly maps hold NaN or infinite scores");
  }
  return maps;
}

absl::Status ClassSegmentation::SetPixelMetrics(const torch::Tensor& maps,
                                                SegmentationResult& result) {
  const torch::Tensor masks = (job_.test_masks != 0).to(torch::kUInt8).contiguous();
  PixelScores pixels;
  pixels.maps = absl::MakeConstSpan(maps.data_ptr<float>(), maps.numel());
  pixels.masks = absl::MakeConstSpan(masks.data_ptr<uint8_t>(), masks.numel());
  pixels.images = maps.size(0);
  pixels.height = maps.size(1);
  pixels.width = maps.size(2);

  PANDA_ASSIGN_OR_RETURN(const PixelRoc roc, ComputePixelRoc(pixels));
  PANDA_ASSIGN_OR_RETURN(const AuproResult pro,
                         Aupro(pixels, job_.config->pro_fpr_limit()));
  result.set_pixel_roc_auc(roc.roc_auc);
  for (float rate : roc.true_positive_rates) result.add_pixel_roc_true_positive_rates(rate);
  result.set_aupro(pro.aupro);
  result.set_pro_fpr_limit(pro.fpr_limit);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RunFile>> ClassSegmentation::Pictures(const torch::Tensor& maps) {
  // Three quarters anomalous images, because they show what the maps find,
  // and a quarter normal ones, which show false alarms. Each kind is spaced
  // evenly through the test split, so that every defect type appears.
  std::vector<int64_t> anomalous, normal;
  for (size_t i = 0; i < job_.test_labels.size(); ++i) {
    (job_.test_labels[i] == 1 ? anomalous : normal).push_back(static_cast<int64_t>(i));
  }
  const int64_t requested = std::max(0, job_.config->pictures());
  const int64_t normal_count =
      std::min<int64_t>(normal.size(), std::max<int64_t>(requested / 4, requested - anomalous.size()));
  const int64_t anomalous_count = std::min<int64_t>(anomalous.size(), requested - normal_count);
  std::vector<int64_t> order;
  for (const auto& [indices, count] : {std::make_pair(&anomalous, anomalous_count),
                                       std::make_pair(&normal, normal_count)}) {
    for (int64_t k = 0; k < count; ++k) {
      order.push_back((*indices)[k * static_cast<int64_t>(indices->size()) / count]);
    }
  }

  // One colour scale for all pictures of the class, so they compare.
  HeatRange range;
  range.low = maps.min().item<float>();
  range.high = std::max(maps.max().item<float>(), std::nextafter(range.low, INFINITY));
  std::vector<RunFile> pictures;
  for (int64_t i : order) {
    PANDA_ASSIGN_OR_RETURN(
        std::string png,
        RenderAnomalyMapPicture(job_.test_images[i], maps[i], job_.test_masks[i], range));
    pictures.push_back({absl::StrFormat("pictures/%s-%04d.png", job_.picture_prefix, i),
                        std::move(png)});
  }
  return pictures;
}

absl::StatusOr<SegmentedScores> ClassSegmentation::Run() {
  SegmentedScores scores;
  // NOTE: patch features are not cached, unlike pooled ones: every run and
  // seed extracts them again (seconds on the synthetic configs, minutes on
  // a large MVTec AD category).
  PANDA_ASSIGN_OR_RETURN(const PatchFeatures train,
                         Features(job_.train_images, "train patch features"));
  PANDA_ASSIGN_OR_RETURN(const PatchFeatures test,
                         Features(job_.test_images, "test patch features"));

  const auto fit_start = std::chrono::steady_clock::now();
  PatchFeatures train_on_device;
  train_on_device.pooled = train.pooled.to(job_.device);
  train_on_device.patches = train.patches.to(job_.device);
  PANDA_RETURN_IF_ERROR(job_.segmenter->Fit(train_on_device));
  const double fit_seconds = SecondsSince(fit_start);

  PANDA_ASSIGN_OR_RETURN(const torch::Tensor maps, Maps(test));
  PANDA_RETURN_IF_ERROR(SetPixelMetrics(maps, scores.result));

  if (job_.config->image_score() == SegmentationConfig::SCORER) {
    PANDA_ASSIGN_OR_RETURN(std::unique_ptr<Scorer> scorer, job_.make_scorer());
    PANDA_RETURN_IF_ERROR(scorer->Fit(train.pooled.to(job_.device)));
    PANDA_ASSIGN_OR_RETURN(scores.test, scorer->Score(test.pooled));
    if (job_.holdout_images.defined()) {
      PANDA_ASSIGN_OR_RETURN(
          const torch::Tensor holdout_pooled,
          ExtractPooledFeatures(*job_.backbone, job_.holdout_images, job_.batch_size,
                                job_.device, "held-out features"));
      PANDA_ASSIGN_OR_RETURN(scores.holdout, scorer->Score(holdout_pooled));
    }
  } else {
    scores.test = maps.amax({1, 2});
    if (job_.holdout_images.defined()) {
      PANDA_ASSIGN_OR_RETURN(const PatchFeatures holdout,
                             Features(job_.holdout_images, "held-out patch features"));
      PANDA_ASSIGN_OR_RETURN(const torch::Tensor holdout_maps, Maps(holdout));
      scores.holdout = holdout_maps.amax({1, 2});
    }
  }
  scores.test = scores.test.to(torch::kCPU, torch::kFloat32).contiguous();
  if (scores.holdout.defined()) {
    scores.holdout = scores.holdout.to(torch::kCPU, torch::kFloat32).contiguous();
  }

  PANDA_ASSIGN_OR_RETURN(scores.pictures, Pictures(maps));
  SegmentationResult& result = scores.result;
  result.set_memory_bank_patches(static_cast<int32_t>(job_.segmenter->memory_bank_patches()));
  result.set_memory_bank_mib(job_.segmenter->memory_bank_bytes() / kBytesPerMebibyte);
  result.set_extraction_seconds(extraction_seconds_);
  result.set_fit_seconds(fit_seconds);
  result.set_score_seconds(score_seconds_);
  PANDA_LOG(INFO) << absl::StrFormat(
      "segmentation: pixel ROC-AUC %.4f, AUPRO %.4f, memory bank %d patches "
      "(%.1f MiB), fit %.1f s, scoring %.1f s",
      result.pixel_roc_auc(), result.aupro(), result.memory_bank_patches(),
      result.memory_bank_mib(), fit_seconds, score_seconds_);
  return scores;
}

}  // namespace

absl::StatusOr<SegmentedScores> SegmentAndScore(const SegmentationJob& job) {
  if (!job.test_masks.defined()) {
    return absl::InvalidArgumentError(
        "segmentation needs ground-truth masks, and the data set gives none; "
        "use a defect data set such as mvtec_ad or synthetic_defects");
  }
  ClassSegmentation segmentation(job);
  return segmentation.Run();
}

}  // namespace panda
