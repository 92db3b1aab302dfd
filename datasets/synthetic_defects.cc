#include "datasets/synthetic_defects.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "opencv2/core.hpp"
#include "opencv2/imgproc.hpp"

namespace panda {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Returns a number uniform in [0, 1) made of the top 53 bits of one draw.
double UniformUnit(std::mt19937_64& engine) {
  return static_cast<double>(engine() >> 11) * 0x1.0p-53;
}

// Returns a number uniform in [low, high).
double UniformReal(std::mt19937_64& engine, double low, double high) {
  return low + (high - low) * UniformUnit(engine);
}

// Returns an integer uniform in [low, high], both included.
int UniformInt(std::mt19937_64& engine, int low, int high) {
  const int value =
      low + static_cast<int>(UniformUnit(engine) * (high - low + 1));
  return std::min(value, high);
}

bool Coin(std::mt19937_64& engine) { return UniformUnit(engine) < 0.5; }

// Returns the `size` x `size` window of `texture` tiled endlessly whose top
// left corner is texture pixel (x0, y0).
cv::Mat TiledCrop(const cv::Mat& texture, int size, int x0, int y0) {
  cv::Mat crop(size, size, CV_8UC3);
  for (int y = 0; y < size; ++y) {
    const cv::Vec3b* source = texture.ptr<cv::Vec3b>((y0 + y) % texture.rows);
    cv::Vec3b* target = crop.ptr<cv::Vec3b>(y);
    for (int x = 0; x < size; ++x) target[x] = source[(x0 + x) % texture.cols];
  }
  return crop;
}

cv::Mat RandomCrop(const cv::Mat& texture, int size, std::mt19937_64& engine) {
  const int x0 = UniformInt(engine, 0, texture.cols - 1);
  const int y0 = UniformInt(engine, 0, texture.rows - 1);
  return TiledCrop(texture, size, x0, y0);
}

cv::Mat DrawSurface(const cv::Mat& texture, int size, std::mt19937_64& engine) {
  const cv::Mat crop = RandomCrop(texture, size, engine);
  const double gain = UniformReal(engine, 0.9, 1.1);
  cv::Mat surface;
  crop.convertTo(surface, CV_8U, gain);  // rounds and saturates
  return surface;
}

// Returns the radius of a blob or spot: 3% to 15% of the image side.
int DefectRadius(int size, std::mt19937_64& engine) {
  const double radius = UniformReal(engine, 0.03, 0.15) * size;
  return std::max(2, static_cast<int>(std::lround(radius)));
}

// Returns a centre that keeps a circle of `radius` inside the image.
cv::Point DefectCentre(int size, int radius, std::mt19937_64& engine) {
  const int x = UniformInt(engine, radius, size - 1 - radius);
  const int y = UniformInt(engine, radius, size - 1 - radius);
  return cv::Point(x, y);
}

// Sets `mask` to 1 on a filled ellipse around `centre` whose larger
// semi-axis is `radius`. The ellipse is a disc when `round` is set.
void FillEllipse(cv::Mat& mask, cv::Point centre, int radius, bool round,
                 std::mt19937_64& engine) {
  int minor = radius;
  double angle = 0;
  if (!round) {
    minor = std::max(
        1,
        static_cast<int>(std::lround(radius * UniformReal(engine, 0.5, 1.0))));
    angle = UniformReal(engine, 0, 180);
  }
  cv::ellipse(mask, centre, cv::Size(radius, minor), angle, 0, 360,
              cv::Scalar(1), cv::FILLED, cv::LINE_8);
}

// Sets `mask` to 1 on an irregular star-shaped polygon around `centre`:
// 6 to 10 vertices at jittered angles, each at 50% to 100% of `radius`.
void FillPolygon(cv::Mat& mask, cv::Point centre, int radius,
                 std::mt19937_64& engine) {
  const int count = UniformInt(engine, 6, 10);
  std::vector<cv::Point> vertices;
  for (int i = 0; i < count; ++i) {
    const double angle = 2 * kPi * (i + UniformReal(engine, -0.3, 0.3)) / count;
    const double distance = radius * UniformReal(engine, 0.5, 1.0);
    vertices.emplace_back(
        centre.x + static_cast<int>(std::lround(distance * std::cos(angle))),
        centre.y + static_cast<int>(std::lround(distance * std::sin(angle))));
  }
  cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{vertices},
               cv::Scalar(1), cv::LINE_8);
}

