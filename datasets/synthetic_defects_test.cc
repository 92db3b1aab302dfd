#include "datasets/synthetic_defects.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "opencv2/core.hpp"

namespace panda {
namespace {

constexpr DefectKind kDefects[] = {DefectKind::kScratch, DefectKind::kBlob,
                                   DefectKind::kColourSpot};

// A 40x30 RGB texture of random levels from 30 to 225, so that neither a
// lighter nor a darker defect saturates everywhere.
cv::Mat NoiseTexture() {
  cv::Mat texture(30, 40, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(texture, cv::RNG::UNIFORM, 30, 226);
  return texture;
}

DefectSample Draw(const cv::Mat& texture, int size, DefectKind kind,
                  int64_t seed, int stream, int64_t index) {
  std::mt19937_64 engine = DefectSampleEngine(seed, stream, kind, index);
  return DrawDefectSample(texture, size, kind, engine);
}

bool Equal(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() &&
         cv::countNonZero(a.reshape(1) != b.reshape(1)) == 0;
}

// Returns CV_8UC1: 1 where any channel of `a` and `b` differs.
cv::Mat ChangedPixels(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat difference;
  cv::absdiff(a, b, difference);
  cv::Mat channels[3];
  cv::split(difference, channels);
  cv::Mat any = (channels[0] | channels[1] | channels[2]) != 0;
  return any / 255;
}

TEST(SyntheticDefectsTest, KindNames) {
  EXPECT_STREQ(DefectKindName(DefectKind::kNone), "good");
  EXPECT_STREQ(DefectKindName(DefectKind::kScratch), "scratch");
  EXPECT_STREQ(DefectKindName(DefectKind::kBlob), "blob");
  EXPECT_STREQ(DefectKindName(DefectKind::kColourSpot), "colour_spot");
}

TEST(SyntheticDefectsTest, SameSeedSameSample) {
  const cv::Mat texture = NoiseTexture();
  for (DefectKind kind : {DefectKind::kNone, DefectKind::kScratch,
                          DefectKind::kBlob, DefectKind::kColourSpot}) {
    const DefectSample a = Draw(texture, 48, kind, 5, 1, 3);
    const DefectSample b = Draw(texture, 48, kind, 5, 1, 3);
    EXPECT_TRUE(Equal(a.image, b.image)) << DefectKindName(kind);
    EXPECT_TRUE(Equal(a.mask, b.mask)) << DefectKindName(kind);
  }
}

TEST(SyntheticDefectsTest, SeedStreamAndIndexChangeSample) {
  const cv::Mat texture = NoiseTexture();
  const DefectSample base = Draw(texture, 48, DefectKind::kBlob, 5, 1, 3);
  EXPECT_FALSE(
      Equal(base.image, Draw(texture, 48, DefectKind::kBlob, 6, 1, 3).image));
  EXPECT_FALSE(
      Equal(base.image, Draw(texture, 48, DefectKind::kBlob, 5, 0, 3).image));
  EXPECT_FALSE(
      Equal(base.image, Draw(texture, 48, DefectKind::kBlob, 5, 1, 4).image));
  // Seeds that differ only in their high 32 bits differ too.
  EXPECT_FALSE(Equal(base.image, Draw(texture, 48, DefectKind::kBlob,
                                      5 + (int64_t{1} << 32), 1, 3)
                                     .image));
}

TEST(SyntheticDefectsTest, GoodSampleIsSurfaceWithEmptyMask) {
  const cv::Mat texture = NoiseTexture();
  const DefectSample sample = Draw(texture, 48, DefectKind::kNone, 0, 0, 0);
  EXPECT_EQ(sample.image.type(), CV_8UC3);
  EXPECT_EQ(sample.image.size(), cv::Size(48, 48));
  EXPECT_EQ(sample.mask.type(), CV_8UC1);
  EXPECT_EQ(sample.mask.size(), cv::Size(48, 48));
  EXPECT_TRUE(Equal(sample.image, sample.surface));
  EXPECT_EQ(cv::countNonZero(sample.mask), 0);
}

// The surface must be the texture tiled and cut at some offset, times a
// gain from 0.9 to 1.1: this finds such an offset and gain independently.
TEST(SyntheticDefectsTest, SurfaceIsTiledTextureWithGain) {
  const cv::Mat texture = NoiseTexture();
  // 64 pixels exceed both sides of the texture, so the crop wraps.
  for (int index = 0; index < 5; ++index) {
    const DefectSample sample =
        Draw(texture, 64, DefectKind::kNone, 2, 0, index);
    bool found = false;
    for (int y0 = 0; y0 < texture.rows && !found; ++y0) {
      for (int x0 = 0; x0 < texture.cols && !found; ++x0) {
        // Estimates the gain from the first pixel. Rounding leaves up to
        // 0.5 / 30 of error in it, and up to 5 levels in the check below.
        const cv::Vec3b first = texture.at<cv::Vec3b>(y0, x0);
        const double gain = sample.surface.at<cv::Vec3b>(0, 0)[0] /
                            static_cast<double>(first[0]);
        if (gain < 0.88 || gain > 1.12) continue;
        bool matches = true;
        for (int y = 0; y < 64 && matches; ++y) {
          for (int x = 0; x < 64 && matches; ++x) {
            const cv::Vec3b source =
                texture.at<cv::Vec3b>((y0 + y) % 30, (x0 + x) % 40);
            const cv::Vec3b target = sample.surface.at<cv::Vec3b>(y, x);
            for (int c = 0; c < 3; ++c) {
              if (std::abs(target[c] - gain * source[c]) > 5) matches = false;
            }
          }
        }
        found = matches;
      }
    }
    EXPECT_TRUE(found) << "sample " << index;
  }
}

TEST(SyntheticDefectsTest, DefectChangesExactlyItsMask) {
  const cv::Mat texture = NoiseTexture();
  for (DefectKind kind : kDefects) {
    for (int index = 0; index < 20; ++index) {
      const DefectSample sample = Draw(texture, 64, kind, 0, 1, index);
      const std::string name =
          std::string(DefectKindName(kind)) + " " + std::to_string(index);

      double low = 0;
      double high = 0;
      cv::minMaxLoc(sample.mask, &low, &high);
      EXPECT_EQ(low, 0) << name;
      EXPECT_EQ(high, 1) << name;

      const cv::Mat changed = ChangedPixels(sample.image, sample.surface);
      const int masked = cv::countNonZero(sample.mask);
      // No change outside the mask.
      EXPECT_EQ(cv::countNonZero(changed & (sample.mask == 0)), 0) << name;
      // A change on nearly all of it, because a blob's shifted fill may
      // equal the surface on a few pixels by chance.
      EXPECT_GE(cv::countNonZero(changed & sample.mask), 0.9 * masked) << name;
    }
  }
}

TEST(SyntheticDefectsTest, ScratchIsUniformlyLighterOrDarker) {
  const cv::Mat texture = NoiseTexture();
  for (int index = 0; index < 20; ++index) {
    const DefectSample sample =
        Draw(texture, 64, DefectKind::kScratch, 0, 1, index);
    int lighter = 0;
    int darker = 0;
    double total_change = 0;
    for (int y = 0; y < 64; ++y) {
      for (int x = 0; x < 64; ++x) {
        if (sample.mask.at<uint8_t>(y, x) == 0) continue;
        const cv::Vec3b before = sample.surface.at<cv::Vec3b>(y, x);
        const cv::Vec3b after = sample.image.at<cv::Vec3b>(y, x);
        const int change = (after[0] + after[1] + after[2]) -
                           (before[0] + before[1] + before[2]);
        lighter += change > 0;
        darker += change < 0;
        total_change += std::abs(change) / 3.0;
      }
    }
    // All one way, by tens of levels on average.
    EXPECT_TRUE(lighter == 0 || darker == 0)
        << "scratch " << index << ": " << lighter << " lighter and " << darker
        << " darker pixels";
    EXPECT_GE(total_change / cv::countNonZero(sample.mask), 30)
        << "scratch " << index;
  }
}

TEST(SyntheticDefectsTest, SpotAndBlobSizeWithinRange) {
  const cv::Mat texture = NoiseTexture();
  const int size = 100;
  // The radius is at most 15 pixels, and rasterising may add one.
  const double max_area = 3.1416 * 16 * 16;
  for (DefectKind kind : {DefectKind::kBlob, DefectKind::kColourSpot}) {
    int smallest = size * size;
    int largest = 0;
    for (int index = 0; index < 40; ++index) {
      const int area =
          cv::countNonZero(Draw(texture, size, kind, 0, 1, index).mask);
      smallest = std::min(smallest, area);
      largest = std::max(largest, area);
    }
    EXPECT_LE(largest, max_area) << DefectKindName(kind);
    // A radius of 3 pixels or more covers at least a few pixels, and the
    // sizes vary.
    EXPECT_GE(smallest, 5) << DefectKindName(kind);
    EXPECT_GT(largest, 2 * smallest) << DefectKindName(kind);
  }
}

TEST(SyntheticDefectsTest, SmallestImageSizeDraws) {
  const cv::Mat texture = NoiseTexture();
  for (DefectKind kind : kDefects) {
    for (int index = 0; index < 10; ++index) {
      const DefectSample sample = Draw(texture, 8, kind, 0, 1, index);
      EXPECT_GT(cv::countNonZero(sample.mask), 0)
          << DefectKindName(kind) << " " << index;
    }
  }
}

TEST(SyntheticDefectsTest, OnePixelTextureTiles) {
  cv::Mat texture(1, 1, CV_8UC3, cv::Scalar(100, 100, 100));
  const DefectSample sample = Draw(texture, 16, DefectKind::kNone, 0, 0, 0);
  double low = 0;
  double high = 0;
  cv::minMaxLoc(sample.surface.reshape(1), &low, &high);
  // One grey level everywhere, scaled by a gain from 0.9 to 1.1.
  EXPECT_EQ(low, high);
  EXPECT_GE(low, 90);
  EXPECT_LE(low, 110);
}

}  // namespace
}  // namespace panda
