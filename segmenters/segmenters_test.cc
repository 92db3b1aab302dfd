// The segmenter plugins against plain loops over the same patch features.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "scorers/hnsw_scorer_options.pb.h"
#include "segmenters/patch_core_segmenter_options.pb.h"
#include "segmenters/patch_knn_segmenter_options.pb.h"
#include "segmenters/segmenter.h"
#include "torch/torch.h"

namespace panda {
namespace {

// Random features of `images` images on a 3x4 grid with 5 channels.
PatchFeatures RandomFeatures(int64_t images, int seed) {
  torch::manual_seed(seed);
  PatchFeatures features;
  features.pooled = torch::randn({images, 8});
  features.patches = torch::randn({images, 3, 4, 5});
  return features;
}

std::unique_ptr<Segmenter> Create(const std::string& name,
                                  const google::protobuf::Message& options) {
  google::protobuf::Any any;
  any.PackFrom(options);
  absl::StatusOr<std::unique_ptr<Segmenter>> segmenter =
      SegmenterRegistry().Create(name, any);
  EXPECT_TRUE(segmenter.ok()) << segmenter.status();
  return segmenter.ok() ? *std::move(segmenter) : nullptr;
}

// Squared distance from `patch` [C] to the nearest row of `bank` [N, C].
double NearestSquaredDistance(const torch::Tensor& patch, const torch::Tensor& bank) {
  double best = std::numeric_limits<double>::infinity();
  for (int64_t r = 0; r < bank.size(0); ++r) {
    best = std::min(best, (bank[r] - patch).to(torch::kFloat64).pow(2).sum().item<double>());
  }
  return best;
}

TEST(PatchKnnSegmenterTest, ScoresPatchesAgainstTheNearestImagesOnly) {
  const PatchFeatures train = RandomFeatures(6, 1);
  const PatchFeatures test = RandomFeatures(2, 2);
  PatchKnnSegmenterOptions options;
  options.add_taps("any");
  options.set_nearest_images(2);
  std::unique_ptr<Segmenter> segmenter = Create("patch_knn", options);
  ASSERT_NE(segmenter, nullptr);
  ASSERT_TRUE(segmenter->Fit(train).ok());
  absl::StatusOr<torch::Tensor> scores = segmenter->Score(test);
  ASSERT_TRUE(scores.ok()) << scores.status();
  ASSERT_EQ(scores->sizes(), (std::vector<int64_t>{2, 3, 4}));

  for (int64_t i = 0; i < 2; ++i) {
    // The two training images nearest by pooled feature.
    std::vector<std::pair<double, int64_t>> by_distance;
    for (int64_t t = 0; t < 6; ++t) {
      by_distance.emplace_back(
          (train.pooled[t] - test.pooled[i]).pow(2).sum().item<double>(), t);
    }
    std::sort(by_distance.begin(), by_distance.end());
    const torch::Tensor gallery =
        torch::cat({train.patches[by_distance[0].second].reshape({-1, 5}),
                    train.patches[by_distance[1].second].reshape({-1, 5})});
    for (int64_t y = 0; y < 3; ++y) {
      for (int64_t x = 0; x < 4; ++x) {
        EXPECT_NEAR((*scores)[i][y][x].item<double>(),
                    std::sqrt(NearestSquaredDistance(test.patches[i][y][x], gallery)), 1e-4)
            << "image " << i << " cell " << y << "," << x;
      }
    }
  }
  EXPECT_EQ(segmenter->memory_bank_patches(), 6 * 12);
  EXPECT_EQ(segmenter->memory_bank_bytes(), 6 * 12 * 5 * 4);
}

TEST(PatchCoreSegmenterTest, FullBankScoresAreNearestSquaredDistances) {
  const PatchFeatures train = RandomFeatures(4, 3);
  const PatchFeatures test = RandomFeatures(2, 4);
  PatchCoreSegmenterOptions options;
  options.add_taps("any");
  options.set_coreset_fraction(1.0);
  std::unique_ptr<Segmenter> segmenter = Create("patch_core", options);
  ASSERT_NE(segmenter, nullptr);
  ASSERT_TRUE(segmenter->Fit(train).ok());
  absl::StatusOr<torch::Tensor> scores = segmenter->Score(test);
  ASSERT_TRUE(scores.ok()) << scores.status();

  const torch::Tensor bank = train.patches.reshape({-1, 5});
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t y = 0; y < 3; ++y) {
      for (int64_t x = 0; x < 4; ++x) {
        EXPECT_NEAR((*scores)[i][y][x].item<double>(),
                    NearestSquaredDistance(test.patches[i][y][x], bank), 1e-4);
      }
    }
  }
  EXPECT_EQ(segmenter->memory_bank_patches(), 4 * 12);
}

