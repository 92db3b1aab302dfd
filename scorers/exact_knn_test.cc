#include "scorers/exact_knn.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "torch/cuda.h"
#include "torch/types.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kLargeBudget = int64_t{1} << 30;

// Row-major float32 matrix, the test's own copy of the data so that the
// reference below uses no LibTorch arithmetic.
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;

  float at(int64_t row, int64_t col) const { return values[row * cols + col]; }

  torch::Tensor ToTensor() const {
    std::vector<float> copy = values;
    return torch::from_blob(copy.data(), {rows, cols}, torch::kFloat32)
        .clone();
  }
};

Matrix RandomMatrix(int64_t rows, int64_t cols, std::mt19937& generator) {
  std::normal_distribution<float> normal;
  Matrix matrix{rows, cols, std::vector<float>(rows * cols)};
  for (float& value : matrix.values) value = normal(generator);
  return matrix;
}

Matrix FromRows(const std::vector<std::vector<float>>& rows) {
  Matrix matrix{static_cast<int64_t>(rows.size()),
                static_cast<int64_t>(rows[0].size()),
                {}};
  for (const auto& row : rows) {
    matrix.values.insert(matrix.values.end(), row.begin(), row.end());
  }
  return matrix;
}

double SquaredDistance(const Matrix& a, int64_t a_row, const Matrix& b,
                       int64_t b_row) {
  double sum = 0;
  for (int64_t c = 0; c < a.cols; ++c) {
    const double difference =
        static_cast<double>(a.at(a_row, c)) - static_cast<double>(b.at(b_row, c));
    sum += difference * difference;
  }
  return sum;
}

double SquaredNorm(const Matrix& a, int64_t row) {
  double sum = 0;
  for (int64_t c = 0; c < a.cols; ++c) {
    sum += static_cast<double>(a.at(row, c)) * a.at(row, c);
  }
  return sum;
}

// 1 - cosine similarity in double precision.
double CosineDistance(const Matrix& a, int64_t a_row, const Matrix& b,
                      int64_t b_row) {
  double dot = 0;
  for (int64_t c = 0; c < a.cols; ++c) {
    dot += static_cast<double>(a.at(a_row, c)) * b.at(b_row, c);
  }
  return 1.0 - dot / std::sqrt(SquaredNorm(a, a_row) * SquaredNorm(b, b_row));
}

double Distance(KnnMetric metric, const Matrix& a, int64_t a_row,
                const Matrix& b, int64_t b_row) {
  return metric == KnnMetric::kCosine ? CosineDistance(a, a_row, b, b_row)
                                      : SquaredDistance(a, a_row, b, b_row);
}

// All distances of each query in double precision, fully sorted.
std::vector<std::vector<double>> SortedReferenceDistances(
    const Matrix& queries, const Matrix& bank,
    KnnMetric metric = KnnMetric::kSquaredL2) {
  std::vector<std::vector<double>> sorted(queries.rows);
  for (int64_t q = 0; q < queries.rows; ++q) {
    for (int64_t b = 0; b < bank.rows; ++b) {
      sorted[q].push_back(Distance(metric, queries, q, bank, b));
    }
    std::sort(sorted[q].begin(), sorted[q].end());
  }
  return sorted;
}

