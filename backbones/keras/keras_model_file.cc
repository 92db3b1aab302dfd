#include "backbones/keras/keras_model_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/fnv1a.h"
#include "google/protobuf/util/json_util.h"

namespace panda::keras {
namespace {

// Magic, version and header length.
constexpr uint64_t kPreambleBytes = 16;

uint32_t DecodeUint32(const unsigned char* bytes) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

uint64_t DecodeUint64(const unsigned char* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

absl::Status Corrupt(const std::string& path, absl::string_view problem) {
  return absl::DataLossError(absl::StrCat(
      path, ": ", problem,
      ". Convert the model again with tools/convert_tfjs_layers_model.js"));
}

absl::Status Truncated(const std::string& path, uint64_t file_size,
                       uint64_t needed, absl::string_view section) {
  return Corrupt(path, absl::StrCat("file is truncated: ", section,
                                    " needs the file to have at least ",
                                    needed, " bytes, but it has ", file_size));
}

// Reads `count` bytes at `*position` into `out` and advances `*position`.
// The caller has checked that the file is long enough, so a short read is
// an I/O error.
absl::Status ReadExactly(std::istream& stream, char* out, uint64_t count,
                         uint64_t* position, const std::string& path) {
  stream.read(out, static_cast<std::streamsize>(count));
  if (static_cast<uint64_t>(stream.gcount()) != count) {
    return absl::DataLossError(absl::StrCat(
        path, ": read failed at byte ", *position + stream.gcount(),
        " while reading ", count, " bytes from byte ", *position));
  }
  *position += count;
  return absl::OkStatus();
}

std::string ShapeString(const Weight& weight) {
  return absl::StrCat("[", absl::StrJoin(weight.shape(), ", "), "]");
}

// Fills file->offsets and file->weight_index from the header and returns the
// total number of float values. `max_values` bounds the total: a header
// that needs more values than the file can hold is corrupt, and the bound
// keeps the products below from overflowing.
absl::StatusOr<uint64_t> IndexWeights(ModelFile* file, uint64_t max_values) {
  const std::string& path = file->path;
  uint64_t total = 0;
  file->offsets.reserve(file->model.weights_size() + 1);
  for (int i = 0; i < file->model.weights_size(); ++i) {
    const Weight& weight = file->model.weights(i);
    if (weight.name().empty()) {
      return Corrupt(path, absl::StrCat("weight ", i, " has no name"));
    }
    if (!file->weight_index.emplace(weight.name(), i).second) {
      return Corrupt(path, absl::StrCat("weight \"", weight.name(),
                                        "\" occurs twice in the header"));
    }

    uint64_t count = 1;
    for (int64_t dim : weight.shape()) {
      if (dim < 0) {
        return Corrupt(path, absl::StrCat("weight \"", weight.name(),
                                          "\" has a negative dimension in shape ",
                                          ShapeString(weight)));
      }
      if (dim != 0 && count > max_values / static_cast<uint64_t>(dim)) {
        return Corrupt(path, absl::StrCat("weight \"", weight.name(),
                                          "\" of shape ", ShapeString(weight),
                                          " needs more data than the file holds"));
      }
      count *= static_cast<uint64_t>(dim);
    }
    file->offsets.push_back(total);
    total += count;
    if (total > max_values) {
      return Corrupt(path, absl::StrCat("the weights up to \"", weight.name(),
                                        "\" need more data than the file holds"));
    }
  }
  file->offsets.push_back(total);
  return total;
}

}  // namespace

absl::StatusOr<ModelFile> ParseModelFile(std::istream& stream, uint64_t size,
                                         const std::string& path) {
  ModelFile file;
  file.path = path;
  uint64_t position = 0;

  if (size < kPreambleBytes) {
    return Truncated(path, size, kPreambleBytes,
                     "the preamble (magic, version, header length)");
  }
  unsigned char preamble[kPreambleBytes];
  absl::Status status = ReadExactly(stream, reinterpret_cast<char*>(preamble),
                                    kPreambleBytes, &position, path);
  if (!status.ok()) return status;

  const absl::string_view magic(reinterpret_cast<const char*>(preamble),
                               sizeof(kModelFileMagic));
  if (magic != absl::string_view(kModelFileMagic, sizeof(kModelFileMagic))) {
    return Corrupt(path, absl::StrCat("not a converted Keras model: expected magic \"",
                                      absl::string_view(kModelFileMagic, 8),
                                      "\", found \"", absl::CHexEscape(magic), "\""));
  }
  const uint32_t version = DecodeUint32(preamble + 8);
  if (version != kModelFileVersion) {
    return Corrupt(path, absl::StrCat("format version ", version,
                                      " is not supported; expected ",
                                      kModelFileVersion));
  }

  const uint32_t header_bytes = DecodeUint32(preamble + 12);
  if (header_bytes > kMaxModelHeaderBytes) {
    return Corrupt(path, absl::StrCat("header length ", header_bytes,
                                      " exceeds the maximum of ",
                                      kMaxModelHeaderBytes, " bytes"));
  }
  if (size - position < header_bytes) {
    return Truncated(path, size, position + header_bytes, "the JSON header");
  }
  std::string json(header_bytes, '\0');
  status = ReadExactly(stream, json.data(), header_bytes, &position, path);
  if (!status.ok()) return status;

  google::protobuf::util::JsonParseOptions json_options;
  json_options.ignore_unknown_fields = false;
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(json, &file.model, json_options);
  if (!parsed.ok()) {
    return Corrupt(path, absl::StrCat("header is not valid panda.keras.Model JSON: ",
                                      parsed.ToString()));
  }

  const absl::StatusOr<uint64_t> value_count =
      IndexWeights(&file, (size - position) / sizeof(float));
  if (!value_count.ok()) return value_count.status();

  if (size - position < 8) {
    return Truncated(path, size, position + 8, "the data length");
  }
  unsigned char length_bytes[8];
  status = ReadExactly(stream, reinterpret_cast<char*>(length_bytes), 8,
                       &position, path);
  if (!status.ok()) return status;
  const uint64_t data_bytes = DecodeUint64(length_bytes);
  const uint64_t expected_bytes = *value_count * sizeof(float);
  if (data_bytes != expected_bytes) {
    return Corrupt(path, absl::StrCat("the data section has ", data_bytes,
                                      " bytes, but the ", file.model.weights_size(),
                                      " weights in the header need ", expected_bytes));
  }
  const uint64_t remaining = size - position;
  if (remaining < data_bytes + 8) {
    return Truncated(path, size, position + data_bytes + 8,
                     "the weight data and checksum");
  }
  if (remaining > data_bytes + 8) {
    return Corrupt(path, absl::StrCat(remaining - data_bytes - 8,
                                      " unexpected bytes follow the checksum"));
  }

  file.data.resize(*value_count);
  status = ReadExactly(stream, reinterpret_cast<char*>(file.data.data()),
                       data_bytes, &position, path);
  if (!status.ok()) return status;
  file.checksum = Fnv1a64(file.data.data(), data_bytes);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  for (float& value : file.data) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    bits = __builtin_bswap32(bits);
    std::memcpy(&value, &bits, sizeof(bits));
  }
#endif