TEST(PatchCoreSegmenterTest, CoresetShrinksTheBankAndOnlyRaisesScores) {
  const PatchFeatures train = RandomFeatures(10, 5);
  const PatchFeatures test = RandomFeatures(3, 6);
  PatchCoreSegmenterOptions full_options;
  full_options.add_taps("any");
  full_options.set_coreset_fraction(1.0);
  PatchCoreSegmenterOptions coreset_options = full_options;
  coreset_options.set_coreset_fraction(0.25);

  std::unique_ptr<Segmenter> full = Create("patch_core", full_options);
  std::unique_ptr<Segmenter> coreset = Create("patch_core", coreset_options);
  ASSERT_TRUE(full->Fit(train).ok());
  ASSERT_TRUE(coreset->Fit(train).ok());
  EXPECT_EQ(coreset->memory_bank_patches(), 30);  // round(120 * 0.25)
  EXPECT_EQ(coreset->memory_bank_bytes(), 30 * 5 * 4);

  const torch::Tensor full_scores = *full->Score(test);
  const torch::Tensor coreset_scores = *coreset->Score(test);
  // A subset's nearest patch is never nearer than the whole bank's.
  EXPECT_TRUE((coreset_scores >= full_scores - 1e-5).all().item<bool>());
  EXPECT_TRUE((coreset_scores > full_scores + 1e-5).any().item<bool>());
}

TEST(PatchCoreSegmenterTest, HnswMatchesExactOnSmallBank) {
  const PatchFeatures train = RandomFeatures(5, 7);
  const PatchFeatures test = RandomFeatures(2, 8);
  PatchCoreSegmenterOptions exact_options;
  exact_options.add_taps("any");
  exact_options.set_coreset_fraction(1.0);
  PatchCoreSegmenterOptions hnsw_options = exact_options;
  HnswScorerOptions hnsw;
  hnsw.set_k(1);
  hnsw.set_index_cache(false);
  hnsw_options.mutable_search()->set_name("hnsw");
  hnsw_options.mutable_search()->mutable_options()->PackFrom(hnsw);

  std::unique_ptr<Segmenter> exact = Create("patch_core", exact_options);
  std::unique_ptr<Segmenter> approximate = Create("patch_core", hnsw_options);
  ASSERT_TRUE(exact->Fit(train).ok());
  ASSERT_TRUE(approximate->Fit(train).ok());
  // 60 points with ef 64 make the graph search exhaustive.
  EXPECT_TRUE(torch::allclose(*exact->Score(test), *approximate->Score(test), 1e-4, 1e-4));
}

TEST(SegmenterOptionsTest, BadOptionsNameTheField) {
  google::protobuf::Any any;
  PatchCoreSegmenterOptions no_taps;
  any.PackFrom(no_taps);
  absl::Status status = SegmenterRegistry().Create("patch_core", any).status();
  EXPECT_NE(status.message().find("taps"), absl::string_view::npos) << status;

  PatchCoreSegmenterOptions bad_fraction;
  bad_fraction.add_taps("any");
  bad_fraction.set_coreset_fraction(1.5);
  any.PackFrom(bad_fraction);
  status = SegmenterRegistry().Create("patch_core", any).status();
  EXPECT_NE(status.message().find("coreset_fraction"), absl::string_view::npos) << status;

  PatchCoreSegmenterOptions unknown_search;
  unknown_search.add_taps("any");
  unknown_search.mutable_search()->set_name("faiss");
  any.PackFrom(unknown_search);
  status = SegmenterRegistry().Create("patch_core", any).status();
  EXPECT_NE(status.message().find("faiss"), absl::string_view::npos) << status;

  PatchKnnSegmenterOptions zero_images;
  zero_images.add_taps("any");
  zero_images.set_nearest_images(0);
  any.PackFrom(zero_images);
  status = SegmenterRegistry().Create("patch_knn", any).status();
  EXPECT_NE(status.message().find("nearest_images"), absl::string_view::npos) << status;
}

TEST(SegmenterTest, ScoreBeforeFitAndMismatchedGridsAreErrors) {
  PatchKnnSegmenterOptions options;
  options.add_taps("any");
  std::unique_ptr<Segmenter> segmenter = Create("patch_knn", options);
  EXPECT_EQ(segmenter->Score(RandomFeatures(1, 1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(segmenter->Fit(RandomFeatures(2, 1)).ok());
  PatchFeatures other_grid;
  other_grid.pooled = torch::randn({1, 8});
  other_grid.patches = torch::randn({1, 2, 4, 5});
  EXPECT_EQ(segmenter->Score(other_grid).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace panda
