#include "metrics/average_precision.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

// Second implementation: for each distinct score, counts the examples at or
// above it from scratch (O(n^2)) and adds (R_n - R_{n-1}) * P_n.
double AveragePrecisionByDefinition(const std::vector<float>& scores,
                                    const std::vector<int>& labels) {
  const std::set<float> distinct(scores.begin(), scores.end());
  double positives = 0;
  for (int label : labels) positives += label;

  double sum = 0;
  double previous_recall = 0;
  for (auto it = distinct.rbegin(); it != distinct.rend(); ++it) {
    double true_positives = 0;
    double predicted = 0;
    for (size_t i = 0; i < scores.size(); ++i) {
      if (scores[i] < *it) continue;
      predicted += 1;
      true_positives += labels[i];
    }
    const double recall = true_positives / positives;
    sum += (recall - previous_recall) * (true_positives / predicted);
    previous_recall = recall;
  }
  return sum;
}

double ApOrDie(const std::vector<float>& scores,
               const std::vector<int>& labels) {
  absl::StatusOr<double> ap = AveragePrecision(scores, labels);
  EXPECT_TRUE(ap.ok()) << ap.status();
  return ap.ok() ? *ap : std::numeric_limits<double>::quiet_NaN();
}

TEST(AveragePrecisionTest, PerfectRankingIsOne) {
  // Thresholds 0.9 and 0.8 each add recall 1/2 at precision 1.
  EXPECT_EQ(ApOrDie({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}), 1.0);
}

TEST(AveragePrecisionTest, WorkedExample) {
  // Scores 0.9 to 0.5 with labels 1, 0, 1, 0, 1 (3 anomalies):
  //   0.9: TP 1, FP 0: recall +1/3 at precision 1/1
  //   0.8: TP 1, FP 1: no new recall
  //   0.7: TP 2, FP 1: recall +1/3 at precision 2/3
  //   0.6: TP 2, FP 2: no new recall
  //   0.5: TP 3, FP 2: recall +1/3 at precision 3/5
  // AP = 1/3 + 2/9 + 1/5 = 34/45.
  EXPECT_DOUBLE_EQ(ApOrDie({0.9f, 0.8f, 0.7f, 0.6f, 0.5f}, {1, 0, 1, 0, 1}),
                   34.0 / 45.0);
}

TEST(AveragePrecisionTest, TiedScoresFormOneThreshold) {
  // All four scores tie, so the one threshold gives recall 1 at precision
  // 2/4: AP = 1/2. Ranking the anomalies first would give 1, and ranking
  // them last (1/3 + 2/4) / 2 = 5/12.
  EXPECT_EQ(ApOrDie({1.f, 1.f, 1.f, 1.f}, {1, 1, 0, 0}), 0.5);
}

TEST(AveragePrecisionTest, TieGroupAboveAnAnomaly) {
  // 0.5 (labels 1, 0, 0): recall +1/2 at precision 1/3.
  // 0.2 (label 1): recall +1/2 at precision 2/4.
  // AP = 1/6 + 1/4 = 5/12.
  EXPECT_DOUBLE_EQ(ApOrDie({0.5f, 0.5f, 0.5f, 0.2f}, {1, 0, 0, 1}), 5.0 / 12.0);
}

TEST(AveragePrecisionTest, AllTiedEqualsPrevalence) {
  // One threshold: recall 1 at precision 2/5.
  EXPECT_DOUBLE_EQ(ApOrDie({0.3f, 0.3f, 0.3f, 0.3f, 0.3f}, {1, 0, 0, 1, 0}),
                   0.4);
}

TEST(AveragePrecisionTest, InfiniteScores) {
  // +inf (label 1): recall +1/2 at precision 1. 0 (label 0): none.
  // -inf (label 1): recall +1/2 at precision 2/3. AP = 1/2 + 1/3.
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_DOUBLE_EQ(ApOrDie({inf, 0.f, -inf}, {1, 0, 1}), 5.0 / 6.0);
}

