#include "datasets/idx_file.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"

namespace panda {
namespace {

static_assert(sizeof(size_t) >= sizeof(uint64_t),
              "kMaxIdxPayloadBytes must fit in size_t");

constexpr uint8_t kUint8Type = 0x08;
constexpr uint8_t kGzipMagic[2] = {0x1f, 0x8b};
// Bytes per fread() of compressed input.
constexpr size_t kInputChunkBytes = size_t{1} << 16;
// First allocation for the elements. Later ones double it.
constexpr size_t kFirstPayloadChunkBytes = size_t{1} << 20;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Reads up to `size` bytes and returns the count, which is smaller only at
// the end of the file.
absl::StatusOr<size_t> ReadFromFile(std::FILE* file, const std::string& path,
                                    uint8_t* out, size_t size) {
  const size_t got = std::fread(out, 1, size, file);
  if (got < size && std::ferror(file)) {
    return absl::ErrnoToStatus(errno, absl::StrCat("failed to read ", path));
  }
  return got;
}

// The bytes of an IDX file, decompressed if it is gzip'd.
class ByteSource {
 public:
  virtual ~ByteSource() = default;

  // Reads up to `size` bytes into `out` and returns the count, which is
  // smaller only at the end of the data.
  virtual absl::StatusOr<size_t> Read(uint8_t* out, size_t size) = 0;

  // Whether byte counts refer to decompressed data, for error messages.
  virtual bool compressed() const = 0;
};

class PlainSource : public ByteSource {
 public:
  PlainSource(FilePtr file, std::string path)
      : file_(std::move(file)), path_(std::move(path)) {}

  absl::StatusOr<size_t> Read(uint8_t* out, size_t size) override {
    return ReadFromFile(file_.get(), path_, out, size);
  }

  bool compressed() const override { return false; }

 private:
  FilePtr file_;
  std::string path_;
};

// Inflates a gzip file in a stream, so only the decompressed elements are
// held in memory at full size.
class GzipSource : public ByteSource {
 public:
  static absl::StatusOr<std::unique_ptr<GzipSource>> Create(FilePtr file,
                                                            std::string path) {
    std::unique_ptr<GzipSource> source(
        new GzipSource(std::move(file), std::move(path)));
    // 16 + MAX_WBITS accepts the gzip wrapper only, not raw zlib data.
    if (inflateInit2(&source->stream_, 16 + MAX_WBITS) != Z_OK) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "failed to set up gzip decompression for ", source->path_));
    }
    source->initialised_ = true;
    return source;
  }

  ~GzipSource() override {
    if (initialised_) inflateEnd(&stream_);
  }

  absl::StatusOr<size_t> Read(uint8_t* out, size_t size) override {
    // zlib counts bytes in uInt, which may be narrower than size_t.
    size_t total = 0;
    while (total < size && !finished_) {
      const uInt piece = static_cast<uInt>(
          std::min<size_t>(size - total, std::numeric_limits<uInt>::max()));
      PANDA_ASSIGN_OR_RETURN(const size_t got, Inflate(out + total, piece));
      total += got;
    }
    return total;
  }

  bool compressed() const override { return true; }

 private:
  // Inflates up to `size` bytes into `out` and returns the count, which is
  // smaller only at the end of the last gzip member.
  absl::StatusOr<size_t> Inflate(uint8_t* out, uInt size) {
    stream_.next_out = out;
    stream_.avail_out = size;
    while (stream_.avail_out > 0 && !finished_) {
      if (stream_.avail_in == 0) {
        PANDA_ASSIGN_OR_RETURN(
            const size_t got,
            ReadFromFile(file_.get(), path_, input_.data(), input_.size()));
        if (got == 0) {
          if (!member_ended_) {
            return absl::DataLossError(absl::StrCat(
                "gzip stream in ", path_,
                " ends before its trailer; the file is truncated"));
          }
          finished_ = true;
          break;
        }
        stream_.next_in = input_.data();
        stream_.avail_in = static_cast<uInt>(got);
      }

      if (member_ended_) {
        // gzip allows several members back to back (`cat a.gz b.gz`), but
        // anything else after a member is garbage.
        if (stream_.next_in[0] != kGzipMagic[0]) {
          return absl::DataLossError(absl::StrCat(
              path_, " has bytes after the end of its gzip stream"));
        }
        inflateReset(&stream_);
        member_ended_ = false;
      }

      const int result = inflate(&stream_, Z_NO_FLUSH);
      if (result == Z_STREAM_END) {
        member_ended_ = true;
      } else if (result == Z_MEM_ERROR) {
        return absl::ResourceExhaustedError(
            absl::StrCat("out of memory while decompressing ", path_));
      } else if (result != Z_OK) {
        return absl::DataLossError(absl::StrCat(
            "corrupt gzip stream in ", path_, ": ",
            stream_.msg != nullptr ? stream_.msg : zError(result)));
      }
    }
    return size - stream_.avail_out;
  }

  GzipSource(FilePtr file, std::string path)
      : file_(std::move(file)),
        path_(std::move(path)),
        input_(kInputChunkBytes) {}

  FilePtr file_;
  std::string path_;
  std::vector<uint8_t> input_;
  z_stream stream_ = {};
  bool initialised_ = false;
  // Set after a member's trailer (CRC and size) has been checked.
  bool member_ended_ = false;
  bool finished_ = false;
};

