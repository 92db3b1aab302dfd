// A scoring rule that an adapter learns with the features, such as the
// outlier-exposure classifier: it maps pooled features [N, D] on any device
// to anomaly scores [N] on the same device, higher meaning more anomalous.
#ifndef PANDA_SCORERS_SCORE_HEAD_H_
#define PANDA_SCORERS_SCORE_HEAD_H_

#include <functional>

#include "torch/types.h"

namespace panda {

using ScoreHead = std::function<torch::Tensor(const torch::Tensor& features)>;

}  // namespace panda

#endif  // PANDA_SCORERS_SCORE_HEAD_H_
