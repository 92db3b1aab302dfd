#include "core/adapted_scoring.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "core/atomic_file.h"
#include "core/feature_extractor.h"
#include "core/logging.h"
#include "core/status_macros.h"
#include "metrics/roc_auc.h"
#include "torch/serialize.h"
#include "torch/torch.h"

namespace panda {
namespace {

// Scores of one checkpoint, and the typical normal score that scales them.
struct CheckpointScores {
  torch::Tensor test;
  torch::Tensor holdout;
  double typical = 0;
};

std::string ScoresPath(const std::string& directory, int epoch) {
  return (std::filesystem::path(directory) / absl::StrCat("scores-epoch", epoch, ".pt")).string();
}

absl::Status SaveScores(const std::string& path, const CheckpointScores& scores) {
  torch::serialize::OutputArchive archive;
  archive.write("test", scores.test);
  archive.write("holdout", scores.holdout.defined() ? scores.holdout : torch::empty({0}));
  archive.write("typical", torch::tensor(scores.typical, torch::kFloat64));
  std::ostringstream bytes;
  archive.save_to(bytes);
  return WriteFileAtomically(path, bytes.str());
}

absl::StatusOr<CheckpointScores> LoadScores(const std::string& path) {
  CheckpointScores scores;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, torch::kCPU);
    torch::Tensor typical;
    archive.read("test", scores.test);
    archive.read("holdout", scores.holdout);
    archive.read("typical", typical);
    scores.typical = typical.item<double>();
    if (scores.holdout.numel() == 0) scores.holdout = torch::Tensor();
  } catch (const c10::Error& error) {
    return absl::DataLossError(absl::StrCat(
        "cannot read the checkpoint scores ", path, " (", error.what_without_backtrace(),
        "); delete its checkpoint folder to train this class again"));
  }
  return scores;
}

EpochRecord ToRecord(const EpochStats& stats) {
  EpochRecord record;
  record.set_epoch(stats.epoch);
  record.set_loss(stats.loss);
  record.set_penalty(stats.penalty);
  record.set_center_distance(stats.center_distance);
  record.set_feature_variance(stats.feature_variance);
  record.set_iterations(stats.iterations);
  record.set_seconds(stats.seconds);
  return record;
}

class ClassScorer {
 public:
  ClassScorer(const AdaptationJob& job, Backbone& backbone) : job_(job), backbone_(backbone) {}

  // Features of `images` with the weights as they are now.
  absl::StatusOr<torch::Tensor> Features(const torch::Tensor& images, const std::string& label) {
    return ExtractPooledFeatures(backbone_, images, job_.batch_size, job_.device, label);
  }

  absl::StatusOr<std::unique_ptr<Scorer>> Fit(const torch::Tensor& train_features) {
    PANDA_ASSIGN_OR_RETURN(std::unique_ptr<Scorer> scorer, job_.make_scorer());
    if (scorer->needs_score_head()) scorer->SetScoreHead(job_.adapter->score_head());
    torch::manual_seed(static_cast<uint64_t>(job_.seed));
    PANDA_RETURN_IF_ERROR(scorer->Fit(train_features.to(job_.device)));
    return scorer;
  }

  // Median score of normal training images under scorers fitted on the
  // other half of them, so that no image is scored against itself.
  absl::StatusOr<double> TypicalNormalScore(const torch::Tensor& train_features) {
    const int64_t count = train_features.size(0);
    if (count < 2) {
      return absl::InvalidArgumentError(
          "sample-wise early stopping needs at least 2 normal training images");
    }
    torch::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(job_.seed));
    const torch::Tensor order = torch::randperm(count, generator, torch::kLong);
    const torch::Tensor first = order.slice(0, 0, count / 2);
    const torch::Tensor second = order.slice(0, count / 2, count);
    std::vector<torch::Tensor> scores;
    for (const auto& [fit_rows, score_rows] : {std::pair(first, second), std::pair(second, first)}) {
      PANDA_ASSIGN_OR_RETURN(std::unique_ptr<Scorer> scorer,
                             Fit(train_features.index_select(0, fit_rows)));
      PANDA_ASSIGN_OR_RETURN(torch::Tensor part,
                             scorer->Score(train_features.index_select(0, score_rows)));
      scores.push_back(part.to(torch::kCPU, torch::kFloat64));
    }
    return torch::cat(scores).median().item<double>();
  }

  // Test and held-out scores with the weights as they are now; with
  // `typical`, also the typical normal score.
  absl::StatusOr<CheckpointScores> ScoreNow(bool typical, const std::string& when) {
    CheckpointScores result;
    PANDA_ASSIGN_OR_RETURN(torch::Tensor train,
                           Features(job_.normal_train.images, absl::StrCat(when, " train")));
    PANDA_ASSIGN_OR_RETURN(torch::Tensor test,
                           Features(job_.test_images, absl::StrCat(when, " test")));
    PANDA_ASSIGN_OR_RETURN(std::unique_ptr<Scorer> scorer, Fit(train));
    PANDA_ASSIGN_OR_RETURN(result.test, scorer->Score(test));
    result.test = result.test.to(torch::kCPU, torch::kFloat32).contiguous();
    if (job_.holdout_images.defined()) {
      PANDA_ASSIGN_OR_RETURN(torch::Tensor holdout,
                             Features(job_.holdout_images, absl::StrCat(when, " held-out")));
      PANDA_ASSIGN_OR_RETURN(result.holdout, scorer->Score(holdout));
      result.holdout = result.holdout.to(torch::kCPU, torch::kFloat32).contiguous();
    }
    if (typical) {
      PANDA_ASSIGN_OR_RETURN(result.typical, TypicalNormalScore(train));
    }
    return result;
  }

 private:
  const AdaptationJob& job_;
  Backbone& backbone_;
};

}  // namespace

