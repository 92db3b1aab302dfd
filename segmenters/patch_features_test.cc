#include "segmenters/patch_features.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

// A backbone without parameters whose taps are simple functions of the
// input, so that patch features can be recomputed by hand: "fine" is the
// grey 8x8 input, "coarse" its 2x2 block means (4x4).
class BlockMeanBackbone : public Backbone {
 public:
  torch::nn::Module& module() override { return module_; }

  torch::Tensor Preprocess(const torch::Tensor& images) const override {
    return images.to(torch::kFloat32).mean(/*dim=*/3).unsqueeze(1);
  }

  absl::StatusOr<TapMap> Forward(const torch::Tensor& input,
                                 const std::vector<std::string>& taps) override {
    TapMap outputs;
    for (const std::string& tap : taps) {
      if (tap == "fine") outputs[tap] = input;
      else if (tap == "coarse") outputs[tap] = torch::avg_pool2d(input, 2);
      else if (tap == "pooled") outputs[tap] = input.mean({2, 3});
      else if (tap == "flat") outputs[tap] = input.flatten(1);
      else return absl::InvalidArgumentError("unknown tap " + tap);
    }
    return outputs;
  }

  std::vector<std::string> tap_names() const override {
    return {"pooled", "fine", "coarse", "flat"};
  }
  int64_t feature_dim() const override { return 1; }
  std::string Fingerprint() const override { return "block mean"; }

 private:
  torch::nn::Module module_;
};

torch::Tensor RandomImages(int64_t count) {
  torch::manual_seed(11);
  return torch::randint(0, 256, {count, 8, 8, 1}, torch::kUInt8);
}

// Bilinear sampling with half-pixel centres, written out for one axis pair.
double Bilinear(const torch::Tensor& map, int64_t y, int64_t x, double scale) {
  auto source = [&](int64_t i, int64_t size) {
    const double position = std::max(0.0, (i + 0.5) / scale - 0.5);
    const int64_t low = std::min<int64_t>(static_cast<int64_t>(position), size - 1);
    const int64_t high = std::min<int64_t>(low + 1, size - 1);
    return std::make_tuple(low, high, position - low);
  };
  const auto [y0, y1, fy] = source(y, map.size(0));
  const auto [x0, x1, fx] = source(x, map.size(1));
  auto at = [&](int64_t r, int64_t c) { return map[r][c].item<double>(); };
  return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
         fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
}

TEST(PatchFeaturesTest, ConcatenatesTapsOnTheFinestGrid) {
  BlockMeanBackbone backbone;
  const torch::Tensor images = RandomImages(3);
  PatchSpec spec;
  spec.taps = {"coarse", "fine"};
  absl::StatusOr<PatchFeatures> features =
      ExtractPatchFeatures(backbone, images, spec, /*batch_size=*/2, torch::kCPU, "test");
  ASSERT_TRUE(features.ok()) << features.status();
  ASSERT_EQ(features->patches.sizes(), (std::vector<int64_t>{3, 8, 8, 2}));
  ASSERT_EQ(features->pooled.sizes(), (std::vector<int64_t>{3, 1}));

  for (int64_t n = 0; n < 3; ++n) {
    const torch::Tensor grey = images[n].squeeze(2).to(torch::kFloat64);
    const torch::Tensor blocks = torch::avg_pool2d(grey.unsqueeze(0), 2).squeeze(0);
    EXPECT_NEAR(features->pooled[n][0].item<double>(), grey.mean().item<double>(), 1e-3);
    for (int64_t y = 0; y < 8; ++y) {
      for (int64_t x = 0; x < 8; ++x) {
        EXPECT_NEAR(features->patches[n][y][x][0].item<double>(),
                    Bilinear(blocks, y, x, 2.0), 1e-3);
        EXPECT_NEAR(features->patches[n][y][x][1].item<double>(),
                    grey[y][x].item<double>(), 1e-3);
      }
    }
  }
}

TEST(PatchFeaturesTest, NeighbourhoodAveragesTheCellsInsideTheImage) {
  BlockMeanBackbone backbone;
  const torch::Tensor images = RandomImages(1);
  PatchSpec spec;
  spec.taps = {"fine"};
  spec.neighbourhood = 3;
  absl::StatusOr<PatchFeatures> features =
      ExtractPatchFeatures(backbone, images, spec, 4, torch::kCPU, "test");
  ASSERT_TRUE(features.ok()) << features.status();

  const torch::Tensor grey = images[0].squeeze(2).to(torch::kFloat64);
  for (int64_t y = 0; y < 8; ++y) {
    for (int64_t x = 0; x < 8; ++x) {
      double sum = 0;
      int cells = 0;
      for (int64_t dy = -1; dy <= 1; ++dy) {
        for (int64_t dx = -1; dx <= 1; ++dx) {
          if (y + dy < 0 || y + dy > 7 || x + dx < 0 || x + dx > 7) continue;
          sum += grey[y + dy][x + dx].item<double>();
          ++cells;
        }
      }
      EXPECT_NEAR(features->patches[0][y][x][0].item<double>(), sum / cells, 1e-3);
    }
  }
}

TEST(PatchFeaturesTest, BadSpecsAreErrors) {
  BlockMeanBackbone backbone;
  const torch::Tensor images = RandomImages(1);
  PatchSpec spec;
  EXPECT_EQ(ExtractPatchFeatures(backbone, images, spec, 1, torch::kCPU, "t").status().code(),
            absl::StatusCode::kInvalidArgument);
  spec.taps = {"pooled"};
  EXPECT_EQ(ExtractPatchFeatures(backbone, images, spec, 1, torch::kCPU, "t").status().code(),
            absl::StatusCode::kInvalidArgument);
  spec.taps = {"fine"};
  spec.neighbourhood = 2;
  EXPECT_EQ(ExtractPatchFeatures(backbone, images, spec, 1, torch::kCPU, "t").status().code(),
            absl::StatusCode::kInvalidArgument);
  spec.neighbourhood = 1;
  spec.taps = {"flat"};
  absl::Status status =
      ExtractPatchFeatures(backbone, images, spec, 1, torch::kCPU, "t").status();
  EXPECT_NE(status.message().find("\"flat\" is not a spatial map"), absl::string_view::npos)
      << status;
  spec.taps = {"missing"};
  EXPECT_FALSE(ExtractPatchFeatures(backbone, images, spec, 1, torch::kCPU, "t").ok());
}

}  // namespace
}  // namespace panda