// Checks `result` against the double-precision brute force. Neighbours whose
// distances differ by less than float32 rounding may legitimately swap, so
// each returned index is checked by its own exact distance rather than by
// position. `rounding` is the unit roundoff of the products' element type.
void ExpectMatchesReference(
    const Matrix& queries, const Matrix& bank, int64_t k,
    const KnnResult& result, KnnMetric metric = KnnMetric::kSquaredL2,
    double rounding = std::numeric_limits<float>::epsilon()) {
  ASSERT_EQ(result.distances.sizes(), torch::IntArrayRef({queries.rows, k}));
  ASSERT_EQ(result.indices.sizes(), torch::IntArrayRef({queries.rows, k}));
  ASSERT_EQ(result.distances.scalar_type(), torch::kFloat32);
  ASSERT_EQ(result.indices.scalar_type(), torch::kInt64);

  const torch::Tensor distances = result.distances.cpu().contiguous();
  const torch::Tensor indices = result.indices.cpu().contiguous();
  const auto distance = distances.accessor<float, 2>();
  const auto index = indices.accessor<int64_t, 2>();
  const std::vector<std::vector<double>> reference =
      SortedReferenceDistances(queries, bank, metric);

  double max_bank_norm = 0;
  for (int64_t b = 0; b < bank.rows; ++b) {
    max_bank_norm = std::max(max_bank_norm, SquaredNorm(bank, b));
  }
  for (int64_t q = 0; q < queries.rows; ++q) {
    // A float32 dot product of D terms is off by at most about
    // D * eps * |q| |b|, the standard rounding-error bound; cosine
    // distances come from unit rows. Rounding the inputs to a narrower type
    // adds about 2 * rounding * |q| |b|.
    const double scale = metric == KnnMetric::kCosine
                             ? 1.0
                             : 1.0 + SquaredNorm(queries, q) + max_bank_norm;
    const double tolerance =
        2.0 * scale *
        ((queries.cols + 2) * std::numeric_limits<float>::epsilon() +
         4.0 * rounding);
    std::set<int64_t> seen;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t neighbour = index[q][j];
      ASSERT_GE(neighbour, 0) << "query " << q << ", rank " << j;
      ASSERT_LT(neighbour, bank.rows) << "query " << q << ", rank " << j;
      EXPECT_TRUE(seen.insert(neighbour).second)
          << "query " << q << " repeats index " << neighbour;
      EXPECT_GE(distance[q][j], 0.0f) << "query " << q << ", rank " << j;
      if (j > 0) {
        EXPECT_LE(distance[q][j - 1], distance[q][j])
            << "query " << q << ", rank " << j;
      }
      EXPECT_NEAR(distance[q][j], reference[q][j], tolerance)
          << "query " << q << ", rank " << j;
      EXPECT_NEAR(distance[q][j], Distance(metric, queries, q, bank, neighbour),
                  tolerance)
          << "query " << q << ", rank " << j << ", index " << neighbour;
    }
  }
}

struct Shape {
  int64_t queries;
  int64_t bank;
  int64_t dims;
  int64_t k;
};

TEST(ExactKnnTest, MatchesBruteForceAtSeveralShapes) {
  std::mt19937 generator(7);
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1}, {7, 13, 5, 3}, {50, 200, 32, 2}, {33, 64, 17, 64},
      {3, 500, 8, 10}, {120, 9, 3, 4},
  };
  for (const Shape& shape : shapes) {
    const Matrix queries = RandomMatrix(shape.queries, shape.dims, generator);
    const Matrix bank = RandomMatrix(shape.bank, shape.dims, generator);
    absl::StatusOr<KnnResult> result =
        ExactKnn(queries.ToTensor(), bank.ToTensor(), shape.k, kLargeBudget);
    ASSERT_TRUE(result.ok()) << result.status();
    SCOPED_TRACE(testing::Message() << "M = " << shape.queries << ", N = "
                                    << shape.bank << ", D = " << shape.dims
                                    << ", k = " << shape.k);
    ExpectMatchesReference(queries, bank, shape.k, *result);
  }
}