// Opens `path`, choosing gzip or plain by the first two bytes.
absl::StatusOr<std::unique_ptr<ByteSource>> OpenSource(
    const std::string& path) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("failed to open ", path));
  }

  uint8_t magic[2] = {0, 0};
  PANDA_ASSIGN_OR_RETURN(const size_t got,
                         ReadFromFile(file.get(), path, magic, 2));
  if (std::fseek(file.get(), 0, SEEK_SET) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("failed to seek in ", path));
  }

  if (got == 2 && magic[0] == kGzipMagic[0] && magic[1] == kGzipMagic[1]) {
    return GzipSource::Create(std::move(file), path);
  }
  return std::make_unique<PlainSource>(std::move(file), path);
}

uint32_t BigEndian32(const uint8_t* bytes) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) |
         (uint32_t{bytes[2]} << 8) | uint32_t{bytes[3]};
}

const char* ElementTypeName(uint8_t type) {
  switch (type) {
    case 0x08:
      return "uint8";
    case 0x09:
      return "int8";
    case 0x0b:
      return "int16";
    case 0x0c:
      return "int32";
    case 0x0d:
      return "float32";
    case 0x0e:
      return "float64";
    default:
      return "not an IDX type";
  }
}

absl::Status CheckMagic(const std::string& path, uint32_t magic, int rank) {
  const uint32_t expected =
      (uint32_t{kUint8Type} << 8) | static_cast<uint32_t>(rank);
  if (magic == expected) return absl::OkStatus();

  const std::string found_and_expected = absl::StrFormat(
      "magic number 0x%08x, expected 0x%08x (%d-dimensional uint8)", magic,
      expected, rank);
  if ((magic >> 16) != 0) {
    return absl::DataLossError(
        absl::StrCat(path, " is not an IDX file: ", found_and_expected));
  }
  const uint8_t type = static_cast<uint8_t>(magic >> 8);
  if (type != kUint8Type) {
    return absl::DataLossError(
        absl::StrFormat("%s contains IDX elements of type 0x%02x (%s), but "
                        "only 0x08 (uint8) is supported: %s",
                        path, type, ElementTypeName(type), found_and_expected));
  }
  return absl::DataLossError(
      absl::StrFormat("%s contains a %d-dimensional IDX array: %s", path,
                      magic & 0xff, found_and_expected));
}

// Returns the product of `dims`, checked against kMaxIdxPayloadBytes one
// factor at a time so that it cannot overflow.
absl::StatusOr<uint64_t> PayloadBytes(const std::string& path,
                                      const std::vector<int64_t>& dims) {
  const std::string shape = absl::StrJoin(dims, " x ");
  uint64_t bytes = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    const uint64_t dim = static_cast<uint64_t>(dims[i]);
    if (dim == 0) {
      return absl::DataLossError(
          absl::StrCat(path, " has an IDX header with dimension ", i,
                       " of size 0 (shape ", shape, ")"));
    }
    if (dim > kMaxIdxPayloadBytes / bytes) {
      return absl::DataLossError(
          absl::StrCat(path, " has an IDX header with shape ", shape,
                       ", which exceeds the limit of ", kMaxIdxPayloadBytes,
                       " bytes; the header is corrupt"));
    }
    bytes *= dim;
  }
  return bytes;
}

