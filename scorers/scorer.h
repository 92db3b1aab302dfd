// Scorer plugins: anomaly scores of test features given normal training
// features.
//
// Lifecycle: create from options, optionally SetCacheLocation(), Fit() once
// on the normal training features, then Score() any number of times. Score()
// before Fit() is FailedPrecondition. Computation runs on the device of the
// tensors passed to Fit(); Score() moves its input there.
#ifndef PANDA_SCORERS_SCORER_H_
#define PANDA_SCORERS_SCORER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/registry.h"
#include "scorers/score_head.h"
#include "torch/types.h"

namespace panda {

class Scorer {
 public:
  virtual ~Scorer() = default;

  // Offers `directory` for files derived from the training features, such as
  // a search index, and `bank_id`, a file-name-safe name for the features
  // that the next Fit() receives. The runner gives one id to one training
  // set, but a cached file may be stale, so a scorer verifies what it loads.
  // Call before Fit(). Scorers that keep no files ignore it.
  virtual void SetCacheLocation(const std::string& directory,
                                const std::string& bank_id) {}

  // True for scorers that score with a head the adapter trained; the runner
  // then passes it with SetScoreHead() before Fit().
  virtual bool needs_score_head() const { return false; }
  virtual void SetScoreHead(ScoreHead head) {}

  // Takes float32 [N, D] features of normal training images.
  virtual absl::Status Fit(const torch::Tensor& train_features) = 0;

  // Returns float32 [M] scores, on the CPU, for float32 [M, D] test features;
  // higher means more anomalous.
  virtual absl::StatusOr<torch::Tensor> Score(
      const torch::Tensor& test_features) = 0;
};

Registry<Scorer>& ScorerRegistry();

}  // namespace panda

#endif  // PANDA_SCORERS_SCORER_H_
