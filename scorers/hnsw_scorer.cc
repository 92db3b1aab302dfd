// The "hnsw" scorer: PANDA's kNN anomaly score with approximate neighbours
// from an HNSW graph (hnswlib), built once per training bank and, when the
// pipeline offers a cache folder, stored there and reused.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "c10/util/Exception.h"
#include "c10/util/StringUtil.h"
#include "core/fnv1a.h"
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "google/protobuf/any.pb.h"
#include "scorers/exact_knn.h"
#include "scorers/hnsw_index.h"
#include "scorers/hnsw_index_file.h"
#include "scorers/hnsw_scorer_options.pb.h"
#include "scorers/scorer.h"

namespace panda {
namespace {

constexpr int64_t kMaxLinks = 10000;

absl::Status InStep(const absl::Status& status, absl::string_view step) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("hnsw scorer ", step, ": ",
                                                  status.message()));
}

// Runs `function`, turning LibTorch's exceptions into a Status.
template <typename Function>
auto TranslateTorchErrors(absl::string_view step, Function function)
    -> decltype(function()) {
  try {
    return function();
  } catch (const c10::Error& error) {
    return absl::InternalError(absl::StrCat(
        "hnsw scorer ", step, ": ", error.what_without_backtrace()));
  }
}

class HnswScorer : public Scorer {
 public:
  explicit HnswScorer(HnswScorerOptions options)
      : options_(std::move(options)) {}

  void SetCacheLocation(const std::string& directory,
                        const std::string& bank_id) override {
    cache_directory_ = directory;
    bank_id_ = bank_id;
  }

  absl::Status Fit(const torch::Tensor& train_features) override {
    index_.reset();
    return TranslateTorchErrors("Fit", [&] { return FitOrThrow(train_features); });
  }

  absl::StatusOr<torch::Tensor> Score(
      const torch::Tensor& test_features) override {
    if (index_ == nullptr) {
      return absl::FailedPreconditionError(
          "hnsw scorer: Score() was called before Fit()");
    }
    return TranslateTorchErrors("Score",
                                [&] { return ScoreOrThrow(test_features); });
  }

 private:
  HnswSpace space() const {
    return options_.metric() == HnswScorerOptions::COSINE
               ? HnswSpace::kInnerProduct
               : HnswSpace::kSquaredL2;
  }

  int threads() const {
    if (options_.num_threads() > 0) return options_.num_threads();
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }

  // Index file for the bank, or "" when the index is not cached. The name
  // carries the parameters, so pipelines that differ in them keep separate
  // files; the header still decides whether a file is reused.
  std::string IndexPath() const {
    if (!options_.index_cache() || cache_directory_.empty() ||
        bank_id_.empty()) {
      return "";
    }
    return absl::StrCat(
        cache_directory_, "/hnsw/", bank_id_, "-",
        options_.metric() == HnswScorerOptions::COSINE ? "cosine" : "l2",
        "-m", options_.m(), "-efc", options_.ef_construction(), ".hnsw");
  }

