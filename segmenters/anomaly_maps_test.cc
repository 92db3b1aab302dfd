#include "segmenters/anomaly_maps.h"

#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

// A 5x7 map with three spikes, one of them negative.
torch::Tensor Spikes() {
  torch::Tensor map = torch::zeros({1, 5, 7}, torch::kFloat32);
  map[0][1][2] = 1.0;
  map[0][4][6] = 3.0;
  map[0][0][0] = -2.0;
  return map;
}

void ExpectMapNear(const torch::Tensor& map, const std::vector<double>& expected) {
  ASSERT_EQ(map.numel(), static_cast<int64_t>(expected.size()));
  const torch::Tensor flat = map.flatten().to(torch::kFloat64);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(flat[i].item<double>(), expected[i], 1e-6) << "pixel " << i;
  }
}

// Expected values are scipy.ndimage.gaussian_filter(map, sigma,
// mode="reflect", truncate=4.0) (SciPy 1.10) on the same map.
TEST(AnomalyMapsTest, SmoothingMatchesScipyReflectMode) {
  ExpectMapNear(PatchScoresToAnomalyMaps(Spikes(), 5, 7, 1.0),
                {-8.042528384e-01, -3.077195542e-01, 4.318405932e-02, 6.576388424e-02,
                 1.583126126e-02,  1.430491737e-03,  2.969309862e-04, -3.558072622e-01,
                 -7.752839337e-02, 1.263437508e-01,  9.496530057e-02, 2.249969534e-02,
                 5.841525722e-03,  8.832644743e-03,  -6.074381621e-02, 2.403292848e-02,
                 8.978328393e-02,  5.884930509e-02,  2.329563620e-02, 5.294603157e-02,
                 1.123648963e-01,  -2.698117468e-03, 1.036898877e-02, 2.112475148e-02,
                 1.707644214e-02,  5.478687427e-02,  2.630208152e-01, 5.690677078e-01,
                 9.519330117e-05,  1.026160470e-03,  2.063137664e-03, 9.882205865e-03,
                 1.125789662e-01,  5.690807166e-01,  1.232316396e+00});
}

// With sigma 2 the kernel radius (8) exceeds both sides, so the border is
// mirrored more than once.
TEST(AnomalyMapsTest, SmoothingMirrorsRepeatedlyWhenTheKernelIsLong) {
  ExpectMapNear(PatchScoresToAnomalyMaps(Spikes(), 5, 7, 2.0),
                {-0.226389918, -0.161202862, -0.072620078, -0.003067716, 0.035392561,
                 0.053270168,  0.060908784,  -0.173065215, -0.119619943, -0.045124482,
                 0.018663741,  0.063613049,  0.095304562,  0.113943512,  -0.099990732,
                 -0.062797145, -0.006469491, 0.053689086,  0.115477534,  0.175607648,
                 0.215981473,  -0.042348617, -0.018100088, 0.025658286,  0.089166237,
                 0.175686828,  0.271933164,  0.339041286,  -0.014012173, 0.00384681,
                 0.042580652,  0.111623184,  0.217411969,  0.339902652,  0.426105272});
}

TEST(AnomalyMapsTest, UpsamplingInterpolatesBetweenCellCentres) {
  // Two cells upsampled to four pixels: the outer pixels copy their cell and
  // the inner ones sit a quarter of the way towards the other cell.
  const torch::Tensor scores = torch::tensor({1.0f, 5.0f}).view({1, 1, 2});
  ExpectMapNear(PatchScoresToAnomalyMaps(scores, 1, 4, 0), {1.0, 2.0, 4.0, 5.0});
}

TEST(AnomalyMapsTest, KernelSumsToOneAndSpansFourSigma) {
  const torch::Tensor kernel = GaussianKernel(4.0);
  EXPECT_EQ(kernel.numel(), 33);
  EXPECT_NEAR(kernel.sum().item<double>(), 1.0, 1e-6);
  // exp(-1/2) between the centre and one sigma away.
  EXPECT_NEAR((kernel[20] / kernel[16]).item<double>(), 0.60653066, 1e-6);
}

TEST(AnomalyMapsTest, ConstantMapStaysConstant) {
  const torch::Tensor maps =
      PatchScoresToAnomalyMaps(torch::full({2, 3, 3}, 7.0f), 30, 20, 4.0);
  EXPECT_EQ(maps.sizes(), (std::vector<int64_t>{2, 30, 20}));
  EXPECT_NEAR(maps.min().item<double>(), 7.0, 1e-5);
  EXPECT_NEAR(maps.max().item<double>(), 7.0, 1e-5);
}

}  // namespace
}  // namespace panda