// Draws a scratch into `mask` and returns its colour for every pixel.
cv::Mat DrawScratch(const cv::Mat& surface, cv::Mat& mask,
                    std::mt19937_64& engine) {
  const int size = surface.rows;
  const int thickness = UniformInt(engine, 1, 4);
  const int segments = UniformInt(engine, 1, 3);
  const double segment_length =
      UniformReal(engine, 0.25, 0.6) * size / segments;

  // Each segment after the first turns by up to 45 degrees. The path is
  // traced from (0, 0) and then moved to a random place where all of it,
  // with its thickness, fits in the image (if the image is large enough).
  double x = 0;
  double y = 0;
  double angle = UniformReal(engine, 0, 2 * kPi);
  std::vector<cv::Point> points = {cv::Point(0, 0)};
  for (int i = 0; i < segments; ++i) {
    if (i > 0) angle += UniformReal(engine, -kPi / 4, kPi / 4);
    x += segment_length * std::cos(angle);
    y += segment_length * std::sin(angle);
    points.emplace_back(static_cast<int>(std::lround(x)),
                        static_cast<int>(std::lround(y)));
  }
  const cv::Rect bounds = cv::boundingRect(points);
  const int margin = thickness / 2;
  const auto place = [&](int low, int extent) {
    const int first = margin - low;
    const int last = std::max(first, size - 1 - margin - (low + extent - 1));
    return UniformInt(engine, first, last);
  };
  // Two statements, because the order in which function arguments are
  // evaluated, and so the order of the draws, is unspecified.
  const int offset_x = place(bounds.x, bounds.width);
  const int offset_y = place(bounds.y, bounds.height);
  const cv::Point offset(offset_x, offset_y);
  for (cv::Point& point : points) point += offset;
  cv::polylines(mask, std::vector<std::vector<cv::Point>>{points},
                /*isClosed=*/false, cv::Scalar(1), thickness, cv::LINE_8);

  // Lighter on a dark surface, darker on a bright one, either in between.
  const cv::Scalar mean = cv::mean(surface, mask);
  const double brightness = (mean[0] + mean[1] + mean[2]) / 3;
  const bool lighter = brightness < 96 || (brightness <= 160 && Coin(engine));
  cv::Mat paint;
  if (lighter) {
    // Lighter is 255 - 0.4 * (255 - v), 60% of the way to white.
    cv::Mat headroom = cv::Scalar::all(255) - surface;
    headroom.convertTo(headroom, CV_8U, 0.4);
    paint = cv::Scalar::all(255) - headroom;
  } else {
    surface.convertTo(paint, CV_8U, 0.4);
  }
  return paint;
}