  unsigned char checksum_bytes[8];
  status = ReadExactly(stream, reinterpret_cast<char*>(checksum_bytes), 8,
                       &position, path);
  if (!status.ok()) return status;
  const uint64_t stored_checksum = DecodeUint64(checksum_bytes);
  if (stored_checksum != file.checksum) {
    return Corrupt(path, absl::StrCat("checksum mismatch: the file stores ",
                                      absl::Hex(stored_checksum, absl::kZeroPad16),
                                      ", but the weight data hashes to ",
                                      absl::Hex(file.checksum, absl::kZeroPad16)));
  }
  return file;
}

absl::StatusOr<ModelFile> ReadModelFile(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status file_status =
      std::filesystem::status(path, error);
  if (file_status.type() == std::filesystem::file_type::not_found) {
    return absl::NotFoundError(absl::StrCat("model file not found: ", path));
  }
  if (error) {
    return absl::UnknownError(
        absl::StrCat("cannot access model file ", path, ": ", error.message()));
  }
  if (file_status.type() != std::filesystem::file_type::regular) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a regular file; expected a .pkm model file"));
  }
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) {
    return absl::UnknownError(absl::StrCat("cannot read the size of model file ",
                                           path, ": ", error.message()));
  }

  errno = 0;
  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    const int open_errno = errno;
    const std::string reason =
        open_errno != 0 ? std::strerror(open_errno) : "unknown error";
    if (open_errno == EACCES) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot open model file ", path, ": ", reason));
    }
    return absl::UnknownError(
        absl::StrCat("cannot open model file ", path, ": ", reason));
  }
  return ParseModelFile(stream, size, path);
}

}  // namespace panda::keras
