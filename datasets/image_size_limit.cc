#include "datasets/image_size_limit.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace panda {
namespace {

// Reads `count` bytes at `offset` of `file`; nullopt when the file is
// shorter.
std::optional<std::string> ReadAt(std::ifstream& file, int64_t offset,
                                  int64_t count) {
  file.clear();
  file.seekg(offset);
  std::string bytes(static_cast<size_t>(count), '\0');
  if (!file.read(bytes.data(), count)) return std::nullopt;
  return bytes;
}

uint32_t Byte(const std::string& bytes, size_t i) {
  return static_cast<uint8_t>(bytes[i]);
}

uint32_t BigEndian16(const std::string& bytes, size_t i) {
  return Byte(bytes, i) << 8 | Byte(bytes, i + 1);
}

uint32_t BigEndian32(const std::string& bytes, size_t i) {
  return BigEndian16(bytes, i) << 16 | BigEndian16(bytes, i + 2);
}

uint32_t LittleEndian16(const std::string& bytes, size_t i) {
  return Byte(bytes, i) | Byte(bytes, i + 1) << 8;
}

uint32_t LittleEndian24(const std::string& bytes, size_t i) {
  return LittleEndian16(bytes, i) | Byte(bytes, i + 2) << 16;
}

uint32_t LittleEndian32(const std::string& bytes, size_t i) {
  return LittleEndian16(bytes, i) | LittleEndian16(bytes, i + 2) << 16;
}

// PNG: the IHDR chunk follows the 8-byte signature, width and height first.
std::optional<ImageDimensions> PngDimensions(std::ifstream& file) {
  std::optional<std::string> header = ReadAt(file, 0, 24);
  if (!header || header->compare(12, 4, "IHDR") != 0) return std::nullopt;
  return ImageDimensions{BigEndian32(*header, 16), BigEndian32(*header, 20)};
}

// JPEG: walks the segments up to the first start-of-frame marker, which
// contains the height and width.
std::optional<ImageDimensions> JpegDimensions(std::ifstream& file) {
  int64_t offset = 2;
  while (true) {
    std::optional<std::string> marker = ReadAt(file, offset, 2);
    if (!marker || Byte(*marker, 0) != 0xFF) return std::nullopt;
    const uint32_t code = Byte(*marker, 1);
    if (code == 0xFF) {  // A fill byte before the marker.
      ++offset;
      continue;
    }
    offset += 2;
    // Markers without a length: TEM and RST0 to RST7.
    if (code == 0x01 || (code >= 0xD0 && code <= 0xD7)) continue;
    // The image data or its end came before any frame header.
    if (code == 0xD9 || code == 0xDA) return std::nullopt;

    std::optional<std::string> segment = ReadAt(file, offset, 7);
    if (!segment) return std::nullopt;
    const uint32_t length = BigEndian16(*segment, 0);
    if (length < 2) return std::nullopt;
    // SOF0 to SOF15, except DHT (C4), JPG (C8) and DAC (CC).
    const bool frame = code >= 0xC0 && code <= 0xCF && code != 0xC4 &&
                       code != 0xC8 && code != 0xCC;
    if (frame) {
      return ImageDimensions{BigEndian16(*segment, 5),
                             BigEndian16(*segment, 3)};
    }
    offset += length;
  }
}

// BMP: the info header follows the 14-byte file header. The old OS/2 header
// (12 bytes) has 16-bit sizes; the others have 32-bit signed ones, and a
// negative height means rows stored top-down.
std::optional<ImageDimensions> BmpDimensions(std::ifstream& file) {
  std::optional<std::string> header = ReadAt(file, 0, 26);
  if (!header) return std::nullopt;
  if (LittleEndian32(*header, 14) == 12) {
    return ImageDimensions{LittleEndian16(*header, 18),
                           LittleEndian16(*header, 20)};
  }
  const auto width = static_cast<int32_t>(LittleEndian32(*header, 18));
  const auto height = static_cast<int32_t>(LittleEndian32(*header, 22));
  return ImageDimensions{std::llabs(width), std::llabs(height)};
}

// WebP: the first chunk after "RIFF" <size> "WEBP" is VP8 (lossy), VP8L
// (lossless) or VP8X (extended), each storing the size differently.
std::optional<ImageDimensions> WebpDimensions(std::ifstream& file) {
  std::optional<std::string> header = ReadAt(file, 0, 30);
  if (!header) return std::nullopt;
  const std::string chunk = header->substr(12, 4);
  if (chunk == "VP8 ") {
    // A key frame: 3-byte frame tag, start code 9D 01 2A, then 14-bit sizes.
    return ImageDimensions{LittleEndian16(*header, 26) & 0x3FFF,
                           LittleEndian16(*header, 28) & 0x3FFF};
  }
  if (chunk == "VP8L") {
    // Signature byte 0x2F, then width - 1 and height - 1 in 14 bits each.
    const uint32_t bits = LittleEndian32(*header, 21);
    return ImageDimensions{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (chunk == "VP8X") {
    // Canvas width - 1 and height - 1 in 24 bits each.
    return ImageDimensions{LittleEndian24(*header, 24) + 1,
                           LittleEndian24(*header, 27) + 1};
  }
  return std::nullopt;
}

// TIFF: the ImageWidth (256) and ImageLength (257) entries of the first
// image file directory, the page OpenCV decodes.
std::optional<ImageDimensions> TiffDimensions(std::ifstream& file,
                                              bool little_endian) {
  auto read16 = [little_endian](const std::string& bytes, size_t i) {
    return little_endian ? LittleEndian16(bytes, i) : BigEndian16(bytes, i);
  };
  auto read32 = [little_endian](const std::string& bytes, size_t i) {
    return little_endian ? LittleEndian32(bytes, i) : BigEndian32(bytes, i);
  };

  std::optional<std::string> header = ReadAt(file, 0, 8);
  if (!header) return std::nullopt;
  const int64_t directory = read32(*header, 4);
  std::optional<std::string> count_bytes = ReadAt(file, directory, 2);
  if (!count_bytes) return std::nullopt;
  const int64_t count = read16(*count_bytes, 0);
  std::optional<std::string> entries = ReadAt(file, directory + 2, count * 12);
  if (!entries) return std::nullopt;

  ImageDimensions dimensions;
  for (int64_t i = 0; i < count; ++i) {
    const size_t entry = static_cast<size_t>(i) * 12;
    const uint32_t tag = read16(*entries, entry);
    if (tag != 256 && tag != 257) continue;
    // The value sits in the entry's last 4 bytes: SHORT (3) in the first 2
    // of them, LONG (4) in all 4.
    const uint32_t type = read16(*entries, entry + 2);
    int64_t value = 0;
    if (type == 3) {
      value = read16(*entries, entry + 8);
    } else if (type == 4) {
      value = read32(*entries, entry + 8);
    } else {
      return std::nullopt;
    }
    (tag == 256 ? dimensions.width : dimensions.height) = value;
  }
  if (dimensions.width == 0 || dimensions.height == 0) return std::nullopt;
  return dimensions;
}

}  // namespace

std::optional<ImageDimensions> ReadImageDimensions(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::optional<std::string> magic = ReadAt(file, 0, 12);
  if (!magic) return std::nullopt;

  if (absl::StartsWith(*magic, "\x89PNG\r\n\x1a\n")) return PngDimensions(file);
  if (absl::StartsWith(*magic, "\xFF\xD8")) return JpegDimensions(file);
  if (absl::StartsWith(*magic, "BM")) return BmpDimensions(file);
  if (absl::StartsWith(*magic, "RIFF") && magic->compare(8, 4, "WEBP") == 0) {
    return WebpDimensions(file);
  }
  if (absl::StartsWith(*magic, std::string("II*\0", 4))) {
    return TiffDimensions(file, /*little_endian=*/true);
  }
  if (absl::StartsWith(*magic, std::string("MM\0*", 4))) {
    return TiffDimensions(file, /*little_endian=*/false);
  }
  return std::nullopt;
}

absl::Status CheckImagePixels(const std::string& what,
                              const ImageDimensions& dimensions,
                              int64_t max_pixels) {
  // Headers store sides of up to 32 bits, so the product of two needs 64
  // unsigned bits; as int64_t it could overflow.
  constexpr int64_t kMaxSide = std::numeric_limits<uint32_t>::max();
  const auto width =
      static_cast<uint64_t>(std::clamp<int64_t>(dimensions.width, 0, kMaxSide));
  const auto height = static_cast<uint64_t>(
      std::clamp<int64_t>(dimensions.height, 0, kMaxSide));
  const uint64_t pixels = width * height;
  if (max_pixels <= 0 || pixels <= static_cast<uint64_t>(max_pixels)) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      what, " is ", dimensions.width, "x", dimensions.height, " = ", pixels,
      " pixels, more than the limit of ", max_pixels,
      " pixels; shrink the image, or raise the data set option "
      "`max_image_pixels` (0 removes the limit)"));
}

absl::Status CheckImageFilePixels(const std::string& what,
                                  const std::string& path,
                                  int64_t max_pixels) {
  if (max_pixels <= 0) return absl::OkStatus();
  std::optional<ImageDimensions> dimensions = ReadImageDimensions(path);
  if (!dimensions) return absl::OkStatus();
  return CheckImagePixels(what, *dimensions, max_pixels);
}

}  // namespace panda
