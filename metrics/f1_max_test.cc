#include "metrics/f1_max.h"

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

F1MaxResult F1MaxOrDie(const std::vector<float>& scores,
                       const std::vector<int>& labels) {
  absl::StatusOr<F1MaxResult> result = F1Max(scores, labels);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : F1MaxResult();
}

// Second implementation: tries every distinct score as the threshold and
// counts from scratch (O(n^2)). It walks the thresholds in descending order
// and replaces the best only on a strictly larger F1, so a tie keeps the
// highest threshold.
F1MaxResult F1MaxByDefinition(const std::vector<float>& scores,
                              const std::vector<int>& labels) {
  const std::set<float> distinct(scores.begin(), scores.end());
  double positives = 0;
  for (int label : labels) positives += label;

  F1MaxResult best;
  best.f1 = -1;
  for (auto it = distinct.rbegin(); it != distinct.rend(); ++it) {
    double true_positives = 0;
    double predicted = 0;
    for (size_t i = 0; i < scores.size(); ++i) {
      if (scores[i] < *it) continue;
      predicted += 1;
      true_positives += labels[i];
    }
    const double precision = true_positives / predicted;
    const double recall = true_positives / positives;
    const double f1 = precision + recall > 0
                          ? 2 * precision * recall / (precision + recall)
                          : 0.0;
    if (f1 > best.f1 + 1e-12) {
      best = {f1, *it, precision, recall};
    }
  }
  return best;
}

TEST(F1MaxTest, WorkedExample) {
  // Scores 0.9 to 0.5 with labels 1, 0, 1, 0, 1 (3 anomalies), using
  // F1 = 2 TP / (TP + FP + 3):
  //   0.9: TP 1, FP 0: 2/4     0.8: TP 1, FP 1: 2/5
  //   0.7: TP 2, FP 1: 4/6     0.6: TP 2, FP 2: 4/7
  //   0.5: TP 3, FP 2: 6/8 = 0.75, the maximum, at precision 3/5 and recall 1.
  const F1MaxResult best =
      F1MaxOrDie({0.9f, 0.8f, 0.7f, 0.6f, 0.5f}, {1, 0, 1, 0, 1});
  EXPECT_EQ(best.f1, 0.75);
  EXPECT_EQ(best.threshold, 0.5f);
  EXPECT_DOUBLE_EQ(best.precision, 0.6);
  EXPECT_EQ(best.recall, 1.0);
}

TEST(F1MaxTest, EqualF1KeepsHighestThreshold) {
  // 2 anomalies, F1 = 2 TP / (TP + FP + 2):
  //   0.9: TP 1, FP 0: 2/3     0.8: TP 1, FP 1: 2/4
  //   0.7: TP 1, FP 2: 2/5     0.6: TP 2, FP 2: 4/6 = 2/3
  // 0.9 and 0.6 tie at 2/3, and the higher threshold wins.
  const F1MaxResult best = F1MaxOrDie({0.9f, 0.8f, 0.7f, 0.6f}, {1, 0, 0, 1});
  EXPECT_DOUBLE_EQ(best.f1, 2.0 / 3.0);
  EXPECT_EQ(best.threshold, 0.9f);
  EXPECT_EQ(best.precision, 1.0);
  EXPECT_EQ(best.recall, 0.5);
}

TEST(F1MaxTest, TiedScoresFormOneThreshold) {
  // 0.5 (labels 1, 0): TP 1, FP 1: 2/4.
  // 0.2 (label 1): TP 2, FP 1: 4/5, the maximum.
  const F1MaxResult best = F1MaxOrDie({0.5f, 0.5f, 0.2f}, {1, 0, 1});
  EXPECT_DOUBLE_EQ(best.f1, 0.8);
  EXPECT_EQ(best.threshold, 0.2f);
  EXPECT_DOUBLE_EQ(best.precision, 2.0 / 3.0);
  EXPECT_EQ(best.recall, 1.0);
}

TEST(F1MaxTest, PerfectSeparationIsOne) {
  const F1MaxResult best = F1MaxOrDie({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1});
  EXPECT_EQ(best.f1, 1.0);
  EXPECT_EQ(best.threshold, 0.8f);
}

