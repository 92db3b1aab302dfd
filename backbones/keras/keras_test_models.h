// Test helpers that build small Keras model files in the .pkm format. The
// encoder writes the format field by field from its description, sharing no
// code with the reader, so that a reader bug cannot hide behind a matching
// writer bug.
#ifndef PANDA_BACKBONES_KERAS_KERAS_TEST_MODELS_H_
#define PANDA_BACKBONES_KERAS_KERAS_TEST_MODELS_H_

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backbones/keras/keras_model.pb.h"

namespace panda::keras::testing {

// Bytes of a .pkm file whose header is `header_json` and whose data section
// holds `values`.
std::string EncodeModelFile(const std::string& header_json,
                            const std::vector<float>& values);

// Protobuf JSON of `model`, as the converter writes it.
std::string ModelToJson(const Model& model);

// Writes `bytes` to `name` under the test's temporary folder and returns the
// path.
std::string WriteTestFile(const std::string& name, const std::string& bytes);

// Assembles a Model layer by layer together with its weight values.
class ModelBuilder {
 public:
  // Starts a model named `name` whose InputLayer "input" takes
  // height x width x channels images.
  ModelBuilder(const std::string& name, int height, int width, int channels);

  // Appends a layer and returns it so the caller can set its fields.
  Layer* AddLayer(const std::string& class_name, const std::string& name,
                  const std::vector<std::string>& inbound);

  // Appends the weight "<layer>/<variable>" with `shape` and values drawn
  // uniformly from [low, high).
  void AddWeight(const std::string& layer, const std::string& variable,
                 const std::vector<int64_t>& shape, float low = -0.5f,
                 float high = 0.5f);

  const Model& model() const { return model_; }
  Model& mutable_model() { return model_; }

  // Values of every weight, concatenated in model().weights() order.
  std::vector<float> ConcatenatedValues() const;

  // Values of the weight "<layer>/<variable>".
  const std::vector<float>& values(const std::string& weight_name) const {
    return values_.at(weight_name);
  }

  // Bytes of the model as a .pkm file.
  std::string Encode() const;

 private:
  Model model_;
  std::map<std::string, std::vector<float>> values_;
  std::mt19937 random_{1234};
};

// A small network that uses every supported layer class and the awkward
// cases of TensorFlow padding (asymmetric "same" padding in convolutions and
// both pooling kinds, dilation, padding-excluding averages, NHWC flatten).
// Input 7x6x3, output 3 softmax probabilities. The layer "head_pool" is the
// last AveragePooling2D, and its input "act" has 20 channels.
ModelBuilder TinyModel();

}  // namespace panda::keras::testing

#endif  // PANDA_BACKBONES_KERAS_KERAS_TEST_MODELS_H_
