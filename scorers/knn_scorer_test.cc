#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "scorers/knn_scorer_options.pb.h"
#include "scorers/scorer.h"
#include "torch/cuda.h"
#include "torch/types.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

// Creates the "knn" scorer through the registry, as a pipeline config would.
absl::StatusOr<std::unique_ptr<Scorer>> CreateKnnScorer(
    const std::string& text_options) {
  KnnScorerOptions options;
  if (!google::protobuf::TextFormat::ParseFromString(text_options, &options)) {
    return absl::InvalidArgumentError("invalid test options text: " +
                                      text_options);
  }
  google::protobuf::Any any;
  any.PackFrom(options);
  return ScorerRegistry().Create("knn", any);
}

std::vector<float> RandomValues(int64_t count, std::mt19937& generator) {
  std::normal_distribution<float> normal;
  std::vector<float> values(count);
  for (float& value : values) value = normal(generator);
  return values;
}

torch::Tensor ToTensor(std::vector<float> values, int64_t rows, int64_t cols) {
  return torch::from_blob(values.data(), {rows, cols}, torch::kFloat32).clone();
}

// Distance between two rows in double precision by plain loops.
double ReferenceDistance(const float* x, const float* y, int64_t dims,
                         bool cosine) {
  double squared_difference = 0;
  double dot = 0;
  double x_norm = 0;
  double y_norm = 0;
  for (int64_t c = 0; c < dims; ++c) {
    const double difference = static_cast<double>(x[c]) - y[c];
    squared_difference += difference * difference;
    dot += static_cast<double>(x[c]) * y[c];
    x_norm += static_cast<double>(x[c]) * x[c];
    y_norm += static_cast<double>(y[c]) * y[c];
  }
  return cosine ? 1.0 - dot / std::sqrt(x_norm * y_norm) : squared_difference;
}

// PANDA's score in double precision: the sum (or mean) of the k smallest
// distances from each query to the bank, both row-major.
std::vector<double> ReferenceScores(const std::vector<float>& queries,
                                    const std::vector<float>& bank,
                                    int64_t dims, int64_t k,
                                    bool cosine = false, bool mean = false) {
  const int64_t num_queries = static_cast<int64_t>(queries.size()) / dims;
  const int64_t bank_size = static_cast<int64_t>(bank.size()) / dims;
  std::vector<double> scores;
  for (int64_t q = 0; q < num_queries; ++q) {
    std::vector<double> distances;
    for (int64_t b = 0; b < bank_size; ++b) {
      distances.push_back(ReferenceDistance(&queries[q * dims],
                                            &bank[b * dims], dims, cosine));
    }
    std::sort(distances.begin(), distances.end());
    double score = 0;
    for (int64_t j = 0; j < k; ++j) score += distances[j];
    scores.push_back(mean ? score / k : score);
  }
  return scores;
}

void ExpectScoresNear(const torch::Tensor& scores,
                      const std::vector<double>& expected, double tolerance) {
  ASSERT_EQ(scores.sizes(),
            torch::IntArrayRef({static_cast<int64_t>(expected.size())}));
  ASSERT_EQ(scores.scalar_type(), torch::kFloat32);
  ASSERT_TRUE(scores.device().is_cpu());
  const torch::Tensor contiguous = scores.contiguous();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(contiguous[i].item<float>(), expected[i],
                tolerance * (1.0 + expected[i]))
        << "query " << i;
  }
}

TEST(KnnScorerTest, MatchesBruteForceSum) {
  std::mt19937 generator(17);
  const int64_t dims = 12;
  for (int64_t k : {1, 2, 5}) {
    const std::vector<float> bank = RandomValues(80 * dims, generator);
    const std::vector<float> queries = RandomValues(30 * dims, generator);
    absl::StatusOr<std::unique_ptr<Scorer>> scorer =
        CreateKnnScorer("k: " + std::to_string(k));
    ASSERT_TRUE(scorer.ok()) << scorer.status();
    ASSERT_TRUE((*scorer)->Fit(ToTensor(bank, 80, dims)).ok());

    absl::StatusOr<torch::Tensor> scores =
        (*scorer)->Score(ToTensor(queries, 30, dims));
    ASSERT_TRUE(scores.ok()) << scores.status();
    SCOPED_TRACE(testing::Message() << "k = " << k);
    ExpectScoresNear(*scores, ReferenceScores(queries, bank, dims, k), 1e-5);
  }
}

TEST(KnnScorerTest, DefaultOptionsSumTwoNeighbours) {
  // Integer coordinates keep every float32 distance exact. The query (0, 0)
  // has neighbours at squared distances 1, 1 (a duplicate) and 4.
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      ScorerRegistry().Create("knn", google::protobuf::Any());
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE(
      (*scorer)->Fit(torch::tensor({{1.f, 0.f}, {2.f, 0.f}, {1.f, 0.f}})).ok());

  absl::StatusOr<torch::Tensor> scores =
      (*scorer)->Score(torch::tensor({{0.f, 0.f}, {2.f, 0.f}}));
  ASSERT_TRUE(scores.ok()) << scores.status();
  // (2, 0) is at 0 from itself and 1 from both copies of (1, 0).
  EXPECT_TRUE(torch::equal(*scores, torch::tensor({2.f, 1.f}))) << *scores;
}