TEST(ExactKnnTest, TinyBudgetsChunkBothAxes) {
  std::mt19937 generator(11);
  const Matrix queries = RandomMatrix(23, 6, generator);
  const Matrix bank = RandomMatrix(37, 6, generator);
  const int64_t k = 5;
  // Block sizes, in distances, and the chunks they give:
  //   1: 1 x 1 blocks, so every bank chunk is smaller than k.
  //   3: bank chunks of 3 rows, fewer than k, and a last one of 1 row.
  //   36: two bank chunks, of 36 rows and 1 row.
  //   37 * 4 + 2: 4 queries by the whole bank, and a last chunk of 3 queries.
  //   37 * 10: 10 queries by the whole bank, and a last chunk of 3 queries.
  const std::vector<int64_t> block_elements = {1, 3, 36, 37 * 4 + 2, 37 * 10};
  for (int64_t elements : block_elements) {
    absl::StatusOr<KnnResult> result =
        ExactKnn(queries.ToTensor(), bank.ToTensor(), k,
                 elements * static_cast<int64_t>(sizeof(float)));
    ASSERT_TRUE(result.ok()) << result.status();
    SCOPED_TRACE(testing::Message() << "block of " << elements << " distances");
    ExpectMatchesReference(queries, bank, k, *result);
  }
}

TEST(ExactKnnTest, BudgetNeedNotBeMultipleOfFour) {
  std::mt19937 generator(12);
  const Matrix queries = RandomMatrix(4, 3, generator);
  const Matrix bank = RandomMatrix(9, 3, generator);
  absl::StatusOr<KnnResult> result =
      ExactKnn(queries.ToTensor(), bank.ToTensor(), 2, /*bytes=*/7);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectMatchesReference(queries, bank, 2, *result);
}

TEST(ExactKnnTest, DuplicateTrainingPoints) {
  // Integer coordinates keep every float32 distance exact.
  const Matrix bank = FromRows({{1, 2}, {5, 5}, {1, 2}, {0, 0}, {1, 2}});
  const Matrix queries = FromRows({{1, 2}, {1, 3}});
  for (int64_t budget : {int64_t{4}, int64_t{8}, kLargeBudget}) {
    absl::StatusOr<KnnResult> result =
        ExactKnn(queries.ToTensor(), bank.ToTensor(), 4, budget);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectMatchesReference(queries, bank, 4, *result);

    // The three copies of (1, 2) come first, in some order, then (0, 0).
    const torch::Tensor indices = result->indices.contiguous();
    std::set<int64_t> first_three(indices[0].data_ptr<int64_t>(),
                                  indices[0].data_ptr<int64_t>() + 3);
    EXPECT_EQ(first_three, (std::set<int64_t>{0, 2, 4})) << "budget " << budget;
    EXPECT_EQ(indices[0][3].item<int64_t>(), 3) << "budget " << budget;
    EXPECT_TRUE(torch::equal(result->distances,
                             torch::tensor({{0.f, 0.f, 0.f, 5.f},
                                            {1.f, 1.f, 1.f, 10.f}})))
        << result->distances;
  }
}

TEST(ExactKnnTest, ExactTiesAcrossChunks) {
  // Four points at distance 1 from the origin and one at distance 4.
  const Matrix bank = FromRows({{2, 0}, {1, 0}, {0, 1}, {-1, 0}, {0, -1}});
  const Matrix queries = FromRows({{0, 0}});
  for (int64_t budget : {int64_t{4}, int64_t{12}, kLargeBudget}) {
    absl::StatusOr<KnnResult> result =
        ExactKnn(queries.ToTensor(), bank.ToTensor(), 3, budget);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectMatchesReference(queries, bank, 3, *result);
    EXPECT_TRUE(torch::equal(result->distances, torch::ones({1, 3})))
        << "budget " << budget << ": " << result->distances;
  }
}

TEST(ExactKnnTest, KEqualToBankSizeReturnsWholeBank) {
  std::mt19937 generator(3);
  const Matrix queries = RandomMatrix(6, 4, generator);
  const Matrix bank = RandomMatrix(8, 4, generator);
  for (int64_t budget : {int64_t{4 * 3}, kLargeBudget}) {
    absl::StatusOr<KnnResult> result =
        ExactKnn(queries.ToTensor(), bank.ToTensor(), 8, budget);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectMatchesReference(queries, bank, 8, *result);
  }
}

