#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/atomic_file.h"
#include "gmock/gmock.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "scorers/hnsw_scorer_options.pb.h"
#include "scorers/scorer.h"
#include "torch/types.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

// Creates the "hnsw" scorer through the registry, as a pipeline config would.
absl::StatusOr<std::unique_ptr<Scorer>> CreateHnswScorer(
    const std::string& text_options) {
  HnswScorerOptions options;
  if (!google::protobuf::TextFormat::ParseFromString(text_options, &options)) {
    return absl::InvalidArgumentError("invalid test options text: " +
                                      text_options);
  }
  google::protobuf::Any any;
  any.PackFrom(options);
  return ScorerRegistry().Create("hnsw", any);
}

std::vector<float> RandomValues(int64_t count, uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(count);
  for (float& value : values) value = normal(generator);
  return values;
}

torch::Tensor ToTensor(std::vector<float> values, int64_t rows, int64_t cols) {
  return torch::from_blob(values.data(), {rows, cols}, torch::kFloat32).clone();
}

// PANDA's score in double precision by plain loops, as in knn_scorer_test.
std::vector<double> ReferenceScores(const std::vector<float>& queries,
                                    const std::vector<float>& bank,
                                    int64_t dims, int64_t k, bool cosine,
                                    bool mean) {
  const int64_t num_queries = static_cast<int64_t>(queries.size()) / dims;
  const int64_t bank_size = static_cast<int64_t>(bank.size()) / dims;
  std::vector<double> scores;
  for (int64_t q = 0; q < num_queries; ++q) {
    std::vector<double> distances;
    for (int64_t b = 0; b < bank_size; ++b) {
      double squared = 0;
      double dot = 0;
      double q_norm = 0;
      double b_norm = 0;
      for (int64_t c = 0; c < dims; ++c) {
        const double x = queries[q * dims + c];
        const double y = bank[b * dims + c];
        squared += (x - y) * (x - y);
        dot += x * y;
        q_norm += x * x;
        b_norm += y * y;
      }
      distances.push_back(cosine ? 1.0 - dot / std::sqrt(q_norm * b_norm)
                                 : squared);
    }
    std::sort(distances.begin(), distances.end());
    double score = 0;
    for (int64_t j = 0; j < k; ++j) score += distances[j];
    scores.push_back(mean ? score / k : score);
  }
  return scores;
}

