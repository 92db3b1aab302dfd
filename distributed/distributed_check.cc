// One rank of distributed_test.sh: joins the job that torchrun's variables
// describe, runs a sharded computation and its single-process counterpart
// on the same data, and exits 1 with a message naming the first difference.
//
//   distributed_check knn    sharded exact kNN against SearchKnn
//   distributed_check train  data-parallel TrainCompactness against one
//                            process with the same global batch
//
// Every rank draws the same data from fixed seeds, so each can compute the
// single-process reference itself.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "adapters/compactness.h"
#include "adapters/feature_trainer.h"
#include "backbones/lenet/lenet_backbone.h"
#include "core/status_macros.h"
#include "distributed/process_group.h"
#include "distributed/sharded_knn.h"
#include "scorers/exact_knn.h"
#include "torch/torch.h"

namespace panda {
namespace {

// Distances may differ by float rounding: the matrix products of a shard
// and of the whole bank can sum in another order. 1e-5 relative to the
// distance (plus 1e-5 absolute) is about 80 float32 ulps.
constexpr double kDistanceTolerance = 1e-5;

absl::Status CompareKnn(const KnnResult& sharded, const KnnResult& single,
                        const torch::Tensor& queries, const torch::Tensor& bank,
                        const std::string& label) {
  if (sharded.distances.sizes() != single.distances.sizes()) {
    return absl::InternalError(absl::StrCat(
        label, ": sharded distances have shape ",
        c10::str(sharded.distances.sizes()), ", single-process ",
        c10::str(single.distances.sizes())));
  }
  const torch::Tensor difference =
      (sharded.distances - single.distances).abs();
  const torch::Tensor allowed =
      kDistanceTolerance * (1 + single.distances.abs());
  if ((difference > allowed).any().item<bool>()) {
    const int64_t worst = (difference - allowed).argmax().item<int64_t>();
    const int64_t k = single.distances.size(1);
    return absl::InternalError(absl::StrFormat(
        "%s: query %d, neighbour %d: sharded distance %.9g, single-process %.9g",
        label, worst / k, worst % k,
        sharded.distances.flatten()[worst].item<float>(),
        single.distances.flatten()[worst].item<float>()));
  }
  // Ties may swap indices, so each index is checked through its distance.
  const torch::Tensor rows = bank.index_select(0, sharded.indices.flatten())
                                 .view({queries.size(0), -1, bank.size(1)});
  const torch::Tensor recomputed =
      (rows - queries.unsqueeze(1)).pow(2).sum(2);
  if (!torch::allclose(recomputed, sharded.distances, 1e-4, 1e-4)) {
    return absl::InternalError(absl::StrCat(
        label, ": a returned index does not have its returned distance"));
  }
  return absl::OkStatus();
}

absl::Status CheckKnnCase(int64_t bank_rows, int64_t query_rows, int64_t dimension,
                          int64_t k, int64_t budget_bytes,
                          DistributedContext& context) {
  const std::string label =
      absl::StrCat("knn with ", bank_rows, " bank rows, ", query_rows,
                   " queries, k = ", k, ", budget ", budget_bytes, " bytes");
  torch::manual_seed(bank_rows * 7919 + query_rows);
  const torch::Tensor bank = torch::randn({bank_rows, dimension});
  // Queries differ on ranks other than 0, which must use rank 0's.
  const torch::Tensor queries = torch::randn({query_rows, dimension});
  const torch::Tensor local_queries =
      context.rank() == 0 ? queries : queries + 100;

  PANDA_ASSIGN_OR_RETURN(const KnnResult single,
                         ExactKnn(queries, bank, k, budget_bytes));
  PANDA_ASSIGN_OR_RETURN(
      const KnnBankShard shard,
      PrepareKnnBankShard(bank, KnnMetric::kSquaredL2, KnnPrecision::kFloat32,
                          budget_bytes, context));
  PANDA_ASSIGN_OR_RETURN(
      const KnnResult sharded,
      SearchShardedKnn(local_queries, shard, bank_rows, k, budget_bytes, context));
  PANDA_RETURN_IF_ERROR(CompareKnn(sharded, single, queries, bank, label));
  std::printf("rank %d: %s: equal\n", context.rank(), label.c_str());
  return absl::OkStatus();
}

absl::Status CheckKnn(DistributedContext& context) {
  // The main case, then one with fewer bank rows than k times the ranks
  // (padded candidates), and one whose small budget splits the queries
  // into many broadcast blocks.
  PANDA_RETURN_IF_ERROR(CheckKnnCase(1003, 517, 37, 2, 1 << 20, context));
  PANDA_RETURN_IF_ERROR(CheckKnnCase(5, 40, 8, 3, 1 << 20, context));
  PANDA_RETURN_IF_ERROR(CheckKnnCase(300, 250, 16, 4, 4096, context));
  return absl::OkStatus();
}

// Trains a fresh LeNet on noise images with the compactness loss and
// returns its parameters, under the process's distributed context.
absl::StatusOr<std::vector<torch::Tensor>> TrainLenet(int64_t batch_size) {
  LenetBackboneOptions backbone_options;
  backbone_options.set_seed(7);
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<LenetBackbone> backbone,
                         LenetBackbone::Create(backbone_options));
  torch::Generator generator = at::detail::createCPUGenerator(11);
  ImageSet images;
  images.images =
      torch::randint(0, 256, {70, 28, 28, 1}, generator, torch::kByte);
  images.labels.assign(70, 0);

