#include "metrics/normal_score_threshold.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

float ThresholdOrDie(const std::vector<float>& scores, double rate) {
  absl::StatusOr<float> threshold = ThresholdFromNormalScores(scores, rate);
  EXPECT_TRUE(threshold.ok()) << threshold.status();
  return threshold.ok() ? *threshold : std::numeric_limits<float>::quiet_NaN();
}

// Returns 1, 2, ..., n in shuffled order.
std::vector<float> ShuffledRange(int n) {
  std::vector<float> scores;
  for (int i = 1; i <= n; ++i) scores.push_back(static_cast<float>(i));
  std::shuffle(scores.begin(), scores.end(), std::mt19937(n));
  return scores;
}

int64_t CountAbove(const std::vector<float>& scores, float threshold) {
  int64_t count = 0;
  for (float score : scores) count += score > threshold ? 1 : 0;
  return count;
}

TEST(ThresholdFromNormalScoresTest, HandComputedRanks) {
  // Sorted: 1 2 3 4 5 (n = 5). The result is x_k, k = 5 - floor(5 * rate).
  const std::vector<float> scores = {5, 1, 4, 2, 3};
  EXPECT_EQ(ThresholdOrDie(scores, 0.0), 5.f);   // k = 5, none above
  EXPECT_EQ(ThresholdOrDie(scores, 0.1), 5.f);   // floor(0.5) = 0: k = 5
  EXPECT_EQ(ThresholdOrDie(scores, 0.2), 4.f);   // floor(1.0) = 1: k = 4
  EXPECT_EQ(ThresholdOrDie(scores, 0.39), 4.f);  // floor(1.95) = 1: k = 4
  EXPECT_EQ(ThresholdOrDie(scores, 0.4), 3.f);   // floor(2.0) = 2: k = 3
  EXPECT_EQ(ThresholdOrDie(scores, 0.99), 1.f);  // floor(4.95) = 4: k = 1
}

TEST(ThresholdFromNormalScoresTest, RoundingOfRateTimesCount) {
  // In binary floating point 0.29 * 100 = 28.999999999999996, which the
  // tolerance counts as 29 scores allowed above: k = 100 - 29 = 71.
  ASSERT_LT(0.29 * 100, 29.0);
  EXPECT_EQ(ThresholdOrDie(ShuffledRange(100), 0.29), 71.f);
  // 0.1 * 30 = 3: k = 27.
  EXPECT_EQ(ThresholdOrDie(ShuffledRange(30), 0.1), 27.f);
}

TEST(ThresholdFromNormalScoresTest, TiesAndInfinities) {
  // Sorted: 1 2 2 2 3. rate 0.4 allows 2 above: x_3 = 2, and only the 3 lies
  // above it.
  EXPECT_EQ(ThresholdOrDie({2, 3, 2, 1, 2}, 0.4), 2.f);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(ThresholdOrDie({-inf, 0, inf}, 0.0), inf);
  EXPECT_EQ(ThresholdOrDie({-inf, 0, inf}, 0.5), 0.f);  // floor(1.5) = 1
}

TEST(ThresholdFromNormalScoresTest, RateJustBelowOneGivesLowestScore) {
  EXPECT_EQ(ThresholdOrDie(ShuffledRange(10000), std::nextafter(1.0, 0.0)),
            1.f);
}

// Expected values from numpy 1.24.2 under Debian 12's Python 3:
// numpy.quantile(scores, 1 - rate, method="inverted_cdf"). The scores were
// drawn with numpy's default_rng(20261204).
TEST(ThresholdFromNormalScoresTest, MatchesNumpyInvertedCdf) {
  const std::vector<float> scores = {
      0.40625f, 0.875f,   -1.5625f,  0.84375f,  -0.4375f,  1.84375f, -2.0f,
      0.3125f,  1.03125f, 0.875f,    -0.78125f, 0.96875f,  0.875f,   -0.5f,
      2.5625f,  2.53125f, -1.15625f, 1.09375f,  -0.375f,   0.25f,    -0.625f,
      0.34375f, 0.53125f, 2.15625f,  0.53125f,  -1.5625f,  -2.125f,  -0.875f,
      -0.1875f, 2.0625f,  -0.375f,   -0.21875f, -0.15625f, 0.4375f,  -0.65625f,
      -0.4375f, -1.09375f};
  const std::vector<std::pair<double, float>> expected = {
      {0.0, 2.5625f}, {0.01, 2.5625f}, {0.05, 2.53125f}, {0.1, 2.0625f},
      {0.25, 0.875f}, {0.5, 0.25f},    {0.9, -1.5625f},
  };
  ASSERT_FALSE(scores.empty());
  for (const auto& [rate, threshold] : expected) {
    EXPECT_EQ(ThresholdOrDie(scores, rate), threshold) << "rate " << rate;
  }
}

TEST(ThresholdFromNormalScoresTest, BoundsFalseAlarmsOnRandomData) {
  // The result is the smallest input score with at most floor(rate * n)
  // scores strictly above it.
  std::mt19937 generator(11);
  for (int trial = 0; trial < 300; ++trial) {
    const int size = 1 + trial % 50;
    std::uniform_int_distribution<int> level(0, trial % 2 == 1 ? 5 : 100000);
    std::vector<float> scores(size);
    for (float& score : scores) score = static_cast<float>(level(generator));
    const double rate = std::uniform_real_distribution<double>(0, 1)(generator);
    const int64_t allowed = static_cast<int64_t>(std::floor(rate * size));

    const float threshold = ThresholdOrDie(scores, rate);
    EXPECT_NE(std::find(scores.begin(), scores.end(), threshold), scores.end())
        << "trial " << trial;
    EXPECT_LE(CountAbove(scores, threshold), allowed) << "trial " << trial;
    for (float lower : scores) {
      if (lower < threshold) {
        EXPECT_GT(CountAbove(scores, lower), allowed) << "trial " << trial;
      }
    }
  }
}

TEST(ThresholdFromNormalScoresTest, RejectsEmptyScores) {
  absl::StatusOr<float> threshold = ThresholdFromNormalScores({}, 0.05);
  ASSERT_EQ(threshold.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(threshold.status().message()),
              HasSubstr("at least one normal score"));
}

TEST(ThresholdFromNormalScoresTest, RejectsNanScore) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<float> threshold =
      ThresholdFromNormalScores({1.f, 2.f, nan}, 0.05);
  ASSERT_EQ(threshold.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(threshold.status().message()),
              HasSubstr("normal score 2 is NaN"));
}

TEST(ThresholdFromNormalScoresTest, RejectsRateOutsideRange) {
  for (double rate : {-0.1, 1.0, 1.5, std::nan("")}) {
    absl::StatusOr<float> threshold =
        ThresholdFromNormalScores({1.f, 2.f}, rate);
    ASSERT_EQ(threshold.status().code(), absl::StatusCode::kInvalidArgument)
        << rate;
    EXPECT_THAT(std::string(threshold.status().message()),
                HasSubstr("false positive rate is"));
  }
}

}  // namespace
}  // namespace panda
