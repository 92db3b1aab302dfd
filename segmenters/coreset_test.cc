#include "segmenters/coreset.h"

#include <limits>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

// Greedy k-centre written out plainly in double precision: distances from
// scratch on every pick, starting from `first`.
std::vector<int64_t> PlainGreedy(const torch::Tensor& bank, int64_t count, int64_t first) {
  const torch::Tensor points = bank.to(torch::kFloat64);
  const int64_t rows = points.size(0);
  std::vector<int64_t> picked = {first};
  while (static_cast<int64_t>(picked.size()) < count) {
    int64_t farthest = -1;
    double farthest_distance = -1;
    for (int64_t r = 0; r < rows; ++r) {
      double nearest = std::numeric_limits<double>::infinity();
      for (int64_t p : picked) {
        nearest = std::min(nearest, (points[r] - points[p]).pow(2).sum().item<double>());
      }
      if (nearest > farthest_distance) {
        farthest_distance = nearest;
        farthest = r;
      }
    }
    picked.push_back(farthest);
  }
  return picked;
}

std::vector<int64_t> ToVector(const torch::Tensor& indices) {
  return std::vector<int64_t>(indices.data_ptr<int64_t>(),
                              indices.data_ptr<int64_t>() + indices.numel());
}

TEST(CoresetTest, MatchesPlainGreedyWithoutProjection) {
  torch::manual_seed(1);
  const torch::Tensor bank = torch::randn({60, 5});
  absl::StatusOr<torch::Tensor> picked =
      GreedyCoresetIndices(bank, 12, /*projection_dim=*/0, /*seed=*/3, "test");
  ASSERT_TRUE(picked.ok()) << picked.status();
  const std::vector<int64_t> indices = ToVector(*picked);
  EXPECT_EQ(indices, PlainGreedy(bank, 12, indices[0]));
}

TEST(CoresetTest, ProjectionDimensionAtLeastTheFeaturesChangesNothing) {
  torch::manual_seed(2);
  const torch::Tensor bank = torch::randn({40, 6});
  absl::StatusOr<torch::Tensor> plain = GreedyCoresetIndices(bank, 8, 0, 5, "test");
  absl::StatusOr<torch::Tensor> wide = GreedyCoresetIndices(bank, 8, 6, 5, "test");
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(ToVector(*plain), ToVector(*wide));
}

TEST(CoresetTest, ProjectedSelectionIsDistinctAndFollowsTheSeed) {
  torch::manual_seed(3);
  const torch::Tensor bank = torch::randn({500, 64});
  absl::StatusOr<torch::Tensor> a = GreedyCoresetIndices(bank, 50, 16, 9, "test");
  absl::StatusOr<torch::Tensor> b = GreedyCoresetIndices(bank, 50, 16, 9, "test");
  absl::StatusOr<torch::Tensor> c = GreedyCoresetIndices(bank, 50, 16, 10, "test");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(c.ok());
  const std::vector<int64_t> picked = ToVector(*a);
  EXPECT_EQ(picked, ToVector(*b));
  EXPECT_NE(picked, ToVector(*c));
  EXPECT_EQ(std::set<int64_t>(picked.begin(), picked.end()).size(), picked.size());
}

// Three tight clusters: three picks must take one point from each, whatever
// the first pick.
TEST(CoresetTest, ThreePicksCoverThreeClusters) {
  torch::manual_seed(4);
  torch::Tensor bank = torch::randn({30, 2}) * 0.01;
  bank.slice(0, 10, 20) += torch::tensor({10.0f, 0.0f});
  bank.slice(0, 20, 30) += torch::tensor({0.0f, 10.0f});
  absl::StatusOr<torch::Tensor> picked = GreedyCoresetIndices(bank, 3, 0, 0, "test");
  ASSERT_TRUE(picked.ok());
  std::set<int64_t> clusters;
  for (int64_t index : ToVector(*picked)) clusters.insert(index / 10);
  EXPECT_EQ(clusters.size(), 3u);
}

TEST(CoresetTest, RejectsBadCountsAndValues) {
  const torch::Tensor bank = torch::randn({10, 3});
  EXPECT_EQ(GreedyCoresetIndices(bank, 0, 0, 0, "coreset").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GreedyCoresetIndices(bank, 11, 0, 0, "coreset").status().code(),
            absl::StatusCode::kInvalidArgument);
  torch::Tensor with_nan = bank.clone();
  with_nan[4][1] = std::numeric_limits<float>::quiet_NaN();
  absl::Status status = GreedyCoresetIndices(with_nan, 3, 0, 0, "coreset").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("NaN"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace panda
