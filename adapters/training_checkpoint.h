// Per-epoch training checkpoints: the backbone's parameters and buffers, the
// optimizer state, the extra modules and the statistics so far, in one file
// written atomically, so a killed run resumes from its last whole epoch.
#ifndef PANDA_ADAPTERS_TRAINING_CHECKPOINT_H_
#define PANDA_ADAPTERS_TRAINING_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/adapter.h"
#include "torch/nn/module.h"
#include "torch/optim/optimizer.h"

namespace panda {

struct TrainingProgress {
  // Epochs finished.
  int epoch = 0;
  int64_t iterations = 0;
  // Statistics of epochs 0..epoch.
  std::vector<EpochStats> history;
};

// The modules and identity a checkpoint stores besides the progress.
struct TrainingModules {
  torch::nn::Module* backbone = nullptr;
  torch::optim::Optimizer* optimizer = nullptr;
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> extras;
  // Identifies the run; a checkpoint with another identity is not resumed.
  std::string identity;
  // Where the loaded tensors go: the device the modules are on.
  torch::Device device = torch::kCPU;
};

// Path of the checkpoint file in `directory`.
std::string CheckpointPath(const std::string& directory);

// Writes the checkpoint of `modules` at `progress` to `directory`, creating
// the folder if needed.
absl::Status SaveCheckpoint(const std::string& directory,
                            const TrainingModules& modules,
                            const TrainingProgress& progress);

// Loads the checkpoint in `directory` into `modules` and returns its
// progress, or NotFound when there is none. A file of another identity is
// FailedPrecondition and an unreadable one DataLoss, both naming the file;
// `modules` may then be partly overwritten.
absl::StatusOr<TrainingProgress> LoadCheckpoint(const std::string& directory,
                                                const TrainingModules& modules);

}  // namespace panda

#endif  // PANDA_ADAPTERS_TRAINING_CHECKPOINT_H_
