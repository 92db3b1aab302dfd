#include "metrics/roc_auc.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

// Second implementation: counts every (anomalous, normal) pair, O(n^2).
double PairCountingAuc(const std::vector<float>& scores,
                       const std::vector<int>& labels) {
  double wins = 0;
  double pairs = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (labels[i] != 1) continue;
    for (size_t j = 0; j < scores.size(); ++j) {
      if (labels[j] != 0) continue;
      pairs += 1;
      if (scores[i] > scores[j]) wins += 1;
      if (scores[i] == scores[j]) wins += 0.5;
    }
  }
  return wins / pairs;
}

double AucOrDie(const std::vector<float>& scores,
                const std::vector<int>& labels) {
  absl::StatusOr<double> auc = RocAuc(scores, labels);
  EXPECT_TRUE(auc.ok()) << auc.status();
  return auc.ok() ? *auc : std::numeric_limits<double>::quiet_NaN();
}

TEST(RocAucTest, PerfectSeparationIsOne) {
  // Both anomalies score above both normals: 4 wins of 4 pairs.
  EXPECT_EQ(AucOrDie({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}), 1.0);
}

TEST(RocAucTest, ReversedOrderIsZero) {
  // Both anomalies score below both normals: 0 wins of 4 pairs.
  EXPECT_EQ(AucOrDie({0.8f, 0.9f, 0.1f, 0.2f}, {0, 0, 1, 1}), 0.0);
}

TEST(RocAucTest, AllTiedIsHalf) {
  // 2 anomalies x 3 normals = 6 tied pairs, each worth 1/2: 3 / 6.
  EXPECT_EQ(AucOrDie({0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, {0, 1, 0, 1, 0}), 0.5);
}

TEST(RocAucTest, WorkedExample) {
  // Anomalies 0.35 and 0.8, normals 0.1 and 0.4:
  //   0.35 > 0.1 wins, 0.35 < 0.4 loses, 0.8 beats both.
  // 3 wins of 4 pairs = 0.75.
  EXPECT_EQ(AucOrDie({0.1f, 0.4f, 0.35f, 0.8f}, {0, 0, 1, 1}), 0.75);
}

TEST(RocAucTest, TieAcrossClassesCountsHalf) {
  // Anomalies 0.5 and 0.9, normals 0.2 and 0.5:
  //   0.5 beats 0.2 (1) and ties 0.5 (1/2), 0.9 beats both (2).
  // 3.5 of 4 pairs = 0.875.
  EXPECT_EQ(AucOrDie({0.2f, 0.5f, 0.5f, 0.9f}, {0, 0, 1, 1}), 0.875);
}

TEST(RocAucTest, TieGroupWithBothClasses) {
  // Anomalies score 1, 1 and 0. Normals score 1 and 2.
  //   Each anomaly at 1 ties the normal at 1 (1/2) and loses to 2: 1/2 each.
  //   The anomaly at 0 loses to both normals: 0.
  // 1 win of 3 x 2 = 6 pairs = 1/6.
  EXPECT_DOUBLE_EQ(AucOrDie({1.f, 1.f, 1.f, 2.f, 0.f}, {0, 1, 1, 0, 1}),
                   1.0 / 6.0);
}

TEST(RocAucTest, SignedZerosTie) {
  // -0.0 == 0.0, so the one pair is a tie worth 1/2.
  EXPECT_EQ(AucOrDie({-0.0f, 0.0f}, {1, 0}), 0.5);
}

TEST(RocAucTest, InfiniteScoresRankAtTheEnds) {
  // The anomaly at +inf beats both normals, the one at -inf beats neither:
  // 2 wins of 4 pairs.
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(AucOrDie({inf, -inf, 0.f, 1.f}, {1, 1, 0, 0}), 0.5);
}

TEST(RocAucTest, MatchesPairCountingOnRandomData) {
  std::mt19937 generator(20240601);
  for (int trial = 0; trial < 200; ++trial) {
    const int size = 2 + trial % 60;
    // Few distinct levels on odd trials, so many ties cross the classes.
    std::uniform_int_distribution<int> level(0, trial % 2 == 1 ? 4 : 1000000);
    std::bernoulli_distribution anomalous(0.3);

    std::vector<float> scores(size);
    std::vector<int> labels(size);
    for (int i = 0; i < size; ++i) {
      scores[i] = static_cast<float>(level(generator)) / 7.0f;
      labels[i] = anomalous(generator) ? 1 : 0;
    }
    // Makes sure both classes are present.
    labels[0] = 0;
    labels[1] = 1;

    absl::StatusOr<double> auc = RocAuc(scores, labels);
    ASSERT_TRUE(auc.ok()) << auc.status();
    EXPECT_NEAR(*auc, PairCountingAuc(scores, labels), 1e-12)
        << "trial " << trial << ", " << size << " examples";
  }
}

TEST(RocAucTest, RejectsSizeMismatch) {
  absl::StatusOr<double> auc = RocAuc({0.1f, 0.2f, 0.3f}, {0, 1});
  ASSERT_EQ(auc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(auc.status().message()),
              HasSubstr("3 scores and 2 labels"));
}

TEST(RocAucTest, RejectsEmptyInput) {
  absl::StatusOr<double> auc = RocAuc({}, {});
  ASSERT_EQ(auc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(auc.status().message()), HasSubstr("empty"));
}

TEST(RocAucTest, RejectsLabelOtherThanZeroOrOne) {
  absl::StatusOr<double> auc = RocAuc({0.1f, 0.2f, 0.3f}, {0, 2, 1});
  ASSERT_EQ(auc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(auc.status().message()), HasSubstr("label 1 is 2"));
}

TEST(RocAucTest, RejectsNegativeLabel) {
  absl::StatusOr<double> auc = RocAuc({0.1f, 0.2f}, {-1, 1});
  ASSERT_EQ(auc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(auc.status().message()), HasSubstr("label 0 is -1"));
}

TEST(RocAucTest, RejectsNanScore) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<double> auc = RocAuc({0.1f, 0.2f, nan}, {0, 1, 1});
  ASSERT_EQ(auc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(auc.status().message()), HasSubstr("score 2 is NaN"));
}

TEST(RocAucTest, RejectsOnlyNormalLabels) {
  absl::StatusOr<double> auc = RocAuc({0.1f, 0.2f, 0.3f}, {0, 0, 0});
  ASSERT_EQ(auc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(auc.status().message()),
              HasSubstr("3 normal (0) and 0 anomalous (1)"));
}

TEST(RocAucTest, RejectsOnlyAnomalousLabels) {
  absl::StatusOr<double> auc = RocAuc({0.1f, 0.2f}, {1, 1});
  ASSERT_EQ(auc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(auc.status().message()),
              HasSubstr("0 normal (0) and 2 anomalous (1)"));
}

}  // namespace
}  // namespace panda