// Cases and expected values from scikit-learn 1.2.1 under Debian 12's
// Python 3: with p, r, t = sklearn.metrics.precision_recall_curve(labels,
// scores), F1 = 2 p r / (p + r) over all points but the last, and the
// threshold is the largest t whose F1 is within 1e-12 of the maximum. The
// scores were drawn with numpy's default_rng(20261204).
TEST(F1MaxTest, MatchesScikitLearn) {
  struct Case {
    std::vector<float> scores;
    std::vector<int> labels;
    double f1;
    float threshold;
  };
  const std::vector<Case> cases = {
      {{2.46875f,   -2.34375f, -1.828125f, 1.03125f,   -0.546875f, 0.859375f,
        1.515625f,  -1.3125f,  2.25f,      0.625f,     -2.15625f,  0.34375f,
        0.8125f,    1.25f,     -0.34375f,  -0.328125f, -2.78125f,  0.140625f,
        -0.640625f, 0.59375f,  1.609375f,  -0.78125f,  0.046875f,  0.890625f,
        1.265625f,  1.015625f, 0.234375f,  -0.734375f, 1.109375f,  -0.78125f},
       {0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0,
        0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0},
       0.59459459459459452,
       -0.78125f},
      {{0.25f, 0.25f, 0.25f, 0.5f, 0.75f, 0.5f,  0.0f,  0.0f, 0.75f, 0.0f,
        1.25f, 0.25f, 0.0f,  0.0f, 0.25f, 0.0f,  0.0f,  1.0f, 0.0f,  0.5f,
        0.75f, 0.5f,  0.25f, 0.5f, 0.75f, 1.25f, 0.5f,  0.0f, 0.25f, 1.0f,
        0.5f,  0.0f,  0.75f, 1.0f, 1.25f, 0.0f,  1.25f, 0.5f, 0.0f,  0.5f},
       {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1,
        0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1},
       0.53658536585365846,
       0.25f},
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
       0.27586206896551724,
       0.6015625f},
  };
  ASSERT_FALSE(cases.empty());
  for (size_t c = 0; c < cases.size(); ++c) {
    const F1MaxResult best = F1MaxOrDie(cases[c].scores, cases[c].labels);
    EXPECT_NEAR(best.f1, cases[c].f1, 1e-12) << "case " << c;
    EXPECT_EQ(best.threshold, cases[c].threshold) << "case " << c;
  }
}

TEST(F1MaxTest, MatchesDefinitionOnRandomData) {
  std::mt19937 generator(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int size = 2 + trial % 60;
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

    const F1MaxResult actual = F1MaxOrDie(scores, labels);
    const F1MaxResult expected = F1MaxByDefinition(scores, labels);
    EXPECT_NEAR(actual.f1, expected.f1, 1e-12) << "trial " << trial;
    EXPECT_EQ(actual.threshold, expected.threshold) << "trial " << trial;
    EXPECT_NEAR(actual.precision, expected.precision, 1e-12)
        << "trial " << trial;
    EXPECT_NEAR(actual.recall, expected.recall, 1e-12) << "trial " << trial;
  }
}

TEST(F1MaxTest, RejectsSizeMismatch) {
  absl::StatusOr<F1MaxResult> best = F1Max({0.1f}, {0, 1});
  ASSERT_EQ(best.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(best.status().message()),
              HasSubstr("1 scores and 2 labels"));
}

TEST(F1MaxTest, RejectsEmptyInput) {
  absl::StatusOr<F1MaxResult> best = F1Max({}, {});
  ASSERT_EQ(best.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(best.status().message()), HasSubstr("empty"));
}

TEST(F1MaxTest, RejectsNanScore) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<F1MaxResult> best = F1Max({0.1f, nan}, {0, 1});
  ASSERT_EQ(best.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(best.status().message()),
              HasSubstr("score 1 is NaN"));
}

TEST(F1MaxTest, RejectsOneClass) {
  absl::StatusOr<F1MaxResult> best = F1Max({0.1f, 0.2f, 0.3f}, {1, 1, 1});
  ASSERT_EQ(best.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(best.status().message()),
              HasSubstr("0 normal (0) and 3 anomalous (1)"));
}

}  // namespace
}  // namespace panda
