#include "adapters/feature_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "adapters/training_checkpoint.h"
#include "core/feature_extractor.h"
#include "core/fnv1a.h"
#include "core/logging.h"
#include "core/progress_bar.h"
#include "core/status_macros.h"
#include "distributed/process_group.h"
#include "distributed/sharding.h"
#include "torch/torch.h"

namespace panda {
namespace {

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const OptimizerOptions& options, const std::vector<torch::Tensor>& parameters) {
  if (options.kind() == OptimizerOptions::ADAM) {
    return std::make_unique<torch::optim::Adam>(
        parameters, torch::optim::AdamOptions(options.learning_rate())
                        .weight_decay(options.weight_decay()));
  }
  return std::make_unique<torch::optim::SGD>(
      parameters, torch::optim::SGDOptions(options.learning_rate())
                      .momentum(options.momentum())
                      .weight_decay(options.weight_decay()));
}

// The batch order of `epoch`: a permutation that depends on the seed and the
// epoch only, so a resumed run draws the same batches as an uninterrupted one.
torch::Tensor EpochOrder(int64_t count, int64_t seed, int epoch) {
  torch::Generator generator = at::detail::createCPUGenerator(
      static_cast<uint64_t>(seed) * 1000003u + static_cast<uint64_t>(epoch));
  return torch::randperm(count, generator, torch::kLong);
}

// Sums the gradients of `parameters` and `loss` over the ranks, in one
// all-reduce. Each rank's loss is its share of the batch's, so the sums are
// the gradients and loss of the whole batch. A parameter without a gradient
// counts as zeros. Returns the summed loss.
absl::StatusOr<double> AllReduceGradients(const std::vector<torch::Tensor>& parameters,
                                          double loss, DistributedContext& distributed,
                                          const std::string& step) {
  std::vector<torch::Tensor> pieces;
  for (const torch::Tensor& parameter : parameters) {
    const torch::Tensor& gradient = parameter.grad();
    pieces.push_back(gradient.defined() ? gradient.flatten()
                                        : torch::zeros({parameter.numel()},
                                                       parameter.options()));
  }
  pieces.push_back(torch::full({1}, loss, parameters.front().options()));
  torch::Tensor flat = torch::cat(pieces);
  PANDA_RETURN_IF_ERROR(
      distributed.AllReduceSum(flat, absl::StrCat("gradients of ", step)));

  int64_t offset = 0;
  for (const torch::Tensor& parameter : parameters) {
    const torch::Tensor summed =
        flat.slice(0, offset, offset + parameter.numel()).view_as(parameter);
    if (parameter.grad().defined()) {
      parameter.mutable_grad().copy_(summed);
    } else {
      parameter.mutable_grad() = summed.clone();
    }
    offset += parameter.numel();
  }
  return flat[offset].item<double>();
}

// Checks that every rank resumed from the same epoch and step, which fails
// when the ranks do not share the checkpoint folder that rank 0 writes.
absl::Status CheckSameProgress(const TrainingProgress& progress,
                               DistributedContext& distributed) {
  PANDA_ASSIGN_OR_RETURN(
      const torch::Tensor all,
      distributed.AllGather(torch::tensor({static_cast<int64_t>(progress.epoch),
                                           progress.iterations},
                                          torch::kLong),
                            "resumed training progress"));
  for (int rank = 1; rank < distributed.world_size(); ++rank) {
    if (!all[rank].equal(all[0])) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rank ", rank, " resumes training after epoch ",
          all[rank][0].item<int64_t>(), " but rank 0 after epoch ",
          all[0][0].item<int64_t>(),
          "; the ranks need one shared cache folder for the checkpoints that "
          "rank 0 writes, or none of them may have a checkpoint"));
    }
  }
  return absl::OkStatus();
}

std::string DescribeOptions(const TrainingOptions& options) {
  const OptimizerOptions& optimizer = options.optimizer();
  return absl::StrFormat(
      "%s lr %g%s, weight decay %g, clip %g, batch %d, %d epochs%s",
      optimizer.kind() == OptimizerOptions::ADAM ? "Adam" : "SGD",
      optimizer.learning_rate(),
      optimizer.kind() == OptimizerOptions::ADAM
          ? ""
          : absl::StrFormat(" momentum %g", optimizer.momentum()),
      optimizer.weight_decay(), options.clip_grad_norm(), options.batch_size(),
      options.epochs(),
      options.max_iterations() > 0
          ? absl::StrCat(", at most ", options.max_iterations(), " steps")
          : "");
}

}  // namespace

TrainingOptions WithDefaults(const TrainingOptions& options,
                             const TrainingOptions& defaults) {
  TrainingOptions resolved = defaults;
  resolved.MergeFrom(options);
  return resolved;
}