// Fraction of queries whose score is within 1e-4 (relative) of the exact
// score, that is whose k neighbours were all found.
double FractionExact(const torch::Tensor& scores,
                     const std::vector<double>& expected) {
  EXPECT_EQ(scores.numel(), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(scores.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(scores.device().is_cpu());
  const torch::Tensor contiguous = scores.contiguous();
  int64_t exact = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double score = contiguous[i].item<float>();
    // An approximate neighbour is never nearer than the true one.
    EXPECT_GE(score, expected[i] - 1e-4 * (1 + expected[i])) << "query " << i;
    exact += std::abs(score - expected[i]) <= 1e-4 * (1 + expected[i]);
  }
  return static_cast<double>(exact) / expected.size();
}

constexpr int64_t kDims = 8;
constexpr int64_t kBankRows = 500;
constexpr int64_t kQueryRows = 60;

TEST(HnswScorerTest, EveryMetricAndAggregationMatchesExactSearch) {
  const std::vector<float> bank = RandomValues(kBankRows * kDims, 1);
  const std::vector<float> queries = RandomValues(kQueryRows * kDims, 2);
  for (const std::string metric : {"L2", "COSINE"}) {
    for (const std::string aggregation : {"SUM", "MEAN"}) {
      for (int64_t k : {1, 2, 4}) {
        // ef = 500 explores the whole bank, so the search is near exact.
        const std::string options =
            "k: " + std::to_string(k) + " metric: " + metric +
            " aggregation: " + aggregation + " ef: 500 num_threads: 2";
        SCOPED_TRACE(options);
        absl::StatusOr<std::unique_ptr<Scorer>> scorer =
            CreateHnswScorer(options);
        ASSERT_TRUE(scorer.ok()) << scorer.status();
        ASSERT_TRUE((*scorer)->Fit(ToTensor(bank, kBankRows, kDims)).ok());
        absl::StatusOr<torch::Tensor> scores =
            (*scorer)->Score(ToTensor(queries, kQueryRows, kDims));
        ASSERT_TRUE(scores.ok()) << scores.status();
        EXPECT_GE(FractionExact(*scores, ReferenceScores(
                                             queries, bank, kDims, k,
                                             metric == "COSINE",
                                             aggregation == "MEAN")),
                  0.98);
      }
    }
  }
}

TEST(HnswScorerTest, DefaultOptionsSumTwoNeighboursWithDuplicates) {
  // As for the "knn" scorer: (0, 0) has neighbours at 1, 1 (a duplicate)
  // and 4; (2, 0) is at 0 from itself and 1 from both copies of (1, 0).
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      ScorerRegistry().Create("hnsw", google::protobuf::Any());
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE(
      (*scorer)->Fit(torch::tensor({{1.f, 0.f}, {2.f, 0.f}, {1.f, 0.f}})).ok());
  absl::StatusOr<torch::Tensor> scores =
      (*scorer)->Score(torch::tensor({{0.f, 0.f}, {2.f, 0.f}}));
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_TRUE(torch::equal(*scores, torch::tensor({2.f, 1.f}))) << *scores;
}

TEST(HnswScorerTest, CosineTiesAndMean) {
  // From (2, 0): (1, 0) and (3, 0) at 0, (0, 1) and (0, -1) tie at 1.
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      CreateHnswScorer("k: 4 metric: COSINE aggregation: MEAN");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)
                  ->Fit(torch::tensor(
                      {{0.f, 1.f}, {1.f, 0.f}, {0.f, -1.f}, {3.f, 0.f}}))
                  .ok());
  absl::StatusOr<torch::Tensor> scores =
      (*scorer)->Score(torch::tensor({{2.f, 0.f}}));
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_NEAR(scores->item<float>(), 0.5, 1e-6);
}

TEST(HnswScorerTest, ScoreBeforeFitFails) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateHnswScorer("");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  EXPECT_EQ((*scorer)->Score(torch::randn({2, 3})).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(HnswScorerTest, FitRejectsBadBanks) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateHnswScorer("k: 5");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  absl::Status status = (*scorer)->Fit(torch::randn({3, 4}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("hnsw scorer Fit: k = 5 exceeds the 3 training"));

  torch::Tensor nan_bank = torch::randn({6, 4});
  nan_bank[2][1] = std::numeric_limits<float>::quiet_NaN();
  status = (*scorer)->Fit(nan_bank);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("bank contains NaN or infinite values, first in row 2"));

  absl::StatusOr<std::unique_ptr<Scorer>> cosine =
      CreateHnswScorer("k: 1 metric: COSINE");
  ASSERT_TRUE(cosine.ok()) << cosine.status();
  status = (*cosine)->Fit(torch::tensor({{1.f, 0.f}, {0.f, 0.f}}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("training features row 1 has zero L2 norm"));
}

TEST(HnswScorerTest, ScoreRejectsBadQueries) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      CreateHnswScorer("k: 1 metric: COSINE");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)->Fit(torch::randn({5, 4})).ok());

  auto message = [&](const torch::Tensor& queries) {
    return std::string((*scorer)->Score(queries).status().message());
  };
  EXPECT_THAT(message(torch::randn({2, 6})),
              HasSubstr("queries have 6 dimensions but the bank has 4"));
  EXPECT_THAT(message(torch::Tensor()), HasSubstr("undefined tensor"));
  EXPECT_THAT(message(torch::randn({2, 4}, torch::kFloat64)),
              HasSubstr("must be a float32 [rows, dims] tensor"));
  torch::Tensor nan_queries = torch::randn({3, 4});
  nan_queries[1][2] = std::numeric_limits<float>::infinity();
  EXPECT_THAT(message(nan_queries),
              HasSubstr("NaN or infinite values, first in row 1"));
  EXPECT_THAT(message(torch::zeros({1, 4})),
              HasSubstr("queries row 0 has zero L2 norm"));

  absl::StatusOr<torch::Tensor> empty = (*scorer)->Score(torch::empty({0, 4}));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->sizes(), torch::IntArrayRef({0}));
}