TEST(ExactKnnTest, SelfDistanceIsClampedToZero) {
  // Large coordinates make |q|^2 + |b|^2 - 2 q.b lose every digit when q = b,
  // so without the clamp some self-distances come out slightly negative.
  std::mt19937 generator(5);
  Matrix bank = RandomMatrix(64, 16, generator);
  for (float& value : bank.values) value = value * 1000.0f + 3000.0f;
  absl::StatusOr<KnnResult> result =
      ExactKnn(bank.ToTensor(), bank.ToTensor(), 1, kLargeBudget);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GE(result->distances.min().item<float>(), 0.0f);
  ExpectMatchesReference(bank, bank, 1, *result);
}

TEST(ExactKnnTest, AcceptsNonContiguousInputs) {
  std::mt19937 generator(8);
  const Matrix queries = RandomMatrix(5, 3, generator);
  const Matrix bank = RandomMatrix(7, 3, generator);
  // Transposing twice gives the same values in column-major storage.
  const torch::Tensor strided_queries = queries.ToTensor().t().contiguous().t();
  const torch::Tensor strided_bank = bank.ToTensor().t().contiguous().t();
  ASSERT_FALSE(strided_queries.is_contiguous());
  absl::StatusOr<KnnResult> result =
      ExactKnn(strided_queries, strided_bank, 2, /*bytes=*/4 * 3);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectMatchesReference(queries, bank, 2, *result);
}

TEST(ExactKnnTest, ResultDoesNotRequireGrad) {
  torch::Tensor queries = torch::randn({3, 2}).requires_grad_();
  absl::StatusOr<KnnResult> result =
      ExactKnn(queries, torch::randn({4, 2}), 2, kLargeBudget);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->distances.requires_grad());
}

TEST(ExactKnnTest, EmptyQueriesGiveEmptyResult) {
  absl::StatusOr<KnnResult> result =
      ExactKnn(torch::empty({0, 3}), torch::randn({4, 3}), 2, kLargeBudget);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->distances.sizes(), torch::IntArrayRef({0, 2}));
  EXPECT_EQ(result->indices.sizes(), torch::IntArrayRef({0, 2}));
  EXPECT_EQ(result->distances.scalar_type(), torch::kFloat32);
  EXPECT_EQ(result->indices.scalar_type(), torch::kInt64);
}

void ExpectInvalidArgument(const absl::StatusOr<KnnResult>& result,
                           const std::string& expected_text) {
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
      << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(expected_text));
}

TEST(ExactKnnTest, RejectsKAboveBankSize) {
  ExpectInvalidArgument(
      ExactKnn(torch::randn({2, 4}), torch::randn({3, 4}), 5, kLargeBudget),
      "k = 5 exceeds the 3 training features");
}

TEST(ExactKnnTest, RejectsKBelowOne) {
  ExpectInvalidArgument(
      ExactKnn(torch::randn({2, 4}), torch::randn({3, 4}), 0, kLargeBudget),
      "k = 0 is invalid");
}

TEST(ExactKnnTest, RejectsEmptyBank) {
  ExpectInvalidArgument(
      ExactKnn(torch::randn({2, 4}), torch::empty({0, 4}), 1, kLargeBudget),
      "bank is empty");
}

TEST(ExactKnnTest, RejectsZeroDimensions) {
  ExpectInvalidArgument(
      ExactKnn(torch::empty({2, 0}), torch::empty({3, 0}), 1, kLargeBudget),
      "bank has shape [3, 0]");
}

TEST(ExactKnnTest, RejectsDimensionMismatch) {
  ExpectInvalidArgument(
      ExactKnn(torch::randn({2, 7}), torch::randn({3, 5}), 1, kLargeBudget),
      "queries have 7 dimensions but the bank has 5");
}

TEST(ExactKnnTest, RejectsNanInQueries) {
  torch::Tensor queries = torch::randn({4, 3});
  queries[2][1] = std::numeric_limits<float>::quiet_NaN();
  ExpectInvalidArgument(
      ExactKnn(queries, torch::randn({3, 3}), 1, kLargeBudget),
      "queries contains NaN or infinite values, first in row 2");
}