// Cases and expected values from scikit-learn 1.2.1
// (sklearn.metrics.average_precision_score) under Debian 12's Python 3.
// The scores were drawn with numpy's default_rng(20261204).
TEST(AveragePrecisionTest, MatchesScikitLearn) {
  struct Case {
    std::vector<float> scores;
    std::vector<int> labels;
    double expected;
  };
  const std::vector<Case> cases = {
      {{2.46875f,   -2.34375f, -1.828125f, 1.03125f,   -0.546875f, 0.859375f,
        1.515625f,  -1.3125f,  2.25f,      0.625f,     -2.15625f,  0.34375f,
        0.8125f,    1.25f,     -0.34375f,  -0.328125f, -2.78125f,  0.140625f,
        -0.640625f, 0.59375f,  1.609375f,  -0.78125f,  0.046875f,  0.890625f,
        1.265625f,  1.015625f, 0.234375f,  -0.734375f, 1.109375f,  -0.78125f},
       {0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0,
        0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0},
       0.47010994100778253},
      {{0.25f, 0.25f, 0.25f, 0.5f, 0.75f, 0.5f,  0.0f,  0.0f, 0.75f, 0.0f,
        1.25f, 0.25f, 0.0f,  0.0f, 0.25f, 0.0f,  0.0f,  1.0f, 0.0f,  0.5f,
        0.75f, 0.5f,  0.25f, 0.5f, 0.75f, 1.25f, 0.5f,  0.0f, 0.25f, 1.0f,
        0.5f,  0.0f,  0.75f, 1.0f, 1.25f, 0.0f,  1.25f, 0.5f, 0.0f,  0.5f},
       {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1,
        0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1},
       0.34761904761904755},
      {{0.921875f,   0.92578125f, 0.03515625f, 0.83203125f, 0.65234375f,
        0.78515625f, 0.50390625f, 0.05078125f, 0.41015625f, 0.7578125f,
        0.359375f,   0.7734375f,  0.296875f,   0.33203125f, 0.12890625f,
        0.6484375f,  0.26171875f, 0.91796875f, 0.77734375f, 0.0625f,
        0.41015625f, 0.2421875f,  0.79296875f, 0.91015625f, 0.140625f,
        0.7421875f,  0.55078125f, 0.06640625f, 0.00390625f, 0.39453125f,
        0.0625f,     0.6015625f,  0.82421875f, 0.046875f,   0.5078125f,
        0.640625f,   0.890625f,   0.875f,      0.53515625f, 0.5859375f,
        0.9453125f,  1.0f,        0.890625f,   0.70703125f, 0.35546875f,
        0.37109375f, 0.734375f,   0.07421875f, 0.34765625f, 0.328125f},
       {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0},
       0.18107785933872891},
  };
  ASSERT_FALSE(cases.empty());
  for (size_t c = 0; c < cases.size(); ++c) {
    EXPECT_NEAR(ApOrDie(cases[c].scores, cases[c].labels), cases[c].expected,
                1e-12)
        << "case " << c;
  }
}

TEST(AveragePrecisionTest, MatchesDefinitionOnRandomData) {
  std::mt19937 generator(20261204);
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
    labels[0] = 0;
    labels[1] = 1;

    EXPECT_NEAR(ApOrDie(scores, labels),
                AveragePrecisionByDefinition(scores, labels), 1e-12)
        << "trial " << trial << ", " << size << " examples";
  }
}

TEST(AveragePrecisionTest, RejectsSizeMismatch) {
  absl::StatusOr<double> ap = AveragePrecision({0.1f, 0.2f, 0.3f}, {0, 1});
  ASSERT_EQ(ap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ap.status().message()),
              HasSubstr("3 scores and 2 labels"));
}

TEST(AveragePrecisionTest, RejectsEmptyInput) {
  absl::StatusOr<double> ap = AveragePrecision({}, {});
  ASSERT_EQ(ap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ap.status().message()), HasSubstr("empty"));
}

TEST(AveragePrecisionTest, RejectsNanScore) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<double> ap = AveragePrecision({nan, 0.2f}, {0, 1});
  ASSERT_EQ(ap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ap.status().message()), HasSubstr("score 0 is NaN"));
}

TEST(AveragePrecisionTest, RejectsBadLabel) {
  absl::StatusOr<double> ap = AveragePrecision({0.1f, 0.2f}, {0, 2});
  ASSERT_EQ(ap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ap.status().message()), HasSubstr("label 1 is 2"));
}

TEST(AveragePrecisionTest, RejectsOneClass) {
  absl::StatusOr<double> normal = AveragePrecision({0.1f, 0.2f}, {0, 0});
  ASSERT_EQ(normal.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(normal.status().message()),
              HasSubstr("2 normal (0) and 0 anomalous (1)"));

  absl::StatusOr<double> anomalous = AveragePrecision({0.1f}, {1});
  ASSERT_EQ(anomalous.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(anomalous.status().message()),
              HasSubstr("0 normal (0) and 1 anomalous (1)"));
}

}  // namespace
}  // namespace panda
