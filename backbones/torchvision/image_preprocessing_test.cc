// Hand-computed cases; torchvision_parity_test compares with torchvision's
// own transforms on larger images.
#include "backbones/torchvision/image_preprocessing.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda::torchvision {
namespace {

PreprocessSettings Settings(int resize, int crop, bool identity_normalisation = true) {
  ImagePreprocessing options;
  options.set_resize(resize);
  options.set_center_crop(crop);
  if (identity_normalisation) {
    for (int i = 0; i < 3; ++i) {
      options.add_mean(0);
      options.add_std(1);
    }
  }
  absl::StatusOr<PreprocessSettings> settings = ResolvePreprocessing(options, "preprocessing");
  EXPECT_TRUE(settings.ok()) << settings.status();
  return *settings;
}

// A grey image [1, height, width, 1] from row-major values.
torch::Tensor Grey(int64_t height, int64_t width, std::vector<uint8_t> values) {
  return torch::tensor(std::vector<int64_t>(values.begin(), values.end()))
      .to(torch::kByte)
      .reshape({1, height, width, 1});
}

// A grey image whose pixel in column x is 10 * x.
torch::Tensor ColumnRamp(int64_t side) {
  return (torch::arange(side, torch::kInt64) * 10)
      .to(torch::kByte)
      .view({1, 1, side, 1})
      .expand({1, side, side, 1})
      .contiguous();
}

TEST(ImagePreprocessingTest, DefaultsAreImagenetEvaluation) {
  const absl::StatusOr<PreprocessSettings> settings =
      ResolvePreprocessing(ImagePreprocessing(), "preprocessing");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->resize, 256);
  EXPECT_EQ(settings->center_crop, 224);
  EXPECT_TRUE(settings->antialias);
  EXPECT_EQ(settings->mean, (std::array<float, 3>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(settings->std, (std::array<float, 3>{0.229f, 0.224f, 0.225f}));
  EXPECT_EQ(DescribePreprocessing(*settings),
            "resize=256/crop=224/mean=0.485,0.456,0.406/std=0.229,0.224,0.225/antialias=1");
}

TEST(ImagePreprocessingTest, InvalidOptionsNameTheField) {
  const std::vector<std::pair<ImagePreprocessing, std::string>> cases = [] {
    std::vector<std::pair<ImagePreprocessing, std::string>> list;
    ImagePreprocessing options;
    options.set_resize(-1);
    list.push_back({options, "x.resize must be 0 (keep the size) or positive, got -1"});
    options = ImagePreprocessing();
    options.set_center_crop(-5);
    list.push_back({options, "x.center_crop must be 0 (no crop) or positive, got -5"});
    options = ImagePreprocessing();
    options.add_mean(0.5f);
    options.add_mean(0.5f);
    list.push_back({options, "x.mean needs 3 values (R, G, B) or none for ImageNet's, got 2"});
    options = ImagePreprocessing();
    options.add_std(1);
    options.add_std(0);
    options.add_std(1);
    list.push_back({options, "x.std values must be finite and positive, got 1, 0, 1"});
    return list;
  }();
  for (const auto& [options, message] : cases) {
    const absl::StatusOr<PreprocessSettings> settings = ResolvePreprocessing(options, "x");
    ASSERT_FALSE(settings.ok()) << message;
    EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(settings.status().message(), message)) << settings.status();
  }
}

TEST(ImagePreprocessingTest, SizesFollowTorchvision) {
  const PreprocessSettings resize_only = Settings(256, 0);
  // The shorter side becomes 256 and the longer one 256 * long / short,
  // rounded down: 256 * 300 / 200 = 384, 256 * 333 / 250 = 340.99.
  EXPECT_EQ(PreprocessedSize(300, 200, resize_only), (std::array<int64_t, 2>{384, 256}));
  EXPECT_EQ(PreprocessedSize(250, 333, resize_only), (std::array<int64_t, 2>{256, 340}));
  EXPECT_EQ(PreprocessedSize(28, 28, resize_only), (std::array<int64_t, 2>{256, 256}));
  EXPECT_EQ(PreprocessedSize(300, 200, Settings(256, 224)), (std::array<int64_t, 2>{224, 224}));
  EXPECT_EQ(PreprocessedSize(30, 20, Settings(0, 0)), (std::array<int64_t, 2>{30, 20}));

  EXPECT_EQ(PreprocessImages(torch::zeros({2, 300, 200, 3}, torch::kByte), resize_only).sizes(),
            (std::vector<int64_t>{2, 3, 384, 256}));
  EXPECT_EQ(PreprocessImages(torch::zeros({1, 250, 333, 1}, torch::kByte), resize_only).sizes(),
            (std::vector<int64_t>{1, 3, 256, 340}));
}

TEST(ImagePreprocessingTest, NormalisesPerChannelAndExpandsGrey) {
  // Default ImageNet normalisation of one grey pixel of value 51 = 0.2 * 255.
  const torch::Tensor output = PreprocessImages(Grey(1, 1, {51}), Settings(0, 0, false));
  ASSERT_EQ(output.sizes(), (std::vector<int64_t>{1, 3, 1, 1}));
  EXPECT_EQ(output.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(output[0][0][0][0].item<float>(), (0.2 - 0.485) / 0.229, 1e-6);
  EXPECT_NEAR(output[0][1][0][0].item<float>(), (0.2 - 0.456) / 0.224, 1e-6);
  EXPECT_NEAR(output[0][2][0][0].item<float>(), (0.2 - 0.406) / 0.225, 1e-6);

  // Colour channels stay in R, G, B order.
  const torch::Tensor colour = torch::tensor({255, 0, 51}).to(torch::kByte).view({1, 1, 1, 3});
  const torch::Tensor scaled = PreprocessImages(colour, Settings(0, 0));
  EXPECT_TRUE(torch::allclose(scaled.flatten(), torch::tensor({1.0f, 0.0f, 0.2f})));
}

TEST(ImagePreprocessingTest, CenterCropRoundsHalfToEven) {
  // Python's round() as torchvision uses it: round(1.5) = 2, round(2.5) = 2.
  // Side 5, crop 2: offset 1.5 -> 2, so columns 2 and 3 (values 20, 30).
  torch::Tensor crop = PreprocessImages(ColumnRamp(5), Settings(0, 2));
  EXPECT_TRUE(torch::allclose(crop[0][0][0] * 255, torch::tensor({20.0f, 30.0f}), 0, 1e-4));
  // Side 7, crop 2: offset 2.5 -> 2, columns 2 and 3 again.
  crop = PreprocessImages(ColumnRamp(7), Settings(0, 2));
  EXPECT_TRUE(torch::allclose(crop[0][0][0] * 255, torch::tensor({20.0f, 30.0f}), 0, 1e-4));
  // Side 7, crop 4: offset 1.5 -> 2, columns 2 to 5.
  crop = PreprocessImages(ColumnRamp(7), Settings(0, 4));
  EXPECT_TRUE(torch::allclose(crop[0][0][0] * 255, torch::tensor({20.0f, 30.0f, 40.0f, 50.0f}),
                              0, 1e-4));
}

TEST(ImagePreprocessingTest, CropLargerThanImagePadsWithBlack) {
  // 1x1 to 3x3: one pixel of padding on every side.
  torch::Tensor padded = PreprocessImages(Grey(1, 1, {255}), Settings(0, 3));
  ASSERT_EQ(padded.sizes(), (std::vector<int64_t>{1, 3, 3, 3}));
  EXPECT_EQ(padded[0][0].sum().item<float>(), 1.0f);
  EXPECT_EQ(padded[0][0][1][1].item<float>(), 1.0f);

  // 2x2 to 3x3: torchvision pads (3 - 2) // 2 = 0 on the left and top and
  // (3 - 2 + 1) // 2 = 1 on the right and bottom.
  padded = PreprocessImages(Grey(2, 2, {255, 51, 102, 153}), Settings(0, 3));
  EXPECT_TRUE(torch::allclose(padded[0][0] * 255,
                              torch::tensor({{255.0f, 51.0f, 0.0f},
                                             {102.0f, 153.0f, 0.0f},
                                             {0.0f, 0.0f, 0.0f}}),
                              0, 1e-4));
}

TEST(ImagePreprocessingTest, BilinearUpscalingUsesPixelCentres) {
  // A 1x2 image [0, 255] resized so its shorter side is 2: 2x4. Pixel
  // centres map to source x = (x' + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25,
  // clamped to the image: 0, 63.75, 191.25, 255.
  for (bool antialias : {true, false}) {
    PreprocessSettings settings = Settings(2, 0);
    settings.antialias = antialias;
    const torch::Tensor output = PreprocessImages(Grey(1, 2, {0, 255}), settings);
    ASSERT_EQ(output.sizes(), (std::vector<int64_t>{1, 3, 2, 4}));
    const torch::Tensor expected = torch::tensor({0.0f, 63.75f, 191.25f, 255.0f});
    EXPECT_TRUE(torch::allclose(output[0][0][0] * 255, expected, 0, 1e-3)) << output[0][0];
    EXPECT_TRUE(torch::allclose(output[0][0][1] * 255, expected, 0, 1e-3)) << output[0][0];
  }
}

TEST(ImagePreprocessingTest, AntialiasingChangesDownscaling) {
  // Alternating columns, halved: plain bilinear samples between two pixels
  // and gives 127.5; the antialiasing filter spans more than two pixels.
  const torch::Tensor stripes = Grey(4, 4, {0, 255, 0, 255, 0, 255, 0, 255,
                                            0, 255, 0, 255, 0, 255, 0, 255});
  PreprocessSettings settings = Settings(2, 0);
  settings.antialias = false;
  const torch::Tensor plain = PreprocessImages(stripes, settings);
  EXPECT_TRUE(torch::allclose(plain * 255, torch::full({1, 3, 2, 2}, 127.5f), 0, 1e-3));
  settings.antialias = true;
  const torch::Tensor filtered = PreprocessImages(stripes, settings);
  EXPECT_FALSE(torch::allclose(filtered * 255, torch::full({1, 3, 2, 2}, 127.5f), 0, 1e-3));
}

TEST(ImagePreprocessingTest, RejectsInvalidImages) {
  const PreprocessSettings settings = Settings(256, 224);
  EXPECT_THROW(PreprocessImages(torch::zeros({1, 7, 6, 3}), settings), c10::Error);
  EXPECT_THROW(PreprocessImages(torch::zeros({1, 7, 6, 2}, torch::kByte), settings), c10::Error);
  EXPECT_THROW(PreprocessImages(torch::zeros({7, 6, 3}, torch::kByte), settings), c10::Error);
  EXPECT_THROW(PreprocessImages(torch::zeros({1, 0, 6, 3}, torch::kByte), settings), c10::Error);
}

}  // namespace
}  // namespace panda::torchvision
