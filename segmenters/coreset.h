// Greedy k-centre coreset selection (PatchCore, Roth et al. 2022): a subset
// of a patch bank whose every patch is close to some kept patch, so that
// nearest-patch distances change little while the bank shrinks.
#ifndef PANDA_SEGMENTERS_CORESET_H_
#define PANDA_SEGMENTERS_CORESET_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "torch/types.h"

namespace panda {

// Returns int64 [count] indices into float32 [N, C] `bank`, in the order
// picked: a first row drawn with `seed`, then each time the row whose
// distance to the nearest picked row is largest (ties: the lowest index).
// Distances are Euclidean after a Gaussian random projection to
// `projection_dim` dimensions, also drawn with `seed`, which speeds up the
// selection (PatchCore projects to 128); 0, or a dimension of at least C,
// keeps the rows as they are. Runs on the bank's device, one matrix-vector
// product per pick, with a progress bar titled `label`.
//
// `count` must lie in [1, N] and `bank` be finite: InvalidArgument otherwise.
absl::StatusOr<torch::Tensor> GreedyCoresetIndices(const torch::Tensor& bank,
                                                   int64_t count,
                                                   int64_t projection_dim,
                                                   uint64_t seed,
                                                   const std::string& label);

}  // namespace panda

#endif  // PANDA_SEGMENTERS_CORESET_H_