absl::StatusOr<torch::Tensor> CombineSampleWise(const std::vector<torch::Tensor>& scores,
                                                const std::vector<double>& typical) {
  if (scores.empty() || scores.size() != typical.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sample-wise combination needs one typical score per checkpoint, got ", scores.size(),
        " checkpoints and ", typical.size(), " typical scores"));
  }
  torch::Tensor combined;
  for (size_t t = 0; t < scores.size(); ++t) {
    if (!(typical[t] > 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sample-wise early stopping: the typical normal score at checkpoint ", t, " is ",
          typical[t], "; it must be positive to scale by"));
    }
    torch::Tensor ratio = scores[t].to(torch::kFloat64) / typical[t];
    combined = combined.defined() ? torch::maximum(combined, ratio) : ratio;
  }
  return combined.to(torch::kFloat32);
}

absl::StatusOr<AdaptedScores> AdaptAndScore(const AdaptationJob& job) {
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<Backbone> backbone, job.make_backbone());
  ClassScorer class_scorer(job, *backbone);
  const std::vector<int> scoring_epochs = job.adapter->scoring_epochs();
  std::map<int, CheckpointScores> checkpoints;
  std::map<int, EpochRecord> records;

  AdaptationContext context;
  context.device = job.device;
  context.batch_size = job.batch_size;
  context.seed = job.seed;
  context.checkpoint_dir = job.checkpoint_dir;
  context.on_epoch_end = [&](const EpochStats& stats) -> absl::Status {
    EpochRecord record = ToRecord(stats);
    if (std::find(scoring_epochs.begin(), scoring_epochs.end(), stats.epoch) !=
        scoring_epochs.end()) {
      const std::string path =
          job.checkpoint_dir.empty() ? "" : ScoresPath(job.checkpoint_dir, stats.epoch);
      CheckpointScores scores;
      if (stats.resumed) {
        if (path.empty() || !std::filesystem::exists(path)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "resuming after epoch ", stats.epoch, " but its checkpoint scores ", path,
              " are missing; delete ", job.checkpoint_dir, " to train this class again"));
        }
        PANDA_ASSIGN_OR_RETURN(scores, LoadScores(path));
      } else {
        PANDA_ASSIGN_OR_RETURN(scores, class_scorer.ScoreNow(true, absl::StrCat("epoch ", stats.epoch)));
        if (!path.empty()) PANDA_RETURN_IF_ERROR(SaveScores(path, scores));
      }
      absl::StatusOr<double> auc = RocAuc(
          absl::MakeConstSpan(scores.test.data_ptr<float>(), scores.test.numel()), job.test_labels);
      if (auc.ok()) {
        record.set_test_roc_auc(*auc);
        PANDA_LOG(INFO) << absl::StrFormat("epoch %d: test ROC-AUC %.4f, typical normal score %.4g",
                                           stats.epoch, *auc, scores.typical);
      }
      checkpoints[stats.epoch] = std::move(scores);
    }
    records[stats.epoch] = record;
    return absl::OkStatus();
  };

  torch::manual_seed(static_cast<uint64_t>(job.seed));
  PANDA_RETURN_IF_ERROR(job.adapter->Adapt(*backbone, job.normal_train, context));

  AdaptedScores result;
  for (const auto& [epoch, record] : records) result.epochs.push_back(record);
  if (scoring_epochs.empty()) {
    PANDA_ASSIGN_OR_RETURN(CheckpointScores final_scores, class_scorer.ScoreNow(false, "adapted"));
    result.test = final_scores.test;
    result.holdout = final_scores.holdout;
    return result;
  }

  std::vector<torch::Tensor> test, holdout;
  std::vector<double> typical;
  for (int epoch : scoring_epochs) {
    auto found = checkpoints.find(epoch);
    if (found == checkpoints.end()) {
      PANDA_LOG(WARNING) << "scoring epoch " << epoch
                         << " was never reached (training stopped earlier); it is left out";
      continue;
    }
    test.push_back(found->second.test);
    holdout.push_back(found->second.holdout);
    typical.push_back(found->second.typical);
  }
  PANDA_ASSIGN_OR_RETURN(result.test, CombineSampleWise(test, typical));
  if (job.holdout_images.defined()) {
    PANDA_ASSIGN_OR_RETURN(result.holdout, CombineSampleWise(holdout, typical));
  }
  PANDA_LOG(INFO) << "sample-wise early stopping combined " << test.size() << " checkpoints";
  return result;
}

}  // namespace panda
