#include <memory>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "scorers/scorer.h"
#include "torch/torch.h"

namespace panda {
namespace {

std::unique_ptr<Scorer> MakeHeadScorer() {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer =
      ScorerRegistry().Create("head", google::protobuf::Any());
  EXPECT_TRUE(scorer.ok()) << scorer.status();
  return scorer.ok() ? *std::move(scorer) : nullptr;
}

TEST(HeadScorerTest, ScoresWithTheAdaptersHead) {
  std::unique_ptr<Scorer> scorer = MakeHeadScorer();
  ASSERT_NE(scorer, nullptr);
  EXPECT_TRUE(scorer->needs_score_head());
  // A head that sums each feature row.
  scorer->SetScoreHead([](const torch::Tensor& features) { return features.sum(1); });
  ASSERT_TRUE(scorer->Fit(torch::zeros({3, 2})).ok());

  absl::StatusOr<torch::Tensor> scores = scorer->Score(torch::tensor({{1.0f, 2.0f}, {-1.0f, 0.5f}}));
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_TRUE(torch::equal(*scores, torch::tensor({3.0f, -0.5f})));
}

TEST(HeadScorerTest, FitWithoutHeadFails) {
  std::unique_ptr<Scorer> scorer = MakeHeadScorer();
  ASSERT_NE(scorer, nullptr);
  const absl::Status status = scorer->Fit(torch::zeros({3, 2}));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(status.message(), "outlier_exposure")) << status;
}

TEST(HeadScorerTest, InvalidCallsFail) {
  std::unique_ptr<Scorer> scorer = MakeHeadScorer();
  ASSERT_NE(scorer, nullptr);
  EXPECT_EQ(scorer->Score(torch::zeros({1, 2})).status().code(),
            absl::StatusCode::kFailedPrecondition);
  scorer->SetScoreHead([](const torch::Tensor& features) { return features; });
  ASSERT_TRUE(scorer->Fit(torch::zeros({3, 2})).ok());
  EXPECT_EQ(scorer->Score(torch::zeros({4, 2})).status().code(), absl::StatusCode::kInternal);
}

TEST(HeadScorerTest, OptionsAreRejected) {
  google::protobuf::Any options;
  options.set_type_url("type.googleapis.com/panda.KnnScorerOptions");
  EXPECT_EQ(ScorerRegistry().Create("head", options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace panda
