#include "scorers/exact_knn.h"

#include <algorithm>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "c10/core/GradMode.h"
#include "c10/util/Exception.h"
#include "c10/util/StringUtil.h"
#include "core/status_macros.h"

namespace panda {
namespace {

constexpr int64_t kDistanceBytes = sizeof(float);

// Rows of queries and of the bank that one distance block covers.
struct ChunkShape {
  int64_t query_rows;
  int64_t bank_rows;
};

absl::Status ValidateFeatureMatrix(const torch::Tensor& features,
                                   const std::string& name) {
  if (!features.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is an undefined tensor"));
  }
  if (features.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be a 2-D [rows, dims] tensor, but has shape ",
                     c10::str(features.sizes())));
  }
  if (features.scalar_type() != torch::kFloat32) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be float32, but is ",
                     c10::toString(features.scalar_type())));
  }
  if (features.numel() > 0 && !torch::isfinite(features).all().item<bool>()) {
    const int64_t first_bad_row =
        torch::logical_not(torch::isfinite(features))
            .any(/*dim=*/1)
            .nonzero()[0][0]
            .item<int64_t>();
    return absl::InvalidArgumentError(
        absl::StrCat(name, " contains NaN or infinite values, first in row ",
                     first_bad_row));
  }
  return absl::OkStatus();
}

// Prefers whole bank rows, so each chunk of queries is merged once per bank
// chunk and the bank is split only when one query's row of N distances
// exceeds the budget.
ChunkShape ChooseChunkShape(int64_t num_queries, int64_t bank_size,
                            int64_t memory_budget_bytes) {
  const int64_t block_elements = memory_budget_bytes / kDistanceBytes;
  const int64_t bank_rows = std::min(bank_size, block_elements);
  const int64_t query_rows =
      std::clamp<int64_t>(block_elements / bank_rows, 1, num_queries);
  return {query_rows, bank_rows};
}

// Computes the k nearest bank rows of `queries` (float32 [m, D]), given
// `bank_norms`, the float32 [N] squared norms of the bank's rows.
KnnResult SearchQueryChunk(const torch::Tensor& queries,
                           const torch::Tensor& bank,
                           const torch::Tensor& bank_norms, int64_t k,
                           int64_t bank_rows) {
  const int64_t bank_size = bank.size(0);
  const torch::Tensor query_norms = (queries * queries).sum(1, true);

  torch::Tensor best_distances;
  torch::Tensor best_indices;
  for (int64_t start = 0; start < bank_size; start += bank_rows) {
    const int64_t rows = std::min(bank_rows, bank_size - start);

    // |b|^2 - 2 q.b in one matrix product, then + |q|^2 in place, so the
    // [m, rows] block is the only full-size temporary.
    torch::Tensor block =
        torch::addmm(bank_norms.narrow(0, start, rows).unsqueeze(0), queries,
                     bank.narrow(0, start, rows).t(), /*beta=*/1,
                     /*alpha=*/-2);
    block.add_(query_norms).clamp_min_(0);

    torch::Tensor distances;
    torch::Tensor indices;
    std::tie(distances, indices) =
        block.topk(std::min(k, rows), /*dim=*/1, /*largest=*/false,
                   /*sorted=*/true);
    indices.add_(start);

    if (!best_distances.defined()) {
      best_distances = distances;
      best_indices = indices;
      continue;
    }
    const torch::Tensor candidates = torch::cat({best_distances, distances}, 1);
    const torch::Tensor candidate_indices =
        torch::cat({best_indices, indices}, 1);
    torch::Tensor positions;
    std::tie(best_distances, positions) =
        candidates.topk(std::min(k, candidates.size(1)), /*dim=*/1,
                        /*largest=*/false, /*sorted=*/true);
    best_indices = candidate_indices.gather(1, positions);
  }
  return {best_distances, best_indices};
}

KnnResult Search(const torch::Tensor& queries, const torch::Tensor& bank,
                 int64_t k, ChunkShape chunk) {
  const int64_t num_queries = queries.size(0);
  const torch::Tensor bank_norms = (bank * bank).sum(1);

  KnnResult result{torch::empty({num_queries, k}, queries.options()),
                   torch::empty({num_queries, k},
                                queries.options().dtype(torch::kInt64))};
  for (int64_t start = 0; start < num_queries; start += chunk.query_rows) {
    const int64_t rows = std::min(chunk.query_rows, num_queries - start);
    const KnnResult nearest =
        SearchQueryChunk(queries.narrow(0, start, rows), bank, bank_norms, k,
                         chunk.bank_rows);
    result.distances.narrow(0, start, rows).copy_(nearest.distances);
    result.indices.narrow(0, start, rows).copy_(nearest.indices);
  }
  return result;
}

// ExactKnn without the translation of LibTorch exceptions.
absl::StatusOr<KnnResult> ExactKnnOrThrow(const torch::Tensor& queries,
                                          const torch::Tensor& bank, int64_t k,
                                          int64_t memory_budget_bytes) {
  PANDA_RETURN_IF_ERROR(ValidateKnnBank(bank, k));
  PANDA_RETURN_IF_ERROR(ValidateFeatureMatrix(queries, "queries"));
  if (queries.size(1) != bank.size(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("queries have ", queries.size(1),
                     " dimensions but the bank has ", bank.size(1)));
  }
  if (queries.device() != bank.device()) {
    return absl::InvalidArgumentError(
        absl::StrCat("queries are on ", queries.device().str(),
                     " but the bank is on ", bank.device().str()));
  }
  if (memory_budget_bytes < kDistanceBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memory_budget_bytes = ", memory_budget_bytes, " is below the ",
        kDistanceBytes, " bytes of one distance"));
  }

  const int64_t num_queries = queries.size(0);
  if (num_queries == 0) {
    return KnnResult{
        torch::empty({0, k}, queries.options()),
        torch::empty({0, k}, queries.options().dtype(torch::kInt64))};
  }
  return Search(queries, bank, k,
                ChooseChunkShape(num_queries, bank.size(0),
                                 memory_budget_bytes));
}

}  // namespace

absl::Status ValidateKnnBank(const torch::Tensor& bank, int64_t k) {
  PANDA_RETURN_IF_ERROR(ValidateFeatureMatrix(bank, "bank"));
  if (bank.size(0) == 0) {
    return absl::InvalidArgumentError(
        "bank is empty, but nearest-neighbour search needs at least one "
        "training feature");
  }
  if (bank.size(1) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bank has shape ", c10::str(bank.sizes()),
                     ", but features need at least one dimension"));
  }
  if (k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("k = ", k, " is invalid because k must be at least 1"));
  }
  if (k > bank.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k = ", k, " exceeds the ", bank.size(0), " training features"));
  }
  return absl::OkStatus();
}

absl::StatusOr<KnnResult> ExactKnn(const torch::Tensor& queries,
                                   const torch::Tensor& bank, int64_t k,
                                   int64_t memory_budget_bytes) {
  // Distances are never differentiated, so autograd need not record them.
  c10::NoGradGuard no_grad;
  // LibTorch reports failures, such as a full device memory, by throwing.
  try {
    return ExactKnnOrThrow(queries, bank, k, memory_budget_bytes);
  } catch (const c10::OutOfMemoryError& error) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "nearest-neighbour search ran out of memory (a lower memory budget "
        "may help): ",
        error.what_without_backtrace()));
  } catch (const c10::Error& error) {
    return absl::InternalError(
        absl::StrCat("nearest-neighbour search failed: ",
                     error.what_without_backtrace()));
  }
}

}  // namespace panda