// Reads up to `expected` bytes into `data` and returns how many arrived.
// `data` grows as bytes arrive rather than to `expected` at once, so a
// truncated file with a large header costs memory only for what it holds.
absl::StatusOr<size_t> ReadPayload(ByteSource& source, size_t expected,
                                   std::vector<uint8_t>& data) {
  size_t filled = 0;
  while (filled < expected) {
    const size_t capacity =
        std::min(expected, std::max(kFirstPayloadChunkBytes, 2 * filled));
    data.resize(capacity);
    PANDA_ASSIGN_OR_RETURN(
        const size_t got, source.Read(data.data() + filled, capacity - filled));
    filled += got;
    if (filled < capacity) break;
  }
  data.resize(filled);
  return filled;
}

// Returns how many bytes remain in `source`.
absl::StatusOr<uint64_t> CountRemaining(ByteSource& source) {
  uint8_t scratch[4096];
  uint64_t remaining = 0;
  while (true) {
    PANDA_ASSIGN_OR_RETURN(const size_t got,
                           source.Read(scratch, sizeof(scratch)));
    remaining += got;
    if (got < sizeof(scratch)) return remaining;
  }
}

absl::Status Truncated(const std::string& path, const ByteSource& source,
                       uint64_t expected, uint64_t actual) {
  return absl::DataLossError(absl::StrCat(
      "IDX file ", path, " is truncated: expected ", expected, " bytes",
      source.compressed() ? " after decompression" : "", ", found ", actual));
}

absl::StatusOr<IdxArray> ParseIdx(ByteSource& source, const std::string& path,
                                  int rank) {
  // The magic number is checked before the dimensions are read, so a file of
  // the wrong kind reports its magic rather than a short header.
  const size_t header_bytes = 4 + 4 * static_cast<size_t>(rank);
  std::vector<uint8_t> header(header_bytes);
  PANDA_ASSIGN_OR_RETURN(const size_t magic_got, source.Read(header.data(), 4));
  if (magic_got < 4) return Truncated(path, source, header_bytes, magic_got);
  PANDA_RETURN_IF_ERROR(CheckMagic(path, BigEndian32(header.data()), rank));

  PANDA_ASSIGN_OR_RETURN(const size_t dims_got,
                         source.Read(header.data() + 4, header_bytes - 4));
  if (dims_got < header_bytes - 4) {
    return Truncated(path, source, header_bytes, 4 + dims_got);
  }

  IdxArray array;
  for (int i = 0; i < rank; ++i) {
    array.dims.push_back(BigEndian32(header.data() + 4 + 4 * i));
  }
  PANDA_ASSIGN_OR_RETURN(const uint64_t payload_bytes,
                         PayloadBytes(path, array.dims));

  PANDA_ASSIGN_OR_RETURN(const size_t payload_got,
                         ReadPayload(source, payload_bytes, array.data));
  if (payload_got < payload_bytes) {
    return Truncated(path, source, header_bytes + payload_bytes,
                     header_bytes + payload_got);
  }

  PANDA_ASSIGN_OR_RETURN(const uint64_t trailing, CountRemaining(source));
  if (trailing > 0) {
    return absl::DataLossError(absl::StrCat(
        "IDX file ", path, " has ", trailing, " bytes after the ",
        header_bytes + payload_bytes, " that its header promises",
        source.compressed() ? " (counted after decompression)" : ""));
  }
  return array;
}

}  // namespace

absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path, int rank) {
  if (rank < 1 || rank > 255) {
    return absl::InvalidArgumentError(absl::StrCat(
        "IDX rank must be in [1, 255], got ", rank, " for ", path));
  }
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<ByteSource> source, OpenSource(path));

  absl::StatusOr<IdxArray> array = ParseIdx(*source, path, rank);
  if (!array.ok() && source->compressed()) {
    // gzip checks its CRC only at the end of a stream, so a bad header may
    // come from a corrupt stream. Inflating the rest distinguishes the two, and
    // the gzip error is then the accurate report.
    absl::StatusOr<uint64_t> rest = CountRemaining(*source);
    if (!rest.ok()) return rest.status();
  }
  return array;
}

}  // namespace panda
