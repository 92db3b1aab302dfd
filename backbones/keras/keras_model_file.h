// Reader for .pkm files: Keras layers models converted for LibTorch by
// tools/convert_tfjs_layers_model.js.
//
// Layout, every integer little-endian:
//   8 bytes   magic "PANDAKRS"
//   uint32    format version, 1
//   uint32    J, byte length of the header
//   J bytes   UTF-8 protobuf JSON of panda.keras.Model (keras_model.proto)
//   uint64    D, byte length of the weight data
//   D bytes   float32 little-endian values of every tensor in Model.weights,
//             in that order, each in its Keras layout
//   uint64    FNV-1a 64-bit hash of the D data bytes
//
//   PANDA_ASSIGN_OR_RETURN(keras::ModelFile file,
//                          keras::ReadModelFile("data/weights/mobilenet_v2.pkm"));
//   const float* kernel = file.WeightData(file.weight_index.at("Conv1/kernel"));
//
// The reader checks the container only: every length, the JSON syntax, that
// weight names are unique and that D matches the weight shapes, and the
// checksum. Whether the layers and weights form a valid network is checked
// by BuildGraphSpec (keras_graph_spec.h).
#ifndef PANDA_BACKBONES_KERAS_KERAS_MODEL_FILE_H_
#define PANDA_BACKBONES_KERAS_KERAS_MODEL_FILE_H_

#include <cstddef>
#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/keras/keras_model.pb.h"

namespace panda::keras {

inline constexpr char kModelFileMagic[8] = {'P', 'A', 'N', 'D',
                                            'A', 'K', 'R', 'S'};
inline constexpr uint32_t kModelFileVersion = 1;

// Largest header accepted. The converted InceptionV3 (318 layers) has a
// 68 KB header, so this leaves ample room while bounding what a corrupt
// length can make the reader allocate.
inline constexpr uint32_t kMaxModelHeaderBytes = 16 << 20;

// A model file as read from disk.
struct ModelFile {
  // Path the file was read from, for error messages.
  std::string path;
  // Architecture and weight list from the header.
  Model model;
  // Values of every weight, concatenated in model.weights() order.
  std::vector<float> data;
  // Start of each weight in `data`, plus data.size() as a final entry, so
  // weight i spans [offsets[i], offsets[i + 1]).
  std::vector<size_t> offsets;
  // Index into model.weights() of each weight name.
  std::map<std::string, int> weight_index;
  // FNV-1a 64 of the data bytes, as stored in and verified against the file.
  uint64_t checksum = 0;

  // Values of weight `index`, offsets[index + 1] - offsets[index] floats.
  const float* WeightData(int index) const { return data.data() + offsets[index]; }
};

// Reads and checks the model file at `path`. Returns NotFound for a missing
// file, InvalidArgument for a directory or other non-regular file, and
// PermissionDenied or Unknown for one that cannot be opened. A corrupt or
// inconsistent file is DataLoss: wrong magic, unsupported version,
// truncation, malformed JSON, a data length that does not match the weight
// shapes, or a checksum mismatch. Every message names `path`.
absl::StatusOr<ModelFile> ReadModelFile(const std::string& path);

// Parses a model file from `stream`, whose total length is `size` bytes.
// `path` names the source in error messages. Errors as for ReadModelFile.
absl::StatusOr<ModelFile> ParseModelFile(std::istream& stream, uint64_t size,
                                         const std::string& path);

}  // namespace panda::keras

#endif  // PANDA_BACKBONES_KERAS_KERAS_MODEL_FILE_H_