absl::Status ValidateTrainingOptions(const TrainingOptions& options,
                                     const std::string& adapter) {
  const OptimizerOptions& optimizer = options.optimizer();
  auto invalid = [&](const std::string& field, double value, const std::string& rule) {
    return absl::InvalidArgumentError(
        absl::StrCat(adapter, ": training.", field, " is ", value, "; it must be ", rule));
  };
  if (!(optimizer.learning_rate() > 0) || !std::isfinite(optimizer.learning_rate())) {
    return invalid("optimizer.learning_rate", optimizer.learning_rate(), "positive");
  }
  if (!(optimizer.momentum() >= 0 && optimizer.momentum() < 1)) {
    return invalid("optimizer.momentum", optimizer.momentum(), "in [0, 1)");
  }
  if (!(optimizer.weight_decay() >= 0) || !std::isfinite(optimizer.weight_decay())) {
    return invalid("optimizer.weight_decay", optimizer.weight_decay(), "0 or positive");
  }
  if (!(options.clip_grad_norm() >= 0) || !std::isfinite(options.clip_grad_norm())) {
    return invalid("clip_grad_norm", options.clip_grad_norm(), "0 (no clipping) or positive");
  }
  if (options.batch_size() <= 0) return invalid("batch_size", options.batch_size(), "positive");
  if (options.epochs() < 0) return invalid("epochs", options.epochs(), "0 or positive");
  if (options.max_iterations() < 0) {
    return invalid("max_iterations", options.max_iterations(), "0 (no limit) or positive");
  }
  if (!(options.collapse_warning_fraction() >= 0 && options.collapse_warning_fraction() <= 1)) {
    return invalid("collapse_warning_fraction", options.collapse_warning_fraction(),
                   "in [0, 1]");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SelectTrainableStages(Backbone& backbone,
                                                  const TrainingOptions& options) {
  const std::vector<std::string> stages = backbone.stage_names();
  std::string stage = options.trainable_from();
  if (stage.empty()) {
    if (stages.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the backbone (", backbone.Fingerprint(),
          ") names no stages, so training.trainable_from cannot default to its "
          "last two stages"));
    }
    stage = stages[stages.size() >= 2 ? stages.size() - 2 : 0];
  }
  absl::Status trainable = backbone.SetTrainableFrom(stage);
  if (!trainable.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("training.trainable_from: ", trainable.message()));
  }
  PANDA_RETURN_IF_ERROR(backbone.SetBatchNormFrozen(options.freeze_batchnorm()));
  return stage;
}

absl::StatusOr<torch::Tensor> InitialFeatures(Backbone& backbone,
                                              const torch::Tensor& images,
                                              bool batchnorm_trains,
                                              const AdaptationContext& context) {
  if (!batchnorm_trains) {
    PANDA_ASSIGN_OR_RETURN(
        torch::Tensor features,
        ExtractPooledFeatures(backbone, images, context.batch_size, context.device,
                              "features before training"));
    return features.to(context.device);
  }
  torch::NoGradGuard no_grad;
  backbone.module().to(context.device);
  backbone.module().train();
  std::vector<torch::Tensor> batches;
  for (int64_t begin = 0; begin < images.size(0); begin += context.batch_size) {
    const torch::Tensor batch =
        images.slice(0, begin, begin + context.batch_size).to(context.device);
    PANDA_ASSIGN_OR_RETURN(TapMap outputs,
                           backbone.Forward(backbone.Preprocess(batch), {"pooled"}));
    batches.push_back(outputs.at("pooled"));
  }
  return torch::cat(batches);
}

EpochStats FeatureStats(const torch::Tensor& features, const torch::Tensor& center) {
  EpochStats stats;
  torch::Tensor values = features.to(torch::kFloat64);
  stats.center_distance =
      (values - center.to(values.device(), torch::kFloat64)).pow(2).sum(1).mean().item<double>();
  stats.feature_variance =
      values.size(0) > 1 ? values.var(/*dim=*/0, /*unbiased=*/true).mean().item<double>() : 0;
  return stats;
}

