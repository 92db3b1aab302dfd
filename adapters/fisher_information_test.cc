// The Fisher estimate against the exact expectation over labels, and the
// Fisher file's round trip and refusals.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "adapters/fisher_information.h"
#include "backbones/keras/keras_backbone.h"
#include "backbones/keras/keras_test_models.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

std::unique_ptr<KerasBackbone> TinyBackbone() {
  static const std::string* path = new std::string(keras::testing::WriteTestFile(
      "fisher_tiny.pkm", keras::testing::TinyModel().Encode()));
  KerasBackboneOptions options;
  options.set_weights_file(*path);
  absl::StatusOr<std::unique_ptr<KerasBackbone>> backbone = KerasBackbone::Create(options);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? *std::move(backbone) : nullptr;
}

torch::Tensor OneImage() {
  torch::manual_seed(11);
  return torch::randint(0, 256, {1, 7, 6, 3}, torch::kByte);
}

// E_{y ~ p} [grad log p_y ^ 2] for one image, summing over every label.
std::map<std::string, torch::Tensor> ExactFisher(KerasBackbone& backbone,
                                                 const torch::Tensor& image) {
  std::map<std::string, torch::Tensor> exact;
  backbone.module().eval();
  const torch::Tensor input = backbone.Preprocess(image);
  const int64_t classes =
      backbone.Forward(input, {"probabilities"})->at("probabilities").size(1);
  for (int64_t y = 0; y < classes; ++y) {
    const torch::Tensor probabilities =
        backbone.Forward(input, {"probabilities"})->at("probabilities")[0];
    backbone.module().zero_grad();
    torch::log(probabilities[y]).backward();
    const double weight = probabilities[y].item<double>();
    for (const auto& item : backbone.module().named_parameters()) {
      const torch::Tensor term = weight * item.value().grad().pow(2);
      exact[item.key()] = exact.count(item.key()) ? exact[item.key()] + term : term;
    }
  }
  return exact;
}

TEST(FisherInformationTest, SampledEstimateApproachesTheExactExpectation) {
  std::unique_ptr<KerasBackbone> backbone = TinyBackbone();
  ASSERT_NE(backbone, nullptr);
  const torch::Tensor image = OneImage();
  const std::map<std::string, torch::Tensor> exact = ExactFisher(*backbone, image);

  // 2,000 draws of the label for the same image.
  absl::StatusOr<FisherDiagonal> sampled =
      EstimateFisher(*backbone, image.repeat({2000, 1, 1, 1}), FisherSettings());
  ASSERT_TRUE(sampled.ok()) << sampled.status();

  double exact_total = 0, sampled_total = 0;
  for (const auto& [name, values] : exact) {
    ASSERT_TRUE(sampled->count(name)) << name;
    exact_total += values.sum().item<double>();
    sampled_total += sampled->at(name).sum().item<double>();
  }
  ASSERT_GT(exact_total, 0);
  EXPECT_NEAR(sampled_total / exact_total, 1.0, 0.1);
}

TEST(FisherInformationTest, TapThatIsNotADistributionIsRejected) {
  std::unique_ptr<KerasBackbone> backbone = TinyBackbone();
  ASSERT_NE(backbone, nullptr);
  FisherSettings settings;
  settings.tap = "pooled";
  absl::StatusOr<FisherDiagonal> fisher = EstimateFisher(*backbone, OneImage(), settings);
  EXPECT_EQ(fisher.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(fisher.status().message(), "not a probability distribution"))
      << fisher.status();
}

class FisherFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backbone_ = TinyBackbone();
    ASSERT_NE(backbone_, nullptr);
    for (const auto& item : backbone_->module().named_parameters()) {
      fisher_[item.key()] = torch::rand(item.value().sizes());
    }
    path_ = std::string(testing::TempDir()) + "/tiny.fisher";
    ASSERT_TRUE(SaveFisher(path_, "tiny|tap probabilities|images 9", fisher_).ok());
  }

  std::unique_ptr<KerasBackbone> backbone_;
  FisherDiagonal fisher_;
  std::string path_;
};

TEST_F(FisherFileTest, RoundTripsAndAcceptsAShorterIdentity) {
  for (const std::string identity : {"tiny|tap probabilities|images 9", "tiny|tap probabilities"}) {
    absl::StatusOr<FisherDiagonal> loaded = LoadFisher(path_, identity, *backbone_);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_EQ(loaded->size(), fisher_.size());
    for (const auto& [name, values] : fisher_) EXPECT_TRUE(torch::equal(loaded->at(name), values));
  }
}

TEST_F(FisherFileTest, OtherIdentityIsFailedPrecondition) {
  absl::StatusOr<FisherDiagonal> loaded = LoadFisher(path_, "other|tap probabilities", *backbone_);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(loaded.status().message(), path_));
}

TEST_F(FisherFileTest, MissingEntryIsFailedPrecondition) {
  FisherDiagonal partial = fisher_;
  partial.erase(partial.begin());
  ASSERT_TRUE(SaveFisher(path_, "tiny", partial).ok());
  absl::StatusOr<FisherDiagonal> loaded = LoadFisher(path_, "tiny", *backbone_);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(loaded.status().message(), fisher_.begin()->first));
}

TEST_F(FisherFileTest, NegativeValuesAreDataLoss) {
  FisherDiagonal negative = fisher_;
  negative.begin()->second = -negative.begin()->second;
  ASSERT_TRUE(SaveFisher(path_, "tiny", negative).ok());
  EXPECT_EQ(LoadFisher(path_, "tiny", *backbone_).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(FisherFileTest, TruncatedOrMissingFile) {
  const auto size = std::filesystem::file_size(path_);
  std::filesystem::resize_file(path_, size / 2);
  absl::StatusOr<FisherDiagonal> loaded = LoadFisher(path_, "tiny", *backbone_);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(loaded.status().message(), path_));
  EXPECT_EQ(LoadFisher(path_ + ".absent", "tiny", *backbone_).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace panda
