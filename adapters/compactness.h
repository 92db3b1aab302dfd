// PANDA's compactness objective: pull the features of normal training
// images towards a fixed centre, the mean of their pretrained features.
// Shared by the "early_stopping" and "ewc" adapters, which differ in how
// they keep the features from collapsing onto the centre.
#ifndef PANDA_ADAPTERS_COMPACTNESS_H_
#define PANDA_ADAPTERS_COMPACTNESS_H_

#include <functional>

#include "absl/status/status.h"
#include "adapters/adapter.h"
#include "adapters/training_options.pb.h"
#include "backbones/backbone.h"
#include "datasets/dataset.h"
#include "torch/types.h"

namespace panda {

// PANDA's training defaults, from the authors' code: the last two stages
// train, BatchNorm stays on its pretrained statistics, SGD with learning
// rate 1e-2, momentum 0.9 and weight decay 5e-5, gradient norm clipped to
// 1e-3, batches of 32, 15 epochs.
TrainingOptions PandaTrainingDefaults();

// Mean squared L2 distance of `features` [B, D] to `center` [D].
torch::Tensor CompactnessLoss(const torch::Tensor& features, const torch::Tensor& center);

// Builds an extra loss term once the trainable stages are chosen (EWC needs
// their pretrained values); returns an empty function for none.
using PenaltyFactory =
    std::function<absl::StatusOr<std::function<torch::Tensor()>>(Backbone& backbone)>;

// Moves a centre before training starts, such as Deep SVDD's rule that
// keeps its coordinates away from 0.
using CenterRule = std::function<torch::Tensor(const torch::Tensor& mean_feature)>;

// Fine-tunes `backbone` on `normal_train` with the compactness loss towards
// the mean pretrained feature (moved by `center_rule` when given), plus the
// penalty `make_penalty` builds when given. Returns the centre.
absl::StatusOr<torch::Tensor> TrainCompactness(Backbone& backbone,
                                               const ImageSet& normal_train,
                                               const TrainingOptions& options,
                                               const AdaptationContext& context,
                                               const PenaltyFactory& make_penalty,
                                               const CenterRule& center_rule = nullptr);

}  // namespace panda

#endif  // PANDA_ADAPTERS_COMPACTNESS_H_
