#include "adapters/training_checkpoint.h"

#include <filesystem>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/atomic_file.h"
#include "torch/serialize.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr char kIdentityKey[] = "panda/identity";
constexpr char kEpochKey[] = "panda/epoch";
constexpr char kIterationsKey[] = "panda/iterations";
constexpr char kHistoryKey[] = "panda/history";
// Columns of the history tensor, one row per epoch.
constexpr int kHistoryColumns = 7;

torch::Tensor HistoryToTensor(const std::vector<EpochStats>& history) {
  torch::Tensor table =
      torch::empty({static_cast<int64_t>(history.size()), kHistoryColumns},
                   torch::kFloat64);
  auto rows = table.accessor<double, 2>();
  for (size_t i = 0; i < history.size(); ++i) {
    const EpochStats& stats = history[i];
    const double values[kHistoryColumns] = {
        static_cast<double>(stats.epoch), stats.loss, stats.penalty,
        stats.center_distance, stats.feature_variance,
        static_cast<double>(stats.iterations), stats.seconds};
    for (int j = 0; j < kHistoryColumns; ++j) rows[i][j] = values[j];
  }
  return table;
}

std::vector<EpochStats> HistoryFromTensor(const torch::Tensor& table) {
  std::vector<EpochStats> history;
  auto rows = table.accessor<double, 2>();
  for (int64_t i = 0; i < table.size(0); ++i) {
    EpochStats stats;
    stats.epoch = static_cast<int>(rows[i][0]);
    stats.loss = rows[i][1];
    stats.penalty = rows[i][2];
    stats.center_distance = rows[i][3];
    stats.feature_variance = rows[i][4];
    stats.iterations = static_cast<int64_t>(rows[i][5]);
    stats.seconds = rows[i][6];
    history.push_back(stats);
  }
  return history;
}

}  // namespace

std::string CheckpointPath(const std::string& directory) {
  return (std::filesystem::path(directory) / "training.ckpt").string();
}

absl::Status SaveCheckpoint(const std::string& directory,
                            const TrainingModules& modules,
                            const TrainingProgress& progress) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create the checkpoint folder ", directory, ": ", error.message()));
  }
  torch::serialize::OutputArchive archive;
  archive.write(kIdentityKey, c10::IValue(modules.identity));
  archive.write(kEpochKey, c10::IValue(static_cast<int64_t>(progress.epoch)));
  archive.write(kIterationsKey, c10::IValue(progress.iterations));
  archive.write(kHistoryKey, HistoryToTensor(progress.history));

  torch::serialize::OutputArchive backbone;
  modules.backbone->save(backbone);
  archive.write("backbone", backbone);
  torch::serialize::OutputArchive optimizer;
  modules.optimizer->save(optimizer);
  archive.write("optimizer", optimizer);
  for (const auto& [name, module] : modules.extras) {
    torch::serialize::OutputArchive extra;
    module->save(extra);
    archive.write(absl::StrCat("extra/", name), extra);
  }

  std::ostringstream bytes;
  archive.save_to(bytes);
  return WriteFileAtomically(CheckpointPath(directory), bytes.str());
}

absl::StatusOr<TrainingProgress> LoadCheckpoint(const std::string& directory,
                                                const TrainingModules& modules) {
  const std::string path = CheckpointPath(directory);
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("no checkpoint at ", path));
  }
  TrainingProgress progress;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, modules.device);
    c10::IValue identity;
    archive.read(kIdentityKey, identity);
    if (!identity.isString() || identity.toStringRef() != modules.identity) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " is a checkpoint of another training run; delete it to start over"));
    }
    c10::IValue epoch, iterations;
    archive.read(kEpochKey, epoch);
    archive.read(kIterationsKey, iterations);
    torch::Tensor history;
    archive.read(kHistoryKey, history);
    progress.epoch = static_cast<int>(epoch.toInt());
    progress.iterations = iterations.toInt();
    progress.history = HistoryFromTensor(history.to(torch::kFloat64));

    torch::serialize::InputArchive backbone;
    archive.read("backbone", backbone);
    modules.backbone->load(backbone);
    torch::serialize::InputArchive optimizer;
    archive.read("optimizer", optimizer);
    modules.optimizer->load(optimizer);
    for (const auto& [name, module] : modules.extras) {
      torch::serialize::InputArchive extra;
      archive.read(absl::StrCat("extra/", name), extra);
      module->load(extra);
    }
  } catch (const c10::Error& error) {
    return absl::DataLossError(absl::StrCat("cannot read checkpoint ", path, ": ",
                                            error.what_without_backtrace()));
  }
  if (progress.history.size() != static_cast<size_t>(progress.epoch) + 1) {
    return absl::DataLossError(absl::StrCat(
        path, ": holds ", progress.history.size(), " epoch records for epoch ",
        progress.epoch));
  }
  return progress;
}

}  // namespace panda
