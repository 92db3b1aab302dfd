#include "scorers/exact_knn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "ATen/Parallel.h"
#include "absl/strings/str_cat.h"
#include "c10/core/GradMode.h"
#include "c10/util/Exception.h"
#include "c10/util/StringUtil.h"
#include "core/status_macros.h"
#include "scorers/feature_matrix.h"
#include "scorers/smallest_k.h"

namespace panda {
namespace {

constexpr int64_t kFloatBytes = sizeof(float);
constexpr int64_t kHalfBytes = 2;

// Largest k for which the CPU path uses MergeSmallestK; its insertion costs
// O(k) per new neighbour, so a large k goes to torch::topk instead.
constexpr int64_t kMaxMergeK = 64;

// Query rows per block when the budget allows. The bank is streamed once per
// block of queries, so taller blocks read it less often; 1024 rows keep the
// matrix product efficient while the bank is cut into many blocks.
constexpr int64_t kPreferredQueryRows = 1024;

// Bound on the temporaries of ValidateKnnBank(), which takes no budget.
constexpr int64_t kValidationBudgetBytes = int64_t{64} << 20;

// Rows of queries and of the bank that one block of products covers.
struct ChunkShape {
  int64_t query_rows;
  int64_t bank_rows;
};

const char* PrecisionName(KnnPrecision precision) {
  switch (precision) {
    case KnnPrecision::kFloat32:
      return "float32";
    case KnnPrecision::kFloat16:
      return "float16";
    case KnnPrecision::kBFloat16:
      return "bfloat16";
  }
  return "unknown";
}

torch::ScalarType ProductType(KnnPrecision precision) {
  switch (precision) {
    case KnnPrecision::kFloat16:
      return torch::kFloat16;
    case KnnPrecision::kBFloat16:
      return torch::kBFloat16;
    case KnnPrecision::kFloat32:
      break;
  }
  return torch::kFloat32;
}

// Bytes of one product in a block: a float32 product, plus the float16 or
// bfloat16 product it is converted from.
int64_t BytesPerProduct(KnnPrecision precision) {
  return precision == KnnPrecision::kFloat32 ? kFloatBytes
                                             : kFloatBytes + kHalfBytes;
}

// Takes whole bank rows for up to kPreferredQueryRows queries and splits the
// bank when a block that tall exceeds the budget.
ChunkShape ChooseChunkShape(int64_t num_queries, int64_t bank_size,
                            int64_t memory_budget_bytes,
                            int64_t bytes_per_product) {
  const int64_t block_elements =
      std::max<int64_t>(1, memory_budget_bytes / bytes_per_product);
  const int64_t query_rows =
      std::min({num_queries, kPreferredQueryRows, block_elements});
  const int64_t bank_rows = std::min(bank_size, block_elements / query_rows);
  return {query_rows, bank_rows};
}

// A chunk of queries in the form the products need, and the term that turns
// a candidate value into a distance.
struct PreparedQueries {
  // [m, D] in the product dtype: unit rows for cosine, divided by `scale`
  // for float16/bfloat16.
  torch::Tensor rows;
  // float32 [m, 1]: |q|^2 for squared L2, 1 for cosine.
  torch::Tensor distance_offset;
  double scale = 1.0;
};

absl::StatusOr<PreparedQueries> PrepareQueries(const torch::Tensor& queries,
                                               const KnnBank& bank,
                                               int64_t row_offset) {
  PreparedQueries prepared;
  const torch::Tensor contiguous = queries.contiguous();
  const torch::Tensor squared_norms =
      ComputeSquaredNorms(contiguous, std::numeric_limits<int64_t>::max())
          .unsqueeze(1);
  torch::Tensor rows = contiguous;
  double max_norm = 1.0;
  if (bank.metric == KnnMetric::kCosine) {
    PANDA_RETURN_IF_ERROR(
        RejectZeroRows(squared_norms.squeeze(1), "queries", row_offset));
    rows = UnitRows(contiguous, squared_norms.squeeze(1));
    prepared.distance_offset = torch::ones_like(squared_norms);
  } else {
    prepared.distance_offset = squared_norms;
    if (bank.precision != KnnPrecision::kFloat32) {
      max_norm = std::sqrt(squared_norms.max().item<double>());
    }
  }
  if (bank.precision != KnnPrecision::kFloat32) {
    prepared.scale = std::max(max_norm, std::numeric_limits<double>::min());
    rows = (rows / prepared.scale).to(ProductType(bank.precision));
  }
  prepared.rows = rows.contiguous();
  return prepared;
}

// The k smallest candidate values of each query and their bank rows.
// Candidates are distances minus the query's distance_offset:
// |b|^2 - 2 q.b for squared L2 and -q.b for cosine.
struct Candidates {
  torch::Tensor values;   // float32 [m, k], ascending
  torch::Tensor indices;  // int64 [m, k]
};

// Scales that turn a product of prepared rows into a candidate value:
// candidate = bias - factor * product.
float CandidateFactor(const KnnBank& bank, const PreparedQueries& queries) {
  const double dot_factor = bank.metric == KnnMetric::kCosine ? 1.0 : 2.0;
  return static_cast<float>(dot_factor * queries.scale * bank.row_scale);
}

// CPU, float32, k <= kMaxMergeK: matrix products into one reused buffer,
// each row merged into the running k smallest in a single pass.
// `buffer` is float32 with room for one block.
Candidates SearchChunkOnCpu(const PreparedQueries& queries,
                            const KnnBank& bank, int64_t k, int64_t bank_rows,
                            torch::Tensor& buffer) {
  const int64_t m = queries.rows.size(0);
  const int64_t bank_size = bank.rows.size(0);
  const float factor = CandidateFactor(bank, queries);
  Candidates best{
      torch::full({m, k}, std::numeric_limits<float>::infinity(),
                  torch::kFloat32),
      torch::full({m, k}, -1, torch::kInt64)};
  float* best_values = best.values.data_ptr<float>();
  int64_t* best_indices = best.indices.data_ptr<int64_t>();

  for (int64_t start = 0; start < bank_size; start += bank_rows) {
    const int64_t cols = std::min(bank_rows, bank_size - start);
    torch::Tensor products = buffer.narrow(0, 0, m * cols).view({m, cols});
    torch::mm_out(products, queries.rows, bank.rows.narrow(0, start, cols).t());

    const float* product_data = products.data_ptr<float>();
    const float* bias = bank.squared_norms.defined()
                            ? bank.squared_norms.data_ptr<float>() + start
                            : nullptr;
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / cols);
    at::parallel_for(0, m, grain, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        MergeSmallestK(product_data + row * cols, bias, factor, cols, start, k,
                       best_values + row * k, best_indices + row * k);
      }
    });
  }
  return best;
}