TEST(HnswScorerTest, RejectsInvalidOptions) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"k: 0", "HnswScorerOptions.k = 0"},
      {"m: 1", "HnswScorerOptions.m = 1"},
      {"m: 10001", "HnswScorerOptions.m = 10001"},
      {"ef_construction: 0", "HnswScorerOptions.ef_construction = 0"},
      {"ef: 0", "HnswScorerOptions.ef = 0"},
      {"num_threads: -1", "HnswScorerOptions.num_threads = -1"},
  };
  for (const auto& [options, message] : cases) {
    absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateHnswScorer(options);
    ASSERT_EQ(scorer.status().code(), absl::StatusCode::kInvalidArgument)
        << options;
    EXPECT_THAT(std::string(scorer.status().message()), HasSubstr(message));
  }

  google::protobuf::Any any;
  any.PackFrom(google::protobuf::Empty());
  EXPECT_THAT(
      std::string(ScorerRegistry().Create("hnsw", any).status().message()),
      HasSubstr("panda.HnswScorerOptions"));
}

// Index files in a fresh folder per test.
class HnswScorerCacheTest : public testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::string(testing::TempDir()) + "/hnsw_scorer_cache_" +
                 testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(directory_);
    bank_ = ToTensor(RandomValues(kBankRows * kDims, 3), kBankRows, kDims);
    other_bank_ =
        ToTensor(RandomValues(kBankRows * kDims, 4), kBankRows, kDims);
    queries_ = ToTensor(RandomValues(kQueryRows * kDims, 5), kQueryRows, kDims);
  }

  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::string IndexPath(const std::string& bank_id) const {
    return directory_ + "/hnsw/" + bank_id + "-l2-m8-efc50.hnsw";
  }

  // Fits a fresh scorer on `bank` under `bank_id` and scores the queries.
  torch::Tensor FitAndScore(const torch::Tensor& bank,
                            const std::string& bank_id,
                            const std::string& extra_options = "") {
    absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateHnswScorer(
        "m: 8 ef_construction: 50 ef: 20 num_threads: 1 " + extra_options);
    EXPECT_TRUE(scorer.ok()) << scorer.status();
    (*scorer)->SetCacheLocation(directory_, bank_id);
    const absl::Status fitted = (*scorer)->Fit(bank);
    EXPECT_TRUE(fitted.ok()) << fitted;
    absl::StatusOr<torch::Tensor> scores = (*scorer)->Score(queries_);
    EXPECT_TRUE(scores.ok()) << scores.status();
    return scores.ok() ? *scores : torch::Tensor();
  }

  std::string ReadBytes(const std::string& path) const {
    std::string bytes;
    EXPECT_TRUE(ReadFile(path, &bytes).ok()) << path;
    return bytes;
  }

  void WriteBytes(const std::string& path, const std::string& bytes) const {
    ASSERT_TRUE(WriteFileAtomically(path, bytes).ok()) << path;
  }

  // Damages the index of "bank" with `damage`, then checks that a new
  // scorer rebuilds it: same scores as a build from scratch, and a file that
  // is again identical to the original (a one-thread build is
  // deterministic).
  template <typename Damage>
  void ExpectRebuildAfter(const Damage& damage) {
    const torch::Tensor built = FitAndScore(bank_, "bank");
    const std::string original = ReadBytes(IndexPath("bank"));
    std::string damaged = original;
    damage(damaged);
    WriteBytes(IndexPath("bank"), damaged);

    const torch::Tensor rebuilt = FitAndScore(bank_, "bank");
    EXPECT_TRUE(torch::equal(built, rebuilt));
    EXPECT_TRUE(ReadBytes(IndexPath("bank")) == original)
        << "the damaged index was not replaced";
  }

  std::string directory_;
  torch::Tensor bank_;
  torch::Tensor other_bank_;
  torch::Tensor queries_;
};

// Offset of the training-features checksum in the file header.
constexpr size_t kFeaturesChecksumOffset = 48;
constexpr size_t kHeaderBytes = 72;

