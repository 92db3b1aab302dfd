#include "core/feature_cache.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/atomic_file.h"
#include "core/fnv1a.h"

namespace panda {
namespace {

// File layout, all integers little-endian:
//   8 bytes magic "PANDAFEA", uint32 version,
//   6 key fields, each uint32 length + bytes (FeatureCacheKey's order),
//   int64 rows, int64 columns, rows * columns float32,
//   uint64 FNV-1a of the float32 bytes.
constexpr char kMagic[8] = {'P', 'A', 'N', 'D', 'A', 'F', 'E', 'A'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxFieldBytes = 1 << 20;

std::vector<const std::string*> Fields(const FeatureCacheKey& key) {
  return {&key.dataset,          &key.split,
          &key.subset,           &key.backbone,
          &key.data_fingerprint, &key.backbone_fingerprint};
}

const char* const kFieldNames[] = {"dataset",          "split",
                                   "subset",           "backbone",
                                   "data fingerprint", "backbone fingerprint"};

uint64_t IdentityHash(const FeatureCacheKey& key) {
  uint64_t hash = kFnv1aOffsetBasis;
  for (const std::string* field : {&key.dataset, &key.split, &key.subset,
                                   &key.backbone}) {
    hash = Fnv1a64(field->data(), field->size(), hash);
    hash = Fnv1a64("\0", 1, hash);
  }
  return hash;
}

// Reads exactly `size` bytes or reports the file as truncated.
absl::Status ReadExactly(std::ifstream& stream, void* data, size_t size,
                         const std::string& path, const char* what) {
  stream.read(static_cast<char*>(data), static_cast<std::streamsize>(size));
  if (static_cast<size_t>(stream.gcount()) != size) {
    return absl::DataLossError(absl::StrCat("feature cache ", path,
                                            " is truncated while reading ",
                                            what));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FeatureCache::PathFor(const FeatureCacheKey& key) const {
  return (std::filesystem::path(directory_) /
          absl::StrFormat("%s-%016x.features", key.split, IdentityHash(key)))
      .string();
}

absl::StatusOr<torch::Tensor> FeatureCache::Load(
    const FeatureCacheKey& key) const {
  const std::string path = PathFor(key);
  std::error_code error;
  const uintmax_t file_size = std::filesystem::file_size(path, error);
  if (error) return absl::NotFoundError(absl::StrCat("no feature cache ", path));

  std::ifstream stream(path, std::ios::binary);
  if (!stream) return absl::NotFoundError(absl::StrCat("cannot open ", path));

  char magic[sizeof(kMagic)];
  uint32_t version = 0;
  absl::Status status = ReadExactly(stream, magic, sizeof(magic), path, "magic");
  if (status.ok()) status = ReadExactly(stream, &version, 4, path, "version");
  if (!status.ok()) return absl::NotFoundError(status.message());
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    return absl::NotFoundError(
        absl::StrCat(path, " is not a feature cache (wrong magic)"));
  }
  if (version != kVersion) {
    return absl::NotFoundError(absl::StrCat(path, " has format version ",
                                            version, ", expected ", kVersion));
  }

  // Key fields: identity fields must match exactly; provenance fields may be
  // stale.
  const std::vector<const std::string*> expected = Fields(key);
  for (size_t i = 0; i < expected.size(); ++i) {
    uint32_t length = 0;
    status = ReadExactly(stream, &length, 4, path, kFieldNames[i]);
    if (!status.ok()) return absl::NotFoundError(status.message());
    if (length > kMaxFieldBytes) {
      return absl::NotFoundError(absl::StrCat(path, " is corrupt: field ",
                                              kFieldNames[i], " has ", length,
                                              " bytes"));
    }
    std::string stored(length, '\0');
    status = ReadExactly(stream, stored.data(), length, path, kFieldNames[i]);
    if (!status.ok()) return absl::NotFoundError(status.message());
    if (stored == *expected[i]) continue;

    if (i < 4) {
      return absl::FailedPreconditionError(absl::StrCat(
          "feature cache ", path, " was written for another ", kFieldNames[i],
          " (", stored.substr(0, 400), ") than this pipeline's (",
          expected[i]->substr(0, 400),
          "); delete the file or point cache_dir elsewhere"));
    }
    return absl::NotFoundError(absl::StrCat("feature cache ", path,
                                            " is stale: the ", kFieldNames[i],
                                            " changed"));
  }

  int64_t rows = 0, columns = 0;
  status = ReadExactly(stream, &rows, 8, path, "rows");
  if (status.ok()) status = ReadExactly(stream, &columns, 8, path, "columns");
  if (!status.ok()) return absl::NotFoundError(status.message());
  const uintmax_t header_end = static_cast<uintmax_t>(stream.tellg());
  if (rows < 0 || columns <= 0 || columns > (1 << 24) ||
      static_cast<uintmax_t>(rows) > file_size / 4 ||
      static_cast<uintmax_t>(rows) * columns * 4 + 8 + header_end !=
          file_size) {
    return absl::NotFoundError(absl::StrCat(
        "feature cache ", path, " is corrupt or truncated: ", rows, " x ",
        columns, " features do not fit its ", file_size, " bytes"));
  }

  torch::Tensor features = torch::empty({rows, columns}, torch::kFloat32);
  const size_t data_bytes = static_cast<size_t>(rows * columns) * 4;
  status = ReadExactly(stream, features.data_ptr<float>(), data_bytes, path,
                       "features");
  uint64_t stored_checksum = 0;
  if (status.ok()) status = ReadExactly(stream, &stored_checksum, 8, path, "checksum");
  if (!status.ok()) return absl::NotFoundError(status.message());
  if (Fnv1a64(features.data_ptr<float>(), data_bytes) != stored_checksum) {
    return absl::NotFoundError(
        absl::StrCat("feature cache ", path, " is corrupt: checksum mismatch"));
  }
  return features;
}

absl::Status FeatureCache::Store(const FeatureCacheKey& key,
                                 const torch::Tensor& features) const {
  if (features.dim() != 2 || features.scalar_type() != torch::kFloat32) {
    return absl::InvalidArgumentError(
        "feature cache stores float32 [N, D] tensors only");
  }
  const torch::Tensor contiguous = features.to(torch::kCPU).contiguous();
  const int64_t rows = contiguous.size(0);
  const int64_t columns = contiguous.size(1);
  const size_t data_bytes = static_cast<size_t>(rows * columns) * 4;

  AtomicFileWriter writer;
  absl::Status status = writer.Open(PathFor(key));
  if (status.ok()) status = writer.Write(kMagic, sizeof(kMagic));
  if (status.ok()) status = writer.Write(&kVersion, 4);
  for (const std::string* field : Fields(key)) {
    const uint32_t length = static_cast<uint32_t>(field->size());
    if (status.ok()) status = writer.Write(&length, 4);
    if (status.ok()) status = writer.Write(field->data(), field->size());
  }
  if (status.ok()) status = writer.Write(&rows, 8);
  if (status.ok()) status = writer.Write(&columns, 8);
  if (status.ok()) status = writer.Write(contiguous.data_ptr<float>(), data_bytes);
  const uint64_t checksum = Fnv1a64(contiguous.data_ptr<float>(), data_bytes);
  if (status.ok()) status = writer.Write(&checksum, 8);
  if (status.ok()) status = writer.Commit();
  return status;
}

}  // namespace panda