  TrainingOptions options = PandaTrainingDefaults();
  options.set_batch_size(batch_size);
  options.set_epochs(3);
  // A larger step than PANDA's clipped one, so the weights move far enough
  // for a wrong gradient to show.
  options.set_clip_grad_norm(0);
  options.mutable_optimizer()->set_learning_rate(0.1);
  AdaptationContext context;
  context.batch_size = batch_size;
  context.seed = 3;
  PANDA_RETURN_IF_ERROR(
      TrainCompactness(*backbone, images, options, context, nullptr).status());

  std::vector<torch::Tensor> parameters;
  for (const torch::Tensor& parameter : backbone->module().parameters()) {
    parameters.push_back(parameter.detach().clone());
  }
  return parameters;
}

absl::Status CheckTraining(DistributedContext& context) {
  // 70 images in batches of 16: the last batch of 6 leaves ranks 2 and 3
  // of 4 with one image each, and a batch of 3 leaves rank 3 none.
  for (const int64_t batch_size : {16, 3}) {
    SetProcessDistributedContext(nullptr);
    PANDA_ASSIGN_OR_RETURN(const std::vector<torch::Tensor> single,
                           TrainLenet(batch_size));
    SetProcessDistributedContext(&context);
    PANDA_ASSIGN_OR_RETURN(const std::vector<torch::Tensor> parallel,
                           TrainLenet(batch_size));

    // The ranks sum their shares of each gradient, so float32 additions run
    // in another order: about 1e-7 relative per step. Up to 72 steps (3
    // epochs of 24 batches of 3) stay below 1e-5, while a missing or doubled share of a gradient
    // moves weights by far more (the learning rate is 0.1).
    double largest_change = 0;
    for (size_t i = 0; i < single.size(); ++i) {
      const double difference =
          (parallel[i] - single[i]).abs().max().item<double>();
      if (!torch::allclose(parallel[i], single[i], 1e-5, 1e-6)) {
        return absl::InternalError(absl::StrFormat(
            "train with batch %d: parameter %d differs by up to %.3g from "
            "one process's",
            batch_size, i, difference));
      }
      largest_change = std::max(largest_change, difference);
    }
    std::printf("rank %d: train with global batch %d: equal weights "
                "(largest difference %.3g)\n",
                context.rank(), static_cast<int>(batch_size), largest_change);
  }
  return absl::OkStatus();
}

absl::Status Main(const std::string& mode) {
  PANDA_ASSIGN_OR_RETURN(const DistributedEnvironment environment,
                         ReadDistributedEnvironment());
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<DistributedContext> context,
                         DistributedContext::Connect(environment));
  SetProcessDistributedContext(context.get());
  absl::Status status;
  if (mode == "knn") {
    status = CheckKnn(*context);
  } else if (mode == "train") {
    status = CheckTraining(*context);
  } else {
    status = absl::InvalidArgumentError(absl::StrCat(
        "unknown mode \"", mode, "\"; expected knn or train"));
  }
  SetProcessDistributedContext(nullptr);
  if (!status.ok()) return status;
  // Rank 0 serves the store: it leaves last.
  return context->Barrier("at exit");
}

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: distributed_check knn|train\n");
    return 2;
  }
  const absl::Status status = panda::Main(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "distributed_check: error: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