TEST(ExactKnnTest, RejectsInfinityInBank) {
  torch::Tensor bank = torch::randn({3, 3});
  bank[1][0] = std::numeric_limits<float>::infinity();
  ExpectInvalidArgument(
      ExactKnn(torch::randn({4, 3}), bank, 1, kLargeBudget),
      "bank contains NaN or infinite values, first in row 1");
}

TEST(ExactKnnTest, RejectsNanInNonContiguousBank) {
  // Column-major storage takes the chunked LibTorch check, not the loop.
  torch::Tensor bank = torch::randn({3, 5}).t().contiguous().t();
  bank[2][4] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_FALSE(bank.is_contiguous());
  ExpectInvalidArgument(
      ExactKnn(torch::randn({4, 5}), bank, 1, /*bytes=*/4 * 5),
      "bank contains NaN or infinite values, first in row 2");
}

TEST(ExactKnnTest, RejectsNanInLaterRowsOfLargeQueries) {
  // Enough rows for several parallel tasks; the first bad row must win.
  torch::Tensor queries = torch::randn({300000, 8});
  queries[250000][3] = std::numeric_limits<float>::infinity();
  queries[140001][0] = std::numeric_limits<float>::quiet_NaN();
  ExpectInvalidArgument(
      ExactKnn(queries, torch::randn({3, 8}), 1, kLargeBudget),
      "queries contains NaN or infinite values, first in row 140001");
}

TEST(ExactKnnTest, RejectsNonFloat32) {
  ExpectInvalidArgument(
      ExactKnn(torch::randn({2, 3}, torch::kFloat64), torch::randn({3, 3}), 1,
               kLargeBudget),
      "queries must be float32, but is Double");
  ExpectInvalidArgument(
      ExactKnn(torch::randn({2, 3}), torch::zeros({3, 3}, torch::kInt32), 1,
               kLargeBudget),
      "bank must be float32, but is Int");
}

TEST(ExactKnnTest, RejectsNon2D) {
  ExpectInvalidArgument(
      ExactKnn(torch::randn({3}), torch::randn({3, 3}), 1, kLargeBudget),
      "queries must be a 2-D [rows, dims] tensor, but has shape [3]");
  ExpectInvalidArgument(
      ExactKnn(torch::randn({2, 3}), torch::randn({1, 3, 3}), 1, kLargeBudget),
      "bank must be a 2-D [rows, dims] tensor, but has shape [1, 3, 3]");
}

TEST(ExactKnnTest, RejectsUndefinedTensor) {
  ExpectInvalidArgument(
      ExactKnn(torch::Tensor(), torch::randn({3, 3}), 1, kLargeBudget),
      "queries is an undefined tensor");
}

TEST(ExactKnnTest, RejectsBudgetBelowOneDistance) {
  ExpectInvalidArgument(
      ExactKnn(torch::randn({2, 3}), torch::randn({3, 3}), 1, 3),
      "memory_budget_bytes = 3 is below the 4 bytes of one distance");
}

// Prepares `bank` for `metric` in float32 and searches it.
absl::StatusOr<KnnResult> PrepareAndSearch(const Matrix& queries,
                                           const Matrix& bank, int64_t k,
                                           KnnMetric metric,
                                           int64_t budget) {
  absl::StatusOr<KnnBank> prepared = PrepareKnnBank(
      bank.ToTensor(), metric, KnnPrecision::kFloat32, budget);
  if (!prepared.ok()) return prepared.status();
  return SearchKnn(queries.ToTensor(), *prepared, k, budget);
}