// Any device, precision and k: LibTorch operations with torch::topk.
Candidates SearchChunkWithTopk(const PreparedQueries& queries,
                               const KnnBank& bank, int64_t k,
                               int64_t bank_rows) {
  const int64_t bank_size = bank.rows.size(0);
  const float factor = CandidateFactor(bank, queries);
  Candidates best;
  for (int64_t start = 0; start < bank_size; start += bank_rows) {
    const int64_t rows = std::min(bank_rows, bank_size - start);
    // In place after the product, so the block is the only float32
    // temporary of its size.
    torch::Tensor block =
        torch::mm(queries.rows, bank.rows.narrow(0, start, rows).t())
            .to(torch::kFloat32);
    block.mul_(-factor);
    if (bank.squared_norms.defined()) {
      block.add_(bank.squared_norms.narrow(0, start, rows).unsqueeze(0));
    }

    torch::Tensor values;
    torch::Tensor indices;
    std::tie(values, indices) =
        block.topk(std::min(k, rows), /*dim=*/1, /*largest=*/false,
                   /*sorted=*/true);
    indices.add_(start);
    if (!best.values.defined()) {
      best = {values, indices};
      continue;
    }
    const torch::Tensor merged_values = torch::cat({best.values, values}, 1);
    const torch::Tensor merged_indices = torch::cat({best.indices, indices}, 1);
    torch::Tensor positions;
    std::tie(best.values, positions) =
        merged_values.topk(std::min(k, merged_values.size(1)), /*dim=*/1,
                           /*largest=*/false, /*sorted=*/true);
    best.indices = merged_indices.gather(1, positions);
  }
  return best;
}

absl::StatusOr<KnnResult> SearchChunks(const torch::Tensor& queries,
                                       const KnnBank& bank, int64_t k,
                                       ChunkShape chunk) {
  const int64_t num_queries = queries.size(0);
  const bool merge_on_cpu = bank.rows.is_cpu() &&
                            bank.precision == KnnPrecision::kFloat32 &&
                            k <= kMaxMergeK;
  KnnResult result{torch::empty({num_queries, k}, queries.options()),
                   torch::empty({num_queries, k},
                                queries.options().dtype(torch::kInt64))};
  // One block of products, reused by every chunk of queries.
  torch::Tensor buffer;
  if (merge_on_cpu) {
    buffer = torch::empty(
        {chunk.query_rows * std::min(chunk.bank_rows, bank.rows.size(0))},
        torch::kFloat32);
  }
  for (int64_t start = 0; start < num_queries; start += chunk.query_rows) {
    const int64_t rows = std::min(chunk.query_rows, num_queries - start);
    PANDA_ASSIGN_OR_RETURN(
        const PreparedQueries prepared,
        PrepareQueries(queries.narrow(0, start, rows), bank, start));
    const Candidates best =
        merge_on_cpu
            ? SearchChunkOnCpu(prepared, bank, k, chunk.bank_rows, buffer)
            : SearchChunkWithTopk(prepared, bank, k, chunk.bank_rows);

    // Adding a per-row constant keeps the order, so the offset is applied to
    // the k winners only.
    torch::Tensor distances = best.values + prepared.distance_offset;
    distances.clamp_min_(0);
    if (bank.metric == KnnMetric::kCosine) distances.clamp_max_(2);
    result.distances.narrow(0, start, rows).copy_(distances);
    result.indices.narrow(0, start, rows).copy_(best.indices);
  }
  return result;
}