  // float32 [N, D] contiguous CPU rows as hnswlib searches them: `features`
  // themselves for L2, scaled to unit norm for COSINE.
  absl::StatusOr<torch::Tensor> SearchRows(const torch::Tensor& features,
                                           absl::string_view name) const {
    const torch::Tensor cpu = features.to(torch::kCPU).contiguous();
    if (options_.metric() != HnswScorerOptions::COSINE) return cpu;
    const torch::Tensor norms = (cpu * cpu).sum(1, /*keepdim=*/true).sqrt();
    const torch::Tensor zero_rows = (norms.squeeze(1) == 0).nonzero();
    if (zero_rows.size(0) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " row ", zero_rows[0][0].item<int64_t>(),
          " has zero L2 norm, so its cosine distance is undefined"));
    }
    return (cpu / norms).contiguous();
  }

  absl::Status FitOrThrow(const torch::Tensor& train_features) {
    PANDA_RETURN_IF_ERROR(
        InStep(ValidateKnnBank(train_features, options_.k()), "Fit"));
    const torch::Tensor features =
        train_features.to(torch::kCPU).contiguous();
    absl::StatusOr<torch::Tensor> rows =
        SearchRows(features, "training features");
    if (!rows.ok()) return InStep(rows.status(), "Fit");

    HnswIndexIdentity identity;
    identity.space = space();
    identity.count = features.size(0);
    identity.dim = features.size(1);
    identity.m = options_.m();
    identity.ef_construction = options_.ef_construction();
    identity.features_checksum =
        Fnv1a64(features.data_ptr<float>(),
                static_cast<size_t>(features.numel()) * sizeof(float));

    const std::string path = IndexPath();
    if (!path.empty()) {
      absl::StatusOr<std::unique_ptr<HnswIndex>> loaded =
          ReadHnswIndexFile(path, identity);
      if (loaded.ok()) {
        PANDA_LOG(INFO) << "hnsw scorer: loaded the index of "
                        << identity.count << " features from " << path;
        index_ = *std::move(loaded);
        return absl::OkStatus();
      }
      if (!absl::IsNotFound(loaded.status())) {
        PANDA_LOG(WARNING) << "hnsw scorer: " << loaded.status().message()
                           << "; building the index again";
      }
    }

    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<HnswIndex>> built = HnswIndex::Build(
        rows->data_ptr<float>(), identity.count, identity.dim, space(),
        options_.m(), options_.ef_construction(), threads());
    if (!built.ok()) return InStep(built.status(), "Fit");
    index_ = *std::move(built);
    PANDA_LOG(INFO) << absl::StrFormat(
        "hnsw scorer: built the index of %d %d-d features (m = %d, "
        "ef_construction = %d) in %.1f s (threads: %d)",
        identity.count, identity.dim, options_.m(),
        options_.ef_construction(),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count(),
        threads());

    if (!path.empty()) {
      const absl::Status written = WriteHnswIndexFile(path, identity, *index_);
      if (!written.ok()) {
        PANDA_LOG(WARNING) << "hnsw scorer: could not store the index: "
                           << written.message();
      }
    }
    return absl::OkStatus();
  }

  absl::Status ValidateQueries(const torch::Tensor& queries) const {
    if (!queries.defined()) {
      return absl::InvalidArgumentError(
          "hnsw scorer Score: test features are an undefined tensor");
    }
    if (queries.dim() != 2 || queries.scalar_type() != torch::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hnsw scorer Score: test features must be a float32 [rows, dims] "
          "tensor, but are ",
          c10::toString(queries.scalar_type()), " of shape ",
          c10::str(queries.sizes())));
    }
    if (queries.size(1) != index_->dim()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hnsw scorer Score: queries have ", queries.size(1),
          " dimensions but the bank has ", index_->dim()));
    }
    if (queries.numel() > 0 && !torch::isfinite(queries).all().item<bool>()) {
      const int64_t first_bad_row = torch::logical_not(torch::isfinite(queries))
                                        .any(/*dim=*/1)
                                        .nonzero()[0][0]
                                        .item<int64_t>();
      return absl::InvalidArgumentError(absl::StrCat(
          "hnsw scorer Score: queries contain NaN or infinite values, first "
          "in row ",
          first_bad_row));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<torch::Tensor> ScoreOrThrow(const torch::Tensor& test_features) {
    PANDA_RETURN_IF_ERROR(ValidateQueries(test_features));
    const int64_t count = test_features.size(0);
    const int64_t k = options_.k();
    if (count == 0) return torch::empty({0}, torch::kFloat32);

    absl::StatusOr<torch::Tensor> rows = SearchRows(test_features, "queries");
    if (!rows.ok()) return InStep(rows.status(), "Score");
    torch::Tensor distances = torch::empty({count, k}, torch::kFloat32);
    torch::Tensor labels = torch::empty({count, k}, torch::kInt64);
    PANDA_RETURN_IF_ERROR(InStep(
        index_->Search(rows->data_ptr<float>(), count, k, options_.ef(),
                       threads(), distances.data_ptr<float>(),
                       labels.data_ptr<int64_t>()),
        "Score"));

    // Float rounding can put either distance slightly out of its range.
    distances.clamp_min_(0);
    if (options_.metric() == HnswScorerOptions::COSINE) distances.clamp_max_(2);
    return options_.aggregation() == HnswScorerOptions::MEAN
               ? distances.mean(/*dim=*/1)
               : distances.sum(/*dim=*/1);
  }

  HnswScorerOptions options_;
  std::string cache_directory_;
  std::string bank_id_;
  // Null until Fit() succeeds.
  std::unique_ptr<HnswIndex> index_;
};

absl::Status ValidateOptions(const HnswScorerOptions& options) {
  auto invalid = [](absl::string_view field, int64_t value,
                    absl::string_view rule) {
    return absl::InvalidArgumentError(
        absl::StrCat("hnsw scorer: HnswScorerOptions.", field, " = ", value,
                     " is invalid because ", rule));
  };
  if (options.k() < 1) return invalid("k", options.k(), "k must be at least 1");
  if (options.m() < 2 || options.m() > kMaxLinks) {
    return invalid("m", options.m(),
                   absl::StrCat("m must be in [2, ", kMaxLinks, "]"));
  }
  if (options.ef_construction() < 1) {
    return invalid("ef_construction", options.ef_construction(),
                   "it must be at least 1");
  }
  if (options.ef() < 1) {
    return invalid("ef", options.ef(), "it must be at least 1");
  }
  if (options.num_threads() < 0) {
    return invalid("num_threads", options.num_threads(),
                   "it must be 0 (every core) or more");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Scorer>> CreateHnswScorer(
    const google::protobuf::Any& any_options) {
  PANDA_ASSIGN_OR_RETURN(
      HnswScorerOptions options,
      UnpackPluginOptions<HnswScorerOptions>(any_options, "hnsw"));
  PANDA_RETURN_IF_ERROR(ValidateOptions(options));
  return std::make_unique<HnswScorer>(std::move(options));
}

}  // namespace

PANDA_REGISTER_PLUGIN(ScorerRegistry, "hnsw", CreateHnswScorer);

}  // namespace panda
