#include "scorers/smallest_k.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace panda {
namespace {

constexpr float kInfinity = std::numeric_limits<float>::infinity();

// Running list in the empty state MergeSmallestK starts from.
struct Best {
  explicit Best(int64_t k) : values(k, kInfinity), indices(k, -1) {}
  std::vector<float> values;
  std::vector<int64_t> indices;
};

// Candidate values by the definition, then a stable sort by value: the
// order MergeSmallestK promises, earlier candidates first among equals.
std::vector<std::pair<float, int64_t>> SortedCandidates(
    const std::vector<float>& products, const std::vector<float>* bias,
    float factor) {
  std::vector<std::pair<float, int64_t>> candidates;
  for (size_t j = 0; j < products.size(); ++j) {
    const float base = bias != nullptr ? (*bias)[j] : 0.0f;
    candidates.emplace_back(base - factor * products[j],
                            static_cast<int64_t>(j));
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return candidates;
}

// Merges `products` in pieces of `piece` columns, as exact kNN does with
// bank chunks, and checks the result against the sorted reference.
void ExpectMergeMatchesSort(const std::vector<float>& products,
                            const std::vector<float>* bias, float factor,
                            int64_t k, int64_t piece) {
  Best best(k);
  const int64_t cols = static_cast<int64_t>(products.size());
  for (int64_t start = 0; start < cols; start += piece) {
    MergeSmallestK(products.data() + start,
                   bias != nullptr ? bias->data() + start : nullptr, factor,
                   std::min(piece, cols - start), start, k, best.values.data(),
                   best.indices.data());
  }
  const auto expected = SortedCandidates(products, bias, factor);
  for (int64_t j = 0; j < k; ++j) {
    EXPECT_EQ(best.values[j], expected[j].first) << "rank " << j;
    EXPECT_EQ(best.indices[j], expected[j].second) << "rank " << j;
  }
}

TEST(SmallestKTest, MatchesSortForRandomRows) {
  std::mt19937 generator(3);
  std::normal_distribution<float> normal;
  for (int64_t cols : {1, 15, 16, 17, 100, 1000}) {
    std::vector<float> products(cols);
    std::vector<float> bias(cols);
    for (float& value : products) value = normal(generator);
    for (float& value : bias) value = normal(generator);
    for (int64_t k : {int64_t{1}, int64_t{2}, int64_t{5}, cols}) {
      if (k > cols) continue;
      for (int64_t piece : {int64_t{1}, int64_t{7}, int64_t{16}, cols}) {
        SCOPED_TRACE(testing::Message() << "cols " << cols << ", k " << k
                                        << ", piece " << piece);
        ExpectMergeMatchesSort(products, &bias, 2.0f, k, piece);
        ExpectMergeMatchesSort(products, nullptr, 1.0f, k, piece);
      }
    }
  }
}

TEST(SmallestKTest, DuplicatesKeepEarlierIndexFirst) {
  // Candidates -product: 3 at columns 1, 4 and 20 (the minimum), 5 at 0.
  std::vector<float> products(40, -9.0f);
  products[0] = -5.0f;
  products[1] = -3.0f;
  products[4] = -3.0f;
  products[20] = -3.0f;
  for (int64_t piece : {1, 3, 16, 40}) {
    SCOPED_TRACE(testing::Message() << "piece " << piece);
    Best best(4);
    for (int64_t start = 0; start < 40; start += piece) {
      MergeSmallestK(products.data() + start, nullptr, 1.0f,
                     std::min<int64_t>(piece, 40 - start), start, 4,
                     best.values.data(), best.indices.data());
    }
    EXPECT_EQ(best.values, (std::vector<float>{3, 3, 3, 5}));
    EXPECT_EQ(best.indices, (std::vector<int64_t>{1, 4, 20, 0}));
  }
}

TEST(SmallestKTest, TiesWithTheKthKeepTheEarlier) {
  // Every candidate equals 1; the first k columns win.
  const std::vector<float> products(50, -1.0f);
  Best best(3);
  MergeSmallestK(products.data(), nullptr, 1.0f, 50, 100, 3,
                 best.values.data(), best.indices.data());
  EXPECT_EQ(best.values, (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(best.indices, (std::vector<int64_t>{100, 101, 102}));
}

TEST(SmallestKTest, NanCountsAsInfinity) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Candidates are -product: NaN, 2, NaN, 1.
  const std::vector<float> products = {nan, -2.0f, nan, -1.0f};
  Best two(2);
  MergeSmallestK(products.data(), nullptr, 1.0f, 4, 0, 2, two.values.data(),
                 two.indices.data());
  EXPECT_EQ(two.values, (std::vector<float>{1, 2}));
  EXPECT_EQ(two.indices, (std::vector<int64_t>{3, 1}));

  // With k = 4 both NaN candidates fill the last slots as +infinity, so
  // every index is valid.
  Best four(4);
  MergeSmallestK(products.data(), nullptr, 1.0f, 4, 0, 4, four.values.data(),
                 four.indices.data());
  EXPECT_EQ(four.values[0], 1.0f);
  EXPECT_EQ(four.values[1], 2.0f);
  EXPECT_EQ(four.values[2], kInfinity);
  EXPECT_EQ(four.values[3], kInfinity);
  EXPECT_EQ(four.indices[0], 3);
  EXPECT_EQ(four.indices[1], 1);
  EXPECT_GE(std::min(four.indices[2], four.indices[3]), 0);
}

TEST(SmallestKTest, BiasAndFactorFormCandidates) {
  // Candidates bias - 2 * product: 10 - 2 = 8, 1 - 0 = 1, 4 - 4 = 0.
  const std::vector<float> products = {1.0f, 0.0f, 2.0f};
  const std::vector<float> bias = {10.0f, 1.0f, 4.0f};
  Best best(2);
  MergeSmallestK(products.data(), bias.data(), 2.0f, 3, 0, 2,
                 best.values.data(), best.indices.data());
  EXPECT_EQ(best.values, (std::vector<float>{0, 1}));
  EXPECT_EQ(best.indices, (std::vector<int64_t>{2, 1}));
}

}  // namespace
}  // namespace panda