absl::Status TrainBackbone(Backbone& backbone, const TrainingData& data,
                           const torch::Tensor& center,
                           const TrainingOptions& options,
                           const TrainingObjective& objective,
                           const AdaptationContext& context,
                           const EpochStats& initial) {
  const int64_t count = data.images.size(0);
  if (count == 0) return absl::InvalidArgumentError("no training images");
  if (options.batch_size() <= 0 || options.epochs() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training.batch_size must be positive and training.epochs not negative, got ",
        options.batch_size(), " and ", options.epochs()));
  }

  DistributedContext& distributed = ProcessDistributedContext();
  backbone.module().to(context.device);
  for (const auto& [name, module] : objective.extra_modules) module->to(context.device);
  std::vector<torch::Tensor> parameters;
  for (const torch::Tensor& parameter : backbone.module().parameters()) {
    if (parameter.requires_grad()) parameters.push_back(parameter);
  }
  for (const auto& [name, module] : objective.extra_modules) {
    for (const torch::Tensor& parameter : module->parameters()) parameters.push_back(parameter);
  }
  if (parameters.empty()) {
    return absl::InvalidArgumentError("no trainable parameters: check training.trainable_from");
  }
  std::unique_ptr<torch::optim::Optimizer> optimizer =
      MakeOptimizer(options.optimizer(), parameters);

  TrainingModules modules;
  modules.backbone = &backbone.module();
  modules.optimizer = optimizer.get();
  modules.extras = objective.extra_modules;
  // The identity covers the training images' bytes too, so a checkpoint
  // copied into another class's folder, or left from other data, is
  // rejected.
  const torch::Tensor image_bytes = data.images.contiguous();
  const torch::Tensor target_bytes = data.targets.contiguous();
  modules.identity = absl::StrCat(
      backbone.Fingerprint(), "|", options.SerializeAsString(), "|seed ", context.seed,
      "|images ", count, "|data ",
      absl::Hex(Fnv1a64(image_bytes.data_ptr(), image_bytes.nbytes()), absl::kZeroPad16),
      absl::Hex(Fnv1a64(target_bytes.data_ptr(), target_bytes.nbytes()), absl::kZeroPad16));
  modules.device = context.device;

  TrainingProgress progress;
  progress.history.push_back(initial);
  if (!context.checkpoint_dir.empty()) {
    absl::StatusOr<TrainingProgress> resumed = LoadCheckpoint(context.checkpoint_dir, modules);
    if (resumed.ok()) {
      progress = *std::move(resumed);
      PANDA_LOG(INFO) << "resuming from " << CheckpointPath(context.checkpoint_dir)
                      << " after epoch " << progress.epoch;
    } else if (!absl::IsNotFound(resumed.status())) {
      return resumed.status();
    }
  }
  if (distributed.is_distributed()) {
    PANDA_RETURN_IF_ERROR(CheckSameProgress(progress, distributed));
  }
  PANDA_LOG(INFO) << "training: " << DescribeOptions(options) << ", " << count
                  << " images, " << parameters.size() << " parameter tensors"
                  << (distributed.is_distributed()
                          ? absl::StrCat(", data parallel over ",
                                         distributed.world_size(), " ranks")
                          : "");
  if (distributed.is_distributed() && !options.freeze_batchnorm()) {
    PANDA_LOG(WARNING)
        << "training.freeze_batchnorm is false: each of the "
        << distributed.world_size()
        << " ranks normalises its share of a batch with that share's "
           "statistics, so results differ from one process's";
  }
  // Earlier epochs' statistics reach the caller again after a resume, marked
  // as such, so its records are whole.
  for (size_t i = 0; i < progress.history.size(); ++i) {
    EpochStats replay = progress.history[i];
    replay.resumed = i > 0 || progress.epoch > 0;
    if (context.on_epoch_end) PANDA_RETURN_IF_ERROR(context.on_epoch_end(replay));
  }

  const std::vector<std::string> taps = {"pooled"};
  bool warned_collapse = false;
  const bool limited = options.max_iterations() > 0;
  while (progress.epoch < options.epochs() &&
         !(limited && progress.iterations >= options.max_iterations())) {
    const int epoch = progress.epoch + 1;
    const auto start = std::chrono::steady_clock::now();
    backbone.module().train();
    for (const auto& [name, module] : objective.extra_modules) module->train();

    const torch::Tensor order = EpochOrder(count, context.seed, epoch);
    double loss_sum = 0, penalty_sum = 0;
    int64_t batches = 0;
    std::vector<torch::Tensor> normal_features;
    ProgressBar progress_bar(absl::StrCat("epoch ", epoch, "/", options.epochs()), count,
                             "images");
    for (int64_t begin = 0; begin < count; begin += options.batch_size()) {
      if (limited && progress.iterations >= options.max_iterations()) break;
      const int64_t end = std::min(count, begin + options.batch_size());
      // In a multi-process run each rank takes its share of the batch.
      const RowRange share =
          ShardRows(end - begin, distributed.rank(), distributed.world_size());
      const torch::Tensor rows =
          order.slice(0, begin + share.begin, begin + share.end);
      const torch::Tensor images = data.images.index_select(0, rows).to(context.device);
      const torch::Tensor targets = data.targets.index_select(0, rows).to(context.device);

      optimizer->zero_grad();
      torch::Tensor features, penalty;
      double loss_value = 0;
      if (share.size() > 0) {
        PANDA_ASSIGN_OR_RETURN(TapMap outputs,
                               backbone.Forward(backbone.Preprocess(images), taps));
        features = outputs.at("pooled");
        // The batch loss is a mean over the batch's images, so this rank's
        // mean counts with its share of the batch.
        torch::Tensor loss = objective.batch_loss(features, targets) *
                             (static_cast<double>(share.size()) / (end - begin));
        if (objective.penalty) {
          penalty = objective.penalty();
          loss = loss + penalty / distributed.world_size();
        }
        loss_value = loss.item<double>();
        loss.backward();
      } else if (objective.penalty) {
        // A rank without images still adds its part of the penalty.
        penalty = objective.penalty();
        torch::Tensor loss = penalty / distributed.world_size();
        loss_value = loss.item<double>();
        loss.backward();
      }
      if (distributed.is_distributed()) {
        PANDA_ASSIGN_OR_RETURN(
            loss_value,
            AllReduceGradients(parameters, loss_value, distributed,
                               absl::StrCat("epoch ", epoch, ", step ",
                                            progress.iterations + 1)));
      }
      if (!std::isfinite(loss_value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the training loss became ", loss_value, " at epoch ", epoch, ", step ",
            progress.iterations + 1,
            "; lower training.optimizer.learning_rate, set training.clip_grad_norm, or "
            "lower the adapter's penalty weight (ewc.lambda)"));
      }
      if (options.clip_grad_norm() > 0) {
        torch::nn::utils::clip_grad_norm_(parameters, options.clip_grad_norm());
      }
      optimizer->step();

      ++progress.iterations;
      ++batches;
      loss_sum += loss_value;
      if (penalty.defined()) penalty_sum += penalty.item<double>();
      if (features.defined()) {
        normal_features.push_back(
            features.detach().index({targets == 0}).to(torch::kCPU, torch::kFloat64));
      }
      progress_bar.Advance(end - begin);
    }
    progress_bar.Finish();
    torch::Tensor epoch_features =
        normal_features.empty()
            ? torch::empty({0, center.size(0)}, torch::kFloat64)
            : torch::cat(normal_features);
    if (distributed.is_distributed()) {
      // The statistics cover every rank's images, as in one process.
      PANDA_ASSIGN_OR_RETURN(
          epoch_features,
          distributed.AllGatherRows(epoch_features,
                                    absl::StrCat("features of epoch ", epoch)));
    }

    // NOTE: the statistics come from features computed before each step, so
    // they lag the epoch's final weights. Measuring those would cost another
    // pass over the data.
    EpochStats stats = FeatureStats(epoch_features, center.to(torch::kCPU));
    stats.epoch = epoch;
    stats.loss = loss_sum / std::max<int64_t>(1, batches);
    stats.penalty = penalty_sum / std::max<int64_t>(1, batches);
    stats.iterations = progress.iterations;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress.epoch = epoch;
    progress.history.push_back(stats);
    PANDA_LOG(INFO) << absl::StrFormat(
        "epoch %d: loss %.6g (penalty %.3g), distance to centre %.6g, feature variance "
        "%.6g (%.1f%% of pretrained), %.1f s",
        epoch, stats.loss, stats.penalty, stats.center_distance, stats.feature_variance,
        initial.feature_variance > 0 ? 100 * stats.feature_variance / initial.feature_variance : 0,
        stats.seconds);
    const bool collapsing =
        initial.feature_variance > 0 &&
        stats.feature_variance < options.collapse_warning_fraction() * initial.feature_variance;
    if (collapsing && !warned_collapse) {
      warned_collapse = true;
      PANDA_LOG(WARNING) << absl::StrFormat(
          "epoch %d: feature variance fell to %.3g%% of its pretrained value: the "
          "features are collapsing; stop earlier, add EWC or lower the learning "
          "rate (warned once per class)",
          epoch,
          100 * stats.feature_variance / initial.feature_variance);
    }

    // The caller's work for this epoch (checkpoint scores) finishes before the
    // checkpoint that marks the epoch done, so a resume never skips it.
    if (context.on_epoch_end) PANDA_RETURN_IF_ERROR(context.on_epoch_end(stats));
    // Every rank has the same weights, so rank 0 alone writes them.
    if (!context.checkpoint_dir.empty() && distributed.rank() == 0) {
      PANDA_RETURN_IF_ERROR(SaveCheckpoint(context.checkpoint_dir, modules, progress));
    }
  }

  backbone.module().eval();
  for (const auto& [name, module] : objective.extra_modules) module->eval();
  return absl::OkStatus();
}

}  // namespace panda