TEST(ExactKnnTest, CosineMatchesBruteForce) {
  std::mt19937 generator(21);
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1}, {7, 13, 5, 3}, {50, 200, 32, 2}, {33, 64, 17, 64},
  };
  for (const Shape& shape : shapes) {
    const Matrix queries = RandomMatrix(shape.queries, shape.dims, generator);
    const Matrix bank = RandomMatrix(shape.bank, shape.dims, generator);
    for (int64_t budget : {int64_t{4}, int64_t{4 * 37}, kLargeBudget}) {
      SCOPED_TRACE(testing::Message()
                   << "M = " << shape.queries << ", N = " << shape.bank
                   << ", D = " << shape.dims << ", k = " << shape.k
                   << ", budget " << budget);
      absl::StatusOr<KnnResult> result = PrepareAndSearch(
          queries, bank, shape.k, KnnMetric::kCosine, budget);
      ASSERT_TRUE(result.ok()) << result.status();
      ExpectMatchesReference(queries, bank, shape.k, *result,
                             KnnMetric::kCosine);
    }
  }
}

TEST(ExactKnnTest, CosineDuplicatesAndTies) {
  // (1, 0) and (2, 0) share a direction, so both are at cosine distance 0
  // from (5, 0). Then come (1, 1) at 1 - 1/sqrt(2), (0, 1) at 1 and
  // (-1, 0) at 2.
  const Matrix bank = FromRows({{0, 1}, {1, 0}, {-1, 0}, {2, 0}, {1, 1}});
  const Matrix queries = FromRows({{5, 0}, {1, 1}});
  for (int64_t budget : {int64_t{4}, int64_t{8}, kLargeBudget}) {
    SCOPED_TRACE(testing::Message() << "budget " << budget);
    absl::StatusOr<KnnResult> result =
        PrepareAndSearch(queries, bank, 5, KnnMetric::kCosine, budget);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectMatchesReference(queries, bank, 5, *result, KnnMetric::kCosine);

    const torch::Tensor distances = result->distances.contiguous();
    const torch::Tensor indices = result->indices.contiguous();
    const double half_root = 1.0 / std::sqrt(2.0);
    const std::vector<double> expected_first = {0, 0, 1 - half_root, 1, 2};
    for (int64_t j = 0; j < 5; ++j) {
      EXPECT_NEAR(distances[0][j].item<float>(), expected_first[j], 1e-6)
          << "rank " << j;
    }
    EXPECT_EQ((std::set<int64_t>{indices[0][0].item<int64_t>(),
                                 indices[0][1].item<int64_t>()}),
              (std::set<int64_t>{1, 3}));
    EXPECT_EQ(indices[0][2].item<int64_t>(), 4);

    // From (1, 1): itself at 0, then (0, 1), (1, 0) and (2, 0) tie at
    // 1 - 1/sqrt(2), and (-1, 0) is at 1 + 1/sqrt(2).
    const std::vector<double> expected_second = {
        0, 1 - half_root, 1 - half_root, 1 - half_root, 1 + half_root};
    for (int64_t j = 0; j < 5; ++j) {
      EXPECT_NEAR(distances[1][j].item<float>(), expected_second[j], 1e-6)
          << "rank " << j;
    }
    EXPECT_EQ((std::set<int64_t>{indices[1][1].item<int64_t>(),
                                 indices[1][2].item<int64_t>(),
                                 indices[1][3].item<int64_t>()}),
              (std::set<int64_t>{0, 1, 3}));
  }
}

TEST(ExactKnnTest, CosineSelfDistanceStaysInRange) {
  std::mt19937 generator(22);
  Matrix bank = RandomMatrix(64, 16, generator);
  for (float& value : bank.values) value = value * 1000.0f + 3000.0f;
  absl::StatusOr<KnnResult> result =
      PrepareAndSearch(bank, bank, 3, KnnMetric::kCosine, kLargeBudget);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GE(result->distances.min().item<float>(), 0.0f);
  EXPECT_LE(result->distances.max().item<float>(), 2.0f);
  ExpectMatchesReference(bank, bank, 3, *result, KnnMetric::kCosine);
}