TEST(KnnScorerTest, BudgetSplitsTheBank) {
  // One MiB fits 262144 float32 distances, fewer than one query's row of
  // 300000, so the kernel must split the bank.
  std::mt19937 generator(19);
  const int64_t bank_size = 300000;
  const int64_t dims = 2;
  const std::vector<float> bank = RandomValues(bank_size * dims, generator);
  const std::vector<float> queries = RandomValues(3 * dims, generator);
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      CreateKnnScorer("k: 3 memory_budget_mb: 1");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)->Fit(ToTensor(bank, bank_size, dims)).ok());

  absl::StatusOr<torch::Tensor> scores =
      (*scorer)->Score(ToTensor(queries, 3, dims));
  ASSERT_TRUE(scores.ok()) << scores.status();
  ExpectScoresNear(*scores, ReferenceScores(queries, bank, dims, 3), 1e-4);
}

TEST(KnnScorerTest, EveryMetricAndAggregationMatchesBruteForce) {
  std::mt19937 generator(29);
  const int64_t dims = 9;
  const std::vector<float> bank = RandomValues(70 * dims, generator);
  const std::vector<float> queries = RandomValues(25 * dims, generator);
  for (const std::string metric : {"L2", "COSINE"}) {
    for (const std::string aggregation : {"SUM", "MEAN"}) {
      for (int64_t k : {1, 3}) {
        const std::string options = "k: " + std::to_string(k) +
                                    " metric: " + metric +
                                    " aggregation: " + aggregation +
                                    " memory_budget_mb: 1";
        SCOPED_TRACE(options);
        absl::StatusOr<std::unique_ptr<Scorer>> scorer =
            CreateKnnScorer(options);
        ASSERT_TRUE(scorer.ok()) << scorer.status();
        ASSERT_TRUE((*scorer)->Fit(ToTensor(bank, 70, dims)).ok());
        absl::StatusOr<torch::Tensor> scores =
            (*scorer)->Score(ToTensor(queries, 25, dims));
        ASSERT_TRUE(scores.ok()) << scores.status();
        ExpectScoresNear(*scores,
                         ReferenceScores(queries, bank, dims, k,
                                         metric == "COSINE",
                                         aggregation == "MEAN"),
                         1e-5);
      }
    }
  }
}

TEST(KnnScorerTest, MeanOverDuplicatesAndTies) {
  // From (0, 0) the three nearest are both copies of (1, 0) at 1 and (0, 2)
  // at 4: mean 2. From (3, 0) both copies and (5, 0) tie at 4: mean 4.
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      CreateKnnScorer("k: 3 aggregation: MEAN");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)
                  ->Fit(torch::tensor(
                      {{1.f, 0.f}, {1.f, 0.f}, {0.f, 2.f}, {5.f, 0.f}}))
                  .ok());
  absl::StatusOr<torch::Tensor> scores =
      (*scorer)->Score(torch::tensor({{0.f, 0.f}, {3.f, 0.f}}));
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_TRUE(torch::equal(*scores, torch::tensor({2.f, 4.f}))) << *scores;
}

TEST(KnnScorerTest, CosineOverDuplicateDirectionsAndTies) {
  // From (2, 0): (1, 0) and (3, 0) point the same way, at 0, and (0, 1)
  // and (0, -1) tie at 1, so the sum is 1.
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      CreateKnnScorer("k: 3 metric: COSINE");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)
                  ->Fit(torch::tensor(
                      {{0.f, 1.f}, {1.f, 0.f}, {0.f, -1.f}, {3.f, 0.f}}))
                  .ok());
  absl::StatusOr<torch::Tensor> scores =
      (*scorer)->Score(torch::tensor({{2.f, 0.f}, {-4.f, 0.f}}));
  ASSERT_TRUE(scores.ok()) << scores.status();
  // From (-4, 0): (0, 1) and (0, -1) at 1 each, then (1, 0) or (3, 0) at
  // 2, so the sum is 4.
  EXPECT_TRUE(torch::allclose(*scores, torch::tensor({1.f, 4.f}))) << *scores;
}

TEST(KnnScorerTest, CosineRejectsZeroFeature) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      CreateKnnScorer("k: 1 metric: COSINE");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  absl::Status status =
      (*scorer)->Fit(torch::tensor({{1.f, 0.f}, {0.f, 0.f}}));
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("knn scorer Fit: bank row 1 has zero L2 norm"));
}

TEST(KnnScorerTest, HalfPrecisionIsRejectedOnCpu) {
  for (const std::string precision : {"FP16", "BF16"}) {
    absl::StatusOr<std::unique_ptr<Scorer>> scorer =
        CreateKnnScorer("precision: " + precision);
    ASSERT_TRUE(scorer.ok()) << scorer.status();
    absl::Status status = (*scorer)->Fit(torch::randn({4, 3}));
    ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("KnnScorerOptions.precision = " + precision +
                          " needs the features on a CUDA device, but they "
                          "are on cpu"));
  }
}

