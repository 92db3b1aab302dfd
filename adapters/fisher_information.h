// The diagonal of the Fisher information of a backbone's pretraining task,
// for EWC: F_i = E_x E_{y ~ p(y|x)} [(d log p(y|x) / d theta_i)^2], with x
// over an image set standing in for the pretraining data and y drawn from
// the model's own predictive distribution (the true Fisher, not the
// empirical one, which needs the pretraining labels).
#ifndef PANDA_ADAPTERS_FISHER_INFORMATION_H_
#define PANDA_ADAPTERS_FISHER_INFORMATION_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "torch/types.h"

namespace panda {

// Fisher diagonal per trainable parameter, by parameter name.
using FisherDiagonal = std::map<std::string, torch::Tensor>;

struct FisherSettings {
  // Tap with the pretraining task's class probabilities [N, classes].
  std::string tap = "probabilities";
  torch::Device device = torch::kCPU;
  int64_t seed = 0;
};

// Estimates the Fisher diagonal of the parameters of `backbone` that
// require gradients, one image of `images` (uint8 [N, H, W, C]) at a time,
// in eval mode. Returns InvalidArgument when the tap is not a probability
// distribution or gives NaN.
absl::StatusOr<FisherDiagonal> EstimateFisher(Backbone& backbone,
                                              const torch::Tensor& images,
                                              const FisherSettings& settings);

// Writes `fisher` with `identity` (what it was computed for) to `path`
// atomically.
absl::Status SaveFisher(const std::string& path, const std::string& identity,
                        const FisherDiagonal& fisher);

// Reads a file SaveFisher wrote and checks that it was computed for an
// identity that begins with `identity` (so a shorter identity accepts a file
// whatever image set it came from) and contains a finite, non-negative tensor of the right shape for
// each parameter of `backbone` that requires gradients. NotFound when the
// file does not exist; FailedPrecondition for another identity or other
// parameters, and DataLoss for an unreadable file, naming the file.
absl::StatusOr<FisherDiagonal> LoadFisher(const std::string& path,
                                          const std::string& identity,
                                          Backbone& backbone);

}  // namespace panda

#endif  // PANDA_ADAPTERS_FISHER_INFORMATION_H_
