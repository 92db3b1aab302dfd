#include "fuzz/zip_crc_fixup.h"

#include <zlib.h>

#include <cstdint>

namespace panda::fuzz {
namespace {

// Offsets from PKWARE's APPNOTE.TXT.
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint32_t kLocalSignature = 0x04034b50;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kCentralSize = 46;
constexpr uint64_t kLocalSize = 30;
constexpr uint64_t kStored = 0;

uint64_t Read(const std::string& bytes, uint64_t at, int size) {
  uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[at + i]);
  }
  return value;
}

void Write32(std::string& bytes, uint64_t at, uint32_t value) {
  for (int i = 0; i < 4; ++i) {
    bytes[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
  }
}

bool Inside(uint64_t offset, uint64_t size, uint64_t limit) {
  return offset <= limit && size <= limit - offset;
}

}  // namespace

bool FixZipCrcs(std::string& bytes) {
  const uint64_t file_size = bytes.size();
  if (file_size < kEndSize) return false;
  uint64_t end = file_size - kEndSize + 1;
  do {
    --end;
  } while (end > 0 && Read(bytes, end, 4) != kEndSignature);
  if (Read(bytes, end, 4) != kEndSignature) return false;

  const uint64_t entries = Read(bytes, end + 10, 2);
  const uint64_t directory_offset = Read(bytes, end + 16, 4);
  bool changed = false;
  uint64_t at = directory_offset;
  for (uint64_t index = 0; index < entries; ++index) {
    if (!Inside(at, kCentralSize, file_size) ||
        Read(bytes, at, 4) != kCentralSignature) {
      break;
    }
    const bool stored = Read(bytes, at + 10, 2) == kStored;
    const uint64_t size = Read(bytes, at + 20, 4);
    const uint64_t local = Read(bytes, at + 42, 4);
    const uint64_t entry_size = kCentralSize + Read(bytes, at + 28, 2) +
                                Read(bytes, at + 30, 2) +
                                Read(bytes, at + 32, 2);
    if (stored && Inside(local, kLocalSize, file_size) &&
        Read(bytes, local, 4) == kLocalSignature) {
      const uint64_t data = local + kLocalSize + Read(bytes, local + 26, 2) +
                            Read(bytes, local + 28, 2);
      if (Inside(data, size, file_size)) {
        const uint32_t crc = static_cast<uint32_t>(crc32(
            crc32(0L, Z_NULL, 0),
            reinterpret_cast<const Bytef*>(bytes.data() + data),
            static_cast<uInt>(size)));
        if (Read(bytes, at + 16, 4) != crc ||
            Read(bytes, at + 24, 4) != size) {
          changed = true;
        }
        Write32(bytes, at + 16, crc);
        Write32(bytes, local + 14, crc);
        Write32(bytes, at + 24, static_cast<uint32_t>(size));
        Write32(bytes, local + 22, static_cast<uint32_t>(size));
      }
    }
    at += entry_size;
  }
  return changed;
}

}  // namespace panda::fuzz