// Draws a blob into `mask` and returns its fill for every pixel.
cv::Mat DrawBlob(const cv::Mat& texture, int size, cv::Mat& mask,
                 std::mt19937_64& engine) {
  const int radius = DefectRadius(size, engine);
  const cv::Point centre = DefectCentre(size, radius, engine);
  if (Coin(engine)) {
    FillEllipse(mask, centre, radius, /*round=*/false, engine);
  } else {
    FillPolygon(mask, centre, radius, engine);
  }

  // The fill is the texture from elsewhere, turned so that its grain runs
  // another way. Each channel is shifted by 40 to 80 levels away from the
  // nearer end of its range under the blob, so the fill keeps its texture
  // instead of saturating.
  cv::Mat other = RandomCrop(texture, size, engine);
  const int turns[] = {cv::ROTATE_90_CLOCKWISE, cv::ROTATE_180,
                       cv::ROTATE_90_COUNTERCLOCKWISE};
  cv::rotate(other, other, turns[UniformInt(engine, 0, 2)]);
  const cv::Scalar mean = cv::mean(other, mask);
  cv::Scalar shift;
  for (int c = 0; c < 3; ++c) {
    const int magnitude = UniformInt(engine, 40, 80);
    shift[c] = mean[c] > 127.5 ? -magnitude : magnitude;
  }
  cv::Mat paint;
  cv::add(other, shift, paint);  // saturates
  return paint;
}

// Draws a colour spot into `mask` and returns its colour for every pixel.
cv::Mat DrawColourSpot(const cv::Mat& surface, cv::Mat& mask,
                       std::mt19937_64& engine) {
  const int size = surface.rows;
  const int radius = DefectRadius(size, engine);
  const cv::Point centre = DefectCentre(size, radius, engine);
  FillEllipse(mask, centre, radius, /*round=*/Coin(engine), engine);

  // One channel moves by 80 to 120 levels and the others by up to 40, each
  // away from the nearer end of its range under the spot, so that little
  // of the shift is lost to saturation.
  const cv::Scalar mean = cv::mean(surface, mask);
  const int dominant = UniformInt(engine, 0, 2);
  cv::Scalar shift;
  for (int c = 0; c < 3; ++c) {
    const int magnitude =
        c == dominant ? UniformInt(engine, 80, 120) : UniformInt(engine, 0, 40);
    shift[c] = mean[c] > 127.5 ? -magnitude : magnitude;
  }
  cv::Mat paint;
  cv::add(surface, shift, paint);  // saturates
  return paint;
}

}  // namespace

const char* DefectKindName(DefectKind kind) {
  switch (kind) {
    case DefectKind::kNone:
      return "good";
    case DefectKind::kScratch:
      return "scratch";
    case DefectKind::kBlob:
      return "blob";
    case DefectKind::kColourSpot:
      return "colour_spot";
  }
  return "unknown";
}

std::mt19937_64 DefectSampleEngine(int64_t seed, int stream, DefectKind kind,
                                   int64_t index) {
  const auto low = [](int64_t value) {
    return static_cast<uint32_t>(static_cast<uint64_t>(value));
  };
  const auto high = [](int64_t value) {
    return static_cast<uint32_t>(static_cast<uint64_t>(value) >> 32);
  };
  std::seed_seq sequence{low(seed),
                         high(seed),
                         static_cast<uint32_t>(stream),
                         static_cast<uint32_t>(kind),
                         low(index),
                         high(index)};
  return std::mt19937_64(sequence);
}

DefectSample DrawDefectSample(const cv::Mat& texture, int image_size,
                              DefectKind kind, std::mt19937_64& engine) {
  DefectSample sample;
  sample.surface = DrawSurface(texture, image_size, engine);
  sample.mask = cv::Mat::zeros(image_size, image_size, CV_8UC1);

  cv::Mat paint;
  switch (kind) {
    case DefectKind::kNone:
      sample.image = sample.surface.clone();
      return sample;
    case DefectKind::kScratch:
      paint = DrawScratch(sample.surface, sample.mask, engine);
      break;
    case DefectKind::kBlob:
      paint = DrawBlob(texture, image_size, sample.mask, engine);
      break;
    case DefectKind::kColourSpot:
      paint = DrawColourSpot(sample.surface, sample.mask, engine);
      break;
  }

  // Every pixel under the mask takes the defect's colour and no pixel
  // outside it changes, so the mask is exact by construction.
  sample.image = sample.surface.clone();
  paint.copyTo(sample.image, sample.mask);
  return sample;
}

}  // namespace panda