TEST(ExactKnnTest, CosineRejectsZeroBankRow) {
  const Matrix bank = FromRows({{1, 2}, {0, 0}, {3, 1}});
  absl::StatusOr<KnnBank> prepared =
      PrepareKnnBank(bank.ToTensor(), KnnMetric::kCosine,
                     KnnPrecision::kFloat32, kLargeBudget);
  ASSERT_EQ(prepared.status().code(), absl::StatusCode::kInvalidArgument)
      << prepared.status();
  EXPECT_THAT(std::string(prepared.status().message()),
              HasSubstr("bank row 1 has zero L2 norm"));
}

TEST(ExactKnnTest, CosineRejectsZeroQueryInLaterChunk) {
  // A 4-byte budget makes chunks of one query, so the message must add the
  // chunk's offset.
  const Matrix bank = FromRows({{1, 2}, {3, 1}});
  const Matrix queries = FromRows({{1, 1}, {2, 1}, {0, 0}});
  ExpectInvalidArgument(
      PrepareAndSearch(queries, bank, 1, KnnMetric::kCosine, /*bytes=*/4),
      "queries row 2 has zero L2 norm");
}

TEST(ExactKnnTest, HalfPrecisionIsRejectedOnCpu) {
  for (KnnPrecision precision :
       {KnnPrecision::kFloat16, KnnPrecision::kBFloat16}) {
    absl::StatusOr<KnnBank> prepared =
        PrepareKnnBank(torch::randn({4, 3}), KnnMetric::kSquaredL2, precision,
                       kLargeBudget);
    ASSERT_EQ(prepared.status().code(), absl::StatusCode::kInvalidArgument)
        << prepared.status();
    EXPECT_THAT(std::string(prepared.status().message()),
                HasSubstr("matrix products need a CUDA device, but the bank "
                          "is on cpu"));
  }
}

TEST(ExactKnnTest, LargeKFallsBackToTopk) {
  // k above 64 takes the torch::topk path on the CPU; 64 is the last k of
  // the single-pass merge.
  std::mt19937 generator(23);
  const Matrix queries = RandomMatrix(9, 6, generator);
  const Matrix bank = RandomMatrix(150, 6, generator);
  for (int64_t k : {64, 65, 150}) {
    for (int64_t budget : {int64_t{4 * 40}, kLargeBudget}) {
      SCOPED_TRACE(testing::Message() << "k = " << k << ", budget " << budget);
      for (KnnMetric metric : {KnnMetric::kSquaredL2, KnnMetric::kCosine}) {
        absl::StatusOr<KnnResult> result =
            PrepareAndSearch(queries, bank, k, metric, budget);
        ASSERT_TRUE(result.ok()) << result.status();
        ExpectMatchesReference(queries, bank, k, *result, metric);
      }
    }
  }
}

TEST(ExactKnnTest, LargeKWithDuplicatesOnTopkPath) {
  // 70 copies of (1, 0) and 30 of (0, 3): with k = 80 the copies fill the
  // first 70 ranks at distance 1 from (0, 0) and 10 at distance 9 follow.
  std::vector<std::vector<float>> rows(70, {1, 0});
  rows.insert(rows.end(), 30, {0, 3});
  const Matrix bank = FromRows(rows);
  const Matrix queries = FromRows({{0, 0}});
  for (int64_t budget : {int64_t{4 * 7}, kLargeBudget}) {
    absl::StatusOr<KnnResult> result =
        PrepareAndSearch(queries, bank, 80, KnnMetric::kSquaredL2, budget);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectMatchesReference(queries, bank, 80, *result);
    EXPECT_EQ(result->distances.sum().item<float>(), 70.0f + 10 * 9.0f)
        << "budget " << budget;
  }
}

TEST(ExactKnnTest, PreparedL2BankSharesStorage) {
  const torch::Tensor bank = torch::randn({5, 3});
  absl::StatusOr<KnnBank> l2 = PrepareKnnBank(
      bank, KnnMetric::kSquaredL2, KnnPrecision::kFloat32, kLargeBudget);
  ASSERT_TRUE(l2.ok()) << l2.status();
  EXPECT_EQ(l2->rows.data_ptr(), bank.data_ptr());

  absl::StatusOr<KnnBank> cosine = PrepareKnnBank(
      bank, KnnMetric::kCosine, KnnPrecision::kFloat32, kLargeBudget);
  ASSERT_TRUE(cosine.ok()) << cosine.status();
  EXPECT_NE(cosine->rows.data_ptr(), bank.data_ptr());
}