TEST_F(HnswScorerCacheTest, FitWritesIndexFile) {
  FitAndScore(bank_, "bank");
  ASSERT_TRUE(std::filesystem::exists(IndexPath("bank")));
  EXPECT_EQ(ReadBytes(IndexPath("bank")).substr(0, 8), "PANDAHNS");
}

TEST_F(HnswScorerCacheTest, FitLoadsStoredIndex) {
  // The stored file of "bank" is replaced by the graph of another bank whose
  // header claims the first bank's features. Scores from that graph prove
  // that Fit() loaded the file instead of building anew.
  const torch::Tensor own_scores = FitAndScore(bank_, "bank");
  const torch::Tensor other_scores = FitAndScore(other_bank_, "other");
  ASSERT_FALSE(torch::equal(own_scores, other_scores));

  std::string swapped = ReadBytes(IndexPath("other"));
  const std::string own = ReadBytes(IndexPath("bank"));
  std::memcpy(swapped.data() + kFeaturesChecksumOffset,
              own.data() + kFeaturesChecksumOffset, 8);
  WriteBytes(IndexPath("bank"), swapped);

  const torch::Tensor loaded_scores = FitAndScore(bank_, "bank");
  EXPECT_TRUE(torch::equal(loaded_scores, other_scores));
}

TEST_F(HnswScorerCacheTest, TruncatedIndexIsRebuilt) {
  ExpectRebuildAfter([](std::string& bytes) { bytes.resize(bytes.size() / 2); });
}

TEST_F(HnswScorerCacheTest, TruncatedHeaderIsRebuilt) {
  ExpectRebuildAfter([](std::string& bytes) { bytes.resize(10); });
}

TEST_F(HnswScorerCacheTest, BitFlippedPayloadIsRebuilt) {
  ExpectRebuildAfter([](std::string& bytes) { bytes[kHeaderBytes + 500] ^= 4; });
}

TEST_F(HnswScorerCacheTest, WrongDimensionIndexIsRebuilt) {
  // Header field dim (offset 16) claims 3 dimensions.
  ExpectRebuildAfter([](std::string& bytes) {
    const int64_t dim = 3;
    std::memcpy(bytes.data() + 16, &dim, sizeof(dim));
  });
}

TEST_F(HnswScorerCacheTest, WrongChecksumIndexIsRebuilt) {
  ExpectRebuildAfter([](std::string& bytes) {
    bytes[kFeaturesChecksumOffset] ^= 1;
  });
  ExpectRebuildAfter([](std::string& bytes) {
    bytes[kFeaturesChecksumOffset + 8] ^= 1;  // the payload checksum
  });
}

TEST_F(HnswScorerCacheTest, GarbageIndexIsRebuilt) {
  ExpectRebuildAfter(
      [](std::string& bytes) { bytes.assign(bytes.size(), '\x7f'); });
}

TEST_F(HnswScorerCacheTest, ChangedFeaturesAreRebuilt) {
  // Same id, other features: the stale file must not be used.
  FitAndScore(other_bank_, "bank");
  const torch::Tensor fresh = FitAndScore(bank_, "fresh");
  EXPECT_TRUE(torch::equal(FitAndScore(bank_, "bank"), fresh));
}

TEST_F(HnswScorerCacheTest, IndexCacheFalseWritesNothing) {
  FitAndScore(bank_, "bank", "index_cache: false");
  EXPECT_FALSE(std::filesystem::exists(directory_));
}

TEST_F(HnswScorerCacheTest, NoCacheLocationWritesNothing) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = CreateHnswScorer("");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  ASSERT_TRUE((*scorer)->Fit(bank_).ok());
  EXPECT_FALSE(std::filesystem::exists(directory_));
}

TEST_F(HnswScorerCacheTest, UnwritableCacheStillScores) {
  // A file where the folder should be makes the write fail; Fit() warns and
  // goes on with the index in memory.
  std::filesystem::create_directories(directory_);
  WriteBytes(directory_ + "/hnsw", "a file, not a folder");
  const torch::Tensor scores = FitAndScore(bank_, "bank");
  EXPECT_EQ(scores.numel(), kQueryRows);
}

}  // namespace
}  // namespace panda
