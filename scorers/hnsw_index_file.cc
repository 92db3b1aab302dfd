#include "scorers/hnsw_index_file.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/atomic_file.h"
#include "core/fnv1a.h"
#include "core/status_macros.h"

namespace panda {
namespace {

constexpr char kMagic[8] = {'P', 'A', 'N', 'D', 'A', 'H', 'N', 'S'};
constexpr uint32_t kVersion = 1;
constexpr size_t kCopyBufferBytes = size_t{1} << 20;

struct Header {
  uint32_t version = kVersion;
  uint32_t space = 0;
  int64_t dim = 0;
  int64_t count = 0;
  int64_t m = 0;
  int64_t ef_construction = 0;
  uint64_t features_checksum = 0;
  uint64_t payload_checksum = 0;
  uint64_t payload_bytes = 0;
};

// Appends the raw bytes of `value` at `*offset` in `buffer`.
template <typename T>
void Put(const T& value, char* buffer, size_t* offset) {
  std::memcpy(buffer + *offset, &value, sizeof(T));
  *offset += sizeof(T);
}

template <typename T>
void Get(const char* buffer, size_t* offset, T* value) {
  std::memcpy(value, buffer + *offset, sizeof(T));
  *offset += sizeof(T);
}

std::string EncodeHeader(const Header& header) {
  std::string bytes(kHnswIndexHeaderBytes, '\0');
  size_t offset = 0;
  std::memcpy(bytes.data(), kMagic, sizeof(kMagic));
  offset += sizeof(kMagic);
  Put(header.version, bytes.data(), &offset);
  Put(header.space, bytes.data(), &offset);
  Put(header.dim, bytes.data(), &offset);
  Put(header.count, bytes.data(), &offset);
  Put(header.m, bytes.data(), &offset);
  Put(header.ef_construction, bytes.data(), &offset);
  Put(header.features_checksum, bytes.data(), &offset);
  Put(header.payload_checksum, bytes.data(), &offset);
  Put(header.payload_bytes, bytes.data(), &offset);
  return bytes;
}

Header DecodeHeader(const char* bytes) {
  Header header;
  size_t offset = sizeof(kMagic);
  Get(bytes, &offset, &header.version);
  Get(bytes, &offset, &header.space);
  Get(bytes, &offset, &header.dim);
  Get(bytes, &offset, &header.count);
  Get(bytes, &offset, &header.m);
  Get(bytes, &offset, &header.ef_construction);
  Get(bytes, &offset, &header.features_checksum);
  Get(bytes, &offset, &header.payload_checksum);
  Get(bytes, &offset, &header.payload_bytes);
  return header;
}

// A file name beside `path`, unique within the machine, removed when this
// object goes out of scope.
class TemporaryFile {
 public:
  TemporaryFile(const std::string& path, const char* purpose) {
    static std::atomic<int> counter{0};
    path_ = absl::StrCat(path, ".", purpose, "-", getpid(), "-", counter++);
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() { std::remove(path_.c_str()); }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Reads `bytes` bytes from `input`, passes each piece to `consume` and
// returns their FNV-1a. DataLoss names `path` if the input ends early.
template <typename Consume>
absl::StatusOr<uint64_t> StreamBytes(std::istream& input, uint64_t bytes,
                                     const std::string& path,
                                     const Consume& consume) {
  std::vector<char> buffer(kCopyBufferBytes);
  uint64_t checksum = kFnv1aOffsetBasis;
  uint64_t left = bytes;
  while (left > 0) {
    const size_t piece = static_cast<size_t>(
        std::min<uint64_t>(left, static_cast<uint64_t>(buffer.size())));
    input.read(buffer.data(), static_cast<std::streamsize>(piece));
    if (static_cast<size_t>(input.gcount()) != piece) {
      return absl::DataLossError(absl::StrCat(
          "HNSW index ", path, " ended after ", bytes - left, " of ", bytes,
          " payload bytes"));
    }
    checksum = Fnv1a64(buffer.data(), piece, checksum);
    PANDA_RETURN_IF_ERROR(consume(buffer.data(), piece));
    left -= piece;
  }
  return checksum;
}

absl::Status Ignore(const char*, size_t) { return absl::OkStatus(); }

const char* SpaceName(uint32_t space) {
  switch (space) {
    case static_cast<uint32_t>(HnswSpace::kSquaredL2):
      return "squared L2";
    case static_cast<uint32_t>(HnswSpace::kInnerProduct):
      return "inner product";
  }
  return "unknown";
}

// FailedPrecondition naming the first identity field in which `found`
// differs from `expected`, or OK.
absl::Status CompareIdentity(const std::string& path, const Header& found,
                             const HnswIndexIdentity& expected) {
  auto differs = [&](const char* field, const std::string& found_value,
                     const std::string& expected_value) {
    return absl::FailedPreconditionError(absl::StrCat(
        "HNSW index ", path, " was built with ", field, " ", found_value,
        ", but this bank needs ", expected_value));
  };
  if (found.space != static_cast<uint32_t>(expected.space)) {
    return differs("space", SpaceName(found.space),
                   SpaceName(static_cast<uint32_t>(expected.space)));
  }
  if (found.dim != expected.dim) {
    return differs("dim =", absl::StrCat(found.dim),
                   absl::StrCat(expected.dim));
  }
  if (found.count != expected.count) {
    return differs("count =", absl::StrCat(found.count),
                   absl::StrCat(expected.count));
  }
  if (found.m != expected.m) {
    return differs("m =", absl::StrCat(found.m), absl::StrCat(expected.m));
  }
  if (found.ef_construction != expected.ef_construction) {
    return differs("ef_construction =", absl::StrCat(found.ef_construction),
                   absl::StrCat(expected.ef_construction));
  }
  if (found.features_checksum != expected.features_checksum) {
    return differs("training features of checksum",
                   absl::StrFormat("%016x", found.features_checksum),
                   absl::StrFormat("%016x", expected.features_checksum));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteHnswIndexFile(const std::string& path,
                                const HnswIndexIdentity& identity,
                                const HnswIndex& index) {
  std::error_code error;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  if (error) {
    return absl::InternalError(absl::StrCat(
        "failed to create folder ", parent.string(), ": ", error.message()));
  }

  TemporaryFile payload(path, "payload");
  PANDA_RETURN_IF_ERROR(index.Save(payload.path()));
  const uint64_t payload_bytes = static_cast<uint64_t>(index.SerializedBytes());

  // Two passes, because the header with the checksum precedes the payload.
  std::ifstream first_pass(payload.path(), std::ios::binary);
  PANDA_ASSIGN_OR_RETURN(
      const uint64_t checksum,
      StreamBytes(first_pass, payload_bytes, payload.path(), Ignore));

  Header header;
  header.space = static_cast<uint32_t>(identity.space);
  header.dim = identity.dim;
  header.count = identity.count;
  header.m = identity.m;
  header.ef_construction = identity.ef_construction;
  header.features_checksum = identity.features_checksum;
  header.payload_checksum = checksum;
  header.payload_bytes = payload_bytes;

  AtomicFileWriter writer;
  PANDA_RETURN_IF_ERROR(writer.Open(path));
  PANDA_RETURN_IF_ERROR(writer.Write(EncodeHeader(header)));
  std::ifstream second_pass(payload.path(), std::ios::binary);
  PANDA_ASSIGN_OR_RETURN(
      const uint64_t copied_checksum,
      StreamBytes(second_pass, payload_bytes, payload.path(),
                  [&](const char* data, size_t size) {
                    return writer.Write(data, size);
                  }));
  if (copied_checksum != checksum) {
    return absl::InternalError(absl::StrCat(
        "HNSW payload ", payload.path(), " changed while it was copied"));
  }
  return writer.Commit();
}

absl::StatusOr<std::unique_ptr<HnswIndex>> ReadHnswIndexFile(
    const std::string& path, const HnswIndexIdentity& expected) {
  std::error_code error;
  const uintmax_t file_bytes = std::filesystem::file_size(path, error);
  if (error) {
    return absl::NotFoundError(absl::StrCat("no HNSW index ", path));
  }
  std::ifstream input(path, std::ios::binary);
  if (!input) {
    return absl::NotFoundError(absl::StrCat("cannot open HNSW index ", path,
                                            ": ", std::strerror(errno)));
  }

  char header_bytes[kHnswIndexHeaderBytes];
  input.read(header_bytes, kHnswIndexHeaderBytes);
  if (input.gcount() != kHnswIndexHeaderBytes) {
    return absl::DataLossError(absl::StrCat(
        "HNSW index ", path, " is truncated: ", file_bytes,
        " bytes, fewer than its ", kHnswIndexHeaderBytes, "-byte header"));
  }
  if (std::memcmp(header_bytes, kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError(absl::StrCat(
        path, " is not an HNSW index file of this program (wrong magic)"));
  }
  const Header header = DecodeHeader(header_bytes);
  if (header.version != kVersion) {
    return absl::DataLossError(absl::StrCat(
        "HNSW index ", path, " has format version ", header.version,
        ", but this program reads version ", kVersion));
  }
  PANDA_RETURN_IF_ERROR(CompareIdentity(path, header, expected));
  const uint64_t stored_payload = file_bytes - kHnswIndexHeaderBytes;
  if (stored_payload != header.payload_bytes) {
    return absl::DataLossError(absl::StrCat(
        "HNSW index ", path, " holds ", stored_payload,
        " payload bytes, but its header says ", header.payload_bytes,
        stored_payload < header.payload_bytes ? " (truncated)" : ""));
  }

  TemporaryFile verified(path, "verified");
  std::ofstream copy(verified.path(), std::ios::binary | std::ios::trunc);
  if (!copy) {
    return absl::InternalError(absl::StrCat(
        "failed to create ", verified.path(), ": ", std::strerror(errno)));
  }
  PANDA_ASSIGN_OR_RETURN(
      const uint64_t checksum,
      StreamBytes(input, header.payload_bytes, path,
                  [&](const char* data, size_t size) {
                    copy.write(data, static_cast<std::streamsize>(size));
                    return copy ? absl::OkStatus()
                                : absl::InternalError(absl::StrCat(
                                      "failed to write ", verified.path()));
                  }));
  copy.close();
  if (!copy) {
    return absl::InternalError(
        absl::StrCat("failed to write ", verified.path()));
  }
  if (checksum != header.payload_checksum) {
    return absl::DataLossError(absl::StrFormat(
        "HNSW index %s is corrupt: its payload checksum is %016x, but its "
        "header says %016x",
        path, checksum, header.payload_checksum));
  }

  PANDA_ASSIGN_OR_RETURN(
      std::unique_ptr<HnswIndex> index,
      HnswIndex::LoadVerifiedFile(verified.path(), expected.dim,
                                  expected.space));
  if (index->size() != expected.count || index->m() != expected.m) {
    return absl::DataLossError(absl::StrCat(
        "HNSW index ", path, " holds ", index->size(), " rows with m = ",
        index->m(), ", but its header says ", expected.count, " rows with m = ",
        expected.m));
  }
  return index;
}

}  // namespace panda