TEST(KnnScorerTest, CudaHalfPrecisionScoresNearFloat32) {
  if (!torch::cuda::is_available()) {
    GTEST_SKIP() << "no CUDA device in this LibTorch build or machine";
  }
  std::mt19937 generator(31);
  const int64_t dims = 32;
  const std::vector<float> bank = RandomValues(200 * dims, generator);
  const std::vector<float> queries = RandomValues(40 * dims, generator);
  for (const std::string precision : {"FP16", "BF16"}) {
    absl::StatusOr<std::unique_ptr<Scorer>> scorer =
        CreateKnnScorer("precision: " + precision);
    ASSERT_TRUE(scorer.ok()) << scorer.status();
    ASSERT_TRUE((*scorer)->Fit(ToTensor(bank, 200, dims).cuda()).ok());
    absl::StatusOr<torch::Tensor> scores =
        (*scorer)->Score(ToTensor(queries, 40, dims));
    ASSERT_TRUE(scores.ok()) << scores.status();
    SCOPED_TRACE(precision);
    // Inputs rounded to 8 significant bits move each product by about
    // 2^-7 |q| |b|, about 0.25 here; the score sums two distances.
    ExpectScoresNear(*scores, ReferenceScores(queries, bank, dims, 2), 2e-2);
  }
}

TEST(KnnScorerTest, ScoreBeforeFitFails) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateKnnScorer("");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  absl::StatusOr<torch::Tensor> scores = (*scorer)->Score(torch::randn({2, 3}));
  ASSERT_EQ(scores.status().code(), absl::StatusCode::kFailedPrecondition)
      << scores.status();
  EXPECT_THAT(std::string(scores.status().message()), HasSubstr("before Fit"));
}

TEST(KnnScorerTest, FitRejectsKAboveBankSize) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateKnnScorer("k: 5");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  absl::Status status = (*scorer)->Fit(torch::randn({3, 4}));
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("k = 5 exceeds the 3 training features"));

  // A rejected bank leaves the scorer unfitted.
  EXPECT_EQ((*scorer)->Score(torch::randn({1, 4})).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(KnnScorerTest, FitRejectsNanBank) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateKnnScorer("k: 1");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  torch::Tensor bank = torch::randn({3, 4});
  bank[0][3] = std::numeric_limits<float>::quiet_NaN();
  absl::Status status = (*scorer)->Fit(bank);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("knn scorer Fit: bank contains NaN"));
}

TEST(KnnScorerTest, ScoreRejectsNanQueries) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateKnnScorer("k: 1");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)->Fit(torch::randn({3, 4})).ok());
  torch::Tensor queries = torch::randn({2, 4});
  queries[1][0] = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<torch::Tensor> scores = (*scorer)->Score(queries);
  ASSERT_EQ(scores.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(scores.status().message()),
              HasSubstr("knn scorer Score: queries contains NaN"));
}

TEST(KnnScorerTest, ScoreRejectsDimensionMismatch) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateKnnScorer("k: 1");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)->Fit(torch::randn({3, 4})).ok());
  absl::StatusOr<torch::Tensor> scores = (*scorer)->Score(torch::randn({2, 6}));
  ASSERT_EQ(scores.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(scores.status().message()),
              HasSubstr("queries have 6 dimensions but the bank has 4"));
}

TEST(KnnScorerTest, ScoreRejectsUndefinedTensor) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateKnnScorer("k: 1");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)->Fit(torch::randn({3, 4})).ok());
  EXPECT_EQ((*scorer)->Score(torch::Tensor()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KnnScorerTest, EmptyQueriesGiveEmptyScores) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateKnnScorer("k: 2");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)->Fit(torch::randn({3, 4})).ok());
  absl::StatusOr<torch::Tensor> scores = (*scorer)->Score(torch::empty({0, 4}));
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_EQ(scores->sizes(), torch::IntArrayRef({0}));
}

TEST(KnnScorerTest, RejectsKBelowOne) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateKnnScorer("k: 0");
  ASSERT_EQ(scorer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(scorer.status().message()),
              HasSubstr("KnnScorerOptions.k = 0"));
}

TEST(KnnScorerTest, RejectsBudgetBelowOneMebibyte) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      CreateKnnScorer("memory_budget_mb: 0");
  ASSERT_EQ(scorer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(scorer.status().message()),
              HasSubstr("KnnScorerOptions.memory_budget_mb = 0"));
}

TEST(KnnScorerTest, RejectsOptionsOfAnotherType) {
  google::protobuf::Any any;
  any.PackFrom(google::protobuf::Empty());
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      ScorerRegistry().Create("knn", any);
  ASSERT_EQ(scorer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(scorer.status().message()),
              HasSubstr("panda.KnnScorerOptions"));
}

}  // namespace
}  // namespace panda