absl::StatusOr<KnnBank> PrepareKnnBankOrThrow(const torch::Tensor& bank,
                                              KnnMetric metric,
                                              KnnPrecision precision,
                                              int64_t memory_budget_bytes) {
  PANDA_RETURN_IF_ERROR(
      ValidateFeatureMatrix(bank, "bank", memory_budget_bytes));
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
  if (precision != KnnPrecision::kFloat32 && !bank.is_cuda()) {
    return absl::InvalidArgumentError(absl::StrCat(
        PrecisionName(precision), " matrix products need a CUDA device, but "
        "the bank is on ", bank.device().str(), "; use float32 on the CPU"));
  }

  KnnBank prepared;
  prepared.metric = metric;
  prepared.precision = precision;
  const torch::Tensor squared_norms =
      ComputeSquaredNorms(bank, memory_budget_bytes);
  torch::Tensor rows = bank;
  if (metric == KnnMetric::kCosine) {
    PANDA_RETURN_IF_ERROR(RejectZeroRows(squared_norms, "bank", 0));
    rows = UnitRows(bank, squared_norms);
  } else {
    prepared.squared_norms = squared_norms;
  }
  if (precision != KnnPrecision::kFloat32) {
    const double max_norm =
        metric == KnnMetric::kCosine
            ? 1.0
            : std::sqrt(squared_norms.max().item<double>());
    prepared.row_scale =
        std::max(max_norm, std::numeric_limits<double>::min());
    rows = (rows / prepared.row_scale).to(ProductType(precision));
  }
  prepared.rows = rows;
  return prepared;
}

absl::StatusOr<KnnResult> SearchKnnOrThrow(const torch::Tensor& queries,
                                           const KnnBank& bank, int64_t k,
                                           int64_t memory_budget_bytes) {
  if (!bank.rows.defined()) {
    return absl::InvalidArgumentError(
        "bank is not prepared; make it with PrepareKnnBank()");
  }
  const int64_t bank_size = bank.rows.size(0);
  if (k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("k = ", k, " is invalid because k must be at least 1"));
  }
  if (k > bank_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k = ", k, " exceeds the ", bank_size, " training features"));
  }
  PANDA_RETURN_IF_ERROR(
      ValidateFeatureMatrix(queries, "queries", memory_budget_bytes));
  if (queries.size(1) != bank.rows.size(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("queries have ", queries.size(1),
                     " dimensions but the bank has ", bank.rows.size(1)));
  }
  if (queries.device() != bank.rows.device()) {
    return absl::InvalidArgumentError(
        absl::StrCat("queries are on ", queries.device().str(),
                     " but the bank is on ", bank.rows.device().str()));
  }
  const int64_t bytes_per_product = BytesPerProduct(bank.precision);
  if (memory_budget_bytes < bytes_per_product) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memory_budget_bytes = ", memory_budget_bytes, " is below the ",
        bytes_per_product, " bytes of one distance"));
  }

  const int64_t num_queries = queries.size(0);
  if (num_queries == 0) {
    return KnnResult{
        torch::empty({0, k}, queries.options()),
        torch::empty({0, k}, queries.options().dtype(torch::kInt64))};
  }
  return SearchChunks(queries, bank, k,
                      ChooseChunkShape(num_queries, bank_size,
                                       memory_budget_bytes, bytes_per_product));
}

// Runs `function`, turning the exceptions LibTorch reports failures with
// (such as a full device memory) into a Status.
template <typename Function>
auto TranslateTorchErrors(Function function) -> decltype(function()) {
  // Distances are never differentiated, so autograd need not record them.
  c10::NoGradGuard no_grad;
  try {
    return function();
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

}  // namespace

absl::Status ValidateKnnBank(const torch::Tensor& bank, int64_t k) {
  return TranslateTorchErrors([&]() -> absl::Status {
    PANDA_RETURN_IF_ERROR(
        ValidateFeatureMatrix(bank, "bank", kValidationBudgetBytes));
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
  });
}

absl::StatusOr<KnnBank> PrepareKnnBank(const torch::Tensor& bank,
                                       KnnMetric metric, KnnPrecision precision,
                                       int64_t memory_budget_bytes) {
  return TranslateTorchErrors([&] {
    return PrepareKnnBankOrThrow(bank, metric, precision, memory_budget_bytes);
  });
}

absl::StatusOr<KnnResult> SearchKnn(const torch::Tensor& queries,
                                    const KnnBank& bank, int64_t k,
                                    int64_t memory_budget_bytes) {
  return TranslateTorchErrors([&] {
    return SearchKnnOrThrow(queries, bank, k, memory_budget_bytes);
  });
}

absl::StatusOr<KnnResult> ExactKnn(const torch::Tensor& queries,
                                   const torch::Tensor& bank, int64_t k,
                                   int64_t memory_budget_bytes) {
  PANDA_ASSIGN_OR_RETURN(
      const KnnBank prepared,
      PrepareKnnBank(bank, KnnMetric::kSquaredL2, KnnPrecision::kFloat32,
                     memory_budget_bytes));
  return SearchKnn(queries, prepared, k, memory_budget_bytes);
}

}  // namespace panda