TEST(ExactKnnTest, PreparedBankServesRepeatedSearches) {
  std::mt19937 generator(24);
  const Matrix bank = RandomMatrix(40, 8, generator);
  absl::StatusOr<KnnBank> prepared =
      PrepareKnnBank(bank.ToTensor(), KnnMetric::kSquaredL2,
                     KnnPrecision::kFloat32, kLargeBudget);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  for (int round = 0; round < 3; ++round) {
    const Matrix queries = RandomMatrix(5 + round, 8, generator);
    absl::StatusOr<KnnResult> result =
        SearchKnn(queries.ToTensor(), *prepared, 2, /*bytes=*/4 * 30);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectMatchesReference(queries, bank, 2, *result);
  }
}

TEST(ExactKnnTest, SearchRejectsUnpreparedBank) {
  ExpectInvalidArgument(SearchKnn(torch::randn({2, 3}), KnnBank(), 1,
                                  kLargeBudget),
                        "bank is not prepared");
}

TEST(ExactKnnTest, CudaHalfPrecisionMatchesBruteForce) {
  if (!torch::cuda::is_available()) {
    GTEST_SKIP() << "no CUDA device in this LibTorch build or machine";
  }
  std::mt19937 generator(25);
  Matrix queries = RandomMatrix(40, 16, generator);
  Matrix bank = RandomMatrix(90, 16, generator);
  // Large values would overflow float16 products without the scaling.
  for (float& value : bank.values) value *= 300.0f;
  for (float& value : queries.values) value *= 300.0f;
  const std::vector<std::pair<KnnPrecision, double>> precisions = {
      {KnnPrecision::kFloat16, std::ldexp(1.0, -11)},
      {KnnPrecision::kBFloat16, std::ldexp(1.0, -8)}};
  for (const auto& [precision, rounding] : precisions) {
    for (KnnMetric metric : {KnnMetric::kSquaredL2, KnnMetric::kCosine}) {
      absl::StatusOr<KnnBank> prepared = PrepareKnnBank(
          bank.ToTensor().cuda(), metric, precision, kLargeBudget);
      ASSERT_TRUE(prepared.ok()) << prepared.status();
      for (int64_t budget : {int64_t{6 * 7}, kLargeBudget}) {
        absl::StatusOr<KnnResult> result =
            SearchKnn(queries.ToTensor().cuda(), *prepared, 3, budget);
        ASSERT_TRUE(result.ok()) << result.status();
        EXPECT_TRUE(result->distances.is_cuda());
        ExpectMatchesReference(queries, bank, 3, *result, metric, rounding);
      }
    }
  }
}

TEST(ExactKnnTest, CudaMatchesBruteForce) {
  if (!torch::cuda::is_available()) {
    GTEST_SKIP() << "no CUDA device in this LibTorch build or machine";
  }
  std::mt19937 generator(13);
  const Matrix queries = RandomMatrix(40, 16, generator);
  const Matrix bank = RandomMatrix(90, 16, generator);
  for (int64_t budget : {int64_t{4 * 7}, kLargeBudget}) {
    absl::StatusOr<KnnResult> result =
        ExactKnn(queries.ToTensor().cuda(), bank.ToTensor().cuda(), 3, budget);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result->distances.is_cuda());
    ExpectMatchesReference(queries, bank, 3, *result);
  }
  ExpectInvalidArgument(ExactKnn(queries.ToTensor(), bank.ToTensor().cuda(), 3,
                                 kLargeBudget),
                        "queries are on cpu but the bank is on cuda:0");
}

}  // namespace
}  // namespace panda
