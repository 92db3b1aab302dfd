#include "fuzz/image_seeds.h"

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"

namespace panda::fuzz {
namespace {

// A rows x cols image of `type` with a gradient in every channel.
cv::Mat Gradient(int rows, int cols, int type) {
  cv::Mat image(rows, cols, type);
  const int depth_scale = CV_MAT_DEPTH(type) == CV_16U ? 257 : 1;
  for (int row = 0; row < rows; ++row) {
    for (int col = 0; col < cols * image.channels(); ++col) {
      const int value = (row * 40 + col * 9) % 256 * depth_scale;
      if (CV_MAT_DEPTH(type) == CV_16U) {
        image.ptr<uint16_t>(row)[col] = static_cast<uint16_t>(value);
      } else {
        image.ptr<uint8_t>(row)[col] = static_cast<uint8_t>(value);
      }
    }
  }
  return image;
}

std::string Encode(const std::string& extension, const cv::Mat& image) {
  std::vector<uchar> bytes;
  if (!cv::imencode(extension, image, bytes)) {
    std::cerr << "fuzz: OpenCV cannot encode " << extension << "\n";
    std::exit(1);
  }
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

SeedList ImageSeeds() {
  return {{"grey.png", Encode(".png", Gradient(5, 4, CV_8UC1))},
          {"rgb.png", Encode(".png", Gradient(4, 6, CV_8UC3))},
          {"rgba.png", Encode(".png", Gradient(3, 3, CV_8UC4))},
          {"grey16.png", Encode(".png", Gradient(4, 4, CV_16UC1))},
          {"rgb.jpg", Encode(".jpg", Gradient(8, 8, CV_8UC3))},
          {"rgb.bmp", Encode(".bmp", Gradient(3, 5, CV_8UC3))},
          {"rgb.tif", Encode(".tif", Gradient(4, 4, CV_8UC3))},
          {"rgb.webp", Encode(".webp", Gradient(4, 4, CV_8UC3))}};
}

}  // namespace panda::fuzz
