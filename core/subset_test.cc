#include "core/subset.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

// Ten 1x1 grey images whose pixel equals their index; labels 0,1,0,1,...
ImageSet Alternating() {
  ImageSet set;
  set.images = torch::arange(10, torch::kUInt8).reshape({10, 1, 1, 1});
  for (int i = 0; i < 10; ++i) set.labels.push_back(i % 2);
  return set;
}

std::vector<int> Pixels(const ImageSet& set) {
  std::vector<int> pixels;
  for (int64_t i = 0; i < set.images.size(0); ++i) {
    pixels.push_back(set.images[i].flatten()[0].item<int>());
  }
  return pixels;
}

TEST(SubsetTest, FirstImagesPerClass) {
  ImageSet subset = LimitPerClass(Alternating(), 2, /*random=*/false, 0);
  EXPECT_EQ(Pixels(subset), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(subset.labels, (std::vector<int64_t>{0, 1, 0, 1}));
}

TEST(SubsetTest, MasksFollowTheirImages) {
  ImageSet set = Alternating();
  // Each image's 1x1 mask is 1 for odd pixels, so it must match the pixel.
  set.masks = (set.images.squeeze(3) % 2).to(torch::kUInt8);
  ImageSet subset = LimitPerClass(set, 2, /*random=*/true, 3);
  ASSERT_TRUE(subset.masks.defined());
  ASSERT_EQ(subset.masks.size(0), 4);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(subset.masks[i].flatten()[0].item<int>(), Pixels(subset)[i] % 2);
  }
}

TEST(SubsetTest, RandomSubsetDependsOnSeedOnly) {
  ImageSet a = LimitPerClass(Alternating(), 2, /*random=*/true, 7);
  ImageSet b = LimitPerClass(Alternating(), 2, /*random=*/true, 7);
  EXPECT_EQ(Pixels(a), Pixels(b));
  ASSERT_EQ(a.labels.size(), 4u);
  // Two of each class, in data set order, with labels matching pixels.
  for (size_t i = 0; i < a.labels.size(); ++i) {
    EXPECT_EQ(a.labels[i], Pixels(a)[i] % 2);
    if (i > 0) EXPECT_LT(Pixels(a)[i - 1], Pixels(a)[i]);
  }

  bool any_differs = false;
  for (int seed = 0; seed < 20 && !any_differs; ++seed) {
    any_differs = Pixels(LimitPerClass(Alternating(), 2, true, seed)) != Pixels(a);
  }
  EXPECT_TRUE(any_differs);
}

TEST(SubsetTest, ZeroLimitKeepsAll) {
  EXPECT_EQ(LimitPerClass(Alternating(), 0, true, 3).labels.size(), 10u);
}

TEST(SubsetTest, IndicesNeedOnlyLabels) {
  const std::vector<int64_t> labels = Alternating().labels;
  EXPECT_EQ(LimitPerClassIndices(labels, 2, /*random=*/false, 0),
            (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(LimitPerClassIndices(labels, 0, /*random=*/true, 0),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(LimitPerClassIndices({}, 3, /*random=*/true, 0),
            std::vector<int64_t>{});
}

TEST(SubsetTest, RandomIndicesMatchImageSubset) {
  for (int seed = 0; seed < 5; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    const std::vector<int64_t> indices =
        LimitPerClassIndices(Alternating().labels, 2, /*random=*/true, seed);

    // The same draw written out: one generator shuffles each class's
    // indices in label order, and the first two of each are kept.
    std::mt19937_64 generator(static_cast<uint64_t>(seed));
    std::vector<int64_t> even = {0, 2, 4, 6, 8}, odd = {1, 3, 5, 7, 9};
    std::shuffle(even.begin(), even.end(), generator);
    std::shuffle(odd.begin(), odd.end(), generator);
    std::vector<int64_t> expected = {even[0], even[1], odd[0], odd[1]};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(indices, expected);

    // Pixels equal indices in Alternating().
    const std::vector<int> pixels =
        Pixels(LimitPerClass(Alternating(), 2, /*random=*/true, seed));
    EXPECT_EQ(std::vector<int64_t>(pixels.begin(), pixels.end()), indices);
  }
}

TEST(SubsetTest, HoldoutSplitsDisjointly) {
  torch::Tensor indices = torch::arange(10, 20, torch::kInt64);
  torch::Tensor rest, holdout;
  SplitHoldout(indices, 0.3, 5, &rest, &holdout);
  ASSERT_EQ(holdout.numel(), 3);
  ASSERT_EQ(rest.numel(), 7);
  torch::Tensor all = std::get<0>(torch::cat({rest, holdout}).sort());
  EXPECT_TRUE(torch::equal(all, indices));
}

TEST(SubsetTest, HoldoutKeepsOneForTraining) {
  torch::Tensor rest, holdout;
  SplitHoldout(torch::arange(2, torch::kInt64), 1.0, 0, &rest, &holdout);
  EXPECT_EQ(rest.numel(), 1);
  EXPECT_EQ(holdout.numel(), 1);
}

}  // namespace
}  // namespace panda
