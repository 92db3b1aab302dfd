// The validated, framework-independent form of a converted Keras model: each
// layer's kind and settings with Keras's defaults filled in, its inputs as
// layer indices and its weights checked against the shapes the layer needs.
// keras_shape_inference.h infers the layer shapes for other input sizes.
//
//   PANDA_ASSIGN_OR_RETURN(keras::GraphSpec spec, keras::BuildGraphSpec(file));
//
// Shapes here leave out the batch axis and put channels first, as LibTorch
// does: {C, H, W} for an image map and {D} for a vector.
#ifndef PANDA_BACKBONES_KERAS_KERAS_GRAPH_SPEC_H_
#define PANDA_BACKBONES_KERAS_KERAS_GRAPH_SPEC_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backbones/keras/keras_model_file.h"

namespace panda::keras {

// The Keras layer classes the network supports.
enum class LayerKind {
  kInputLayer,
  kZeroPadding2D,
  kConv2D,
  kDepthwiseConv2D,
  kBatchNormalization,
  kReLU,
  kActivation,
  kAdd,
  kConcatenate,
  kMaxPooling2D,
  kAveragePooling2D,
  kFlatten,
  kDense,
  kDropout,
};

// Keras padding modes. kSame follows TensorFlow: the output has
// ceil(input / stride) pixels and an odd amount of padding puts the extra
// pixel at the bottom or right.
enum class Padding { kValid, kSame };

enum class Activation { kLinear, kRelu, kSoftmax, kSigmoid, kTanh };

// Output shape of one layer without the batch axis: {C, H, W} or {D}.
// Empty for layers that shape inference skipped.
using Shape = std::vector<int64_t>;

// One layer with every setting resolved. Settings that do not apply to the
// layer's kind keep their defaults.
struct LayerSpec {
  std::string name;
  std::string class_name;
  LayerKind kind = LayerKind::kInputLayer;
  // Indices of the layers feeding this one, all smaller than this layer's.
  std::vector<int> inputs;

  // Convolution and pooling window as {height, width}.
  std::array<int64_t, 2> kernel_size = {1, 1};
  std::array<int64_t, 2> strides = {1, 1};
  std::array<int64_t, 2> dilation_rate = {1, 1};
  Padding padding = Padding::kValid;
  // Output channels of Conv2D, DepthwiseConv2D (C * depth_multiplier) and
  // BatchNormalization, or units of Dense.
  int64_t output_channels = 0;
  // Channels (or Dense input units) the layer's weights were made for.
  int64_t input_channels = 0;
  int64_t depth_multiplier = 1;
  bool use_bias = true;
  // Function applied after Conv2D, DepthwiseConv2D and Dense, and by Activation.
  Activation activation = Activation::kLinear;

  // BatchNormalization.
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;

  // ReLU: x for threshold <= x < max_value, max_value above it and
  // negative_slope * (x - threshold) below threshold.
  std::optional<double> max_value;
  double negative_slope = 0.0;
  double threshold = 0.0;

  // Keras axis of BatchNormalization and Concatenate, counted with the batch
  // axis in NHWC order. Only the channel axis (-1, or 3 for image maps) is
  // supported.
  int64_t axis = -1;

  // ZeroPadding2D as {top, bottom, left, right}.
  std::array<int64_t, 4> zero_padding = {1, 1, 1, 1};

  // Dropout probability, used only in training mode.
  double rate = 0.0;

  // Index into ModelFile::model.weights() of each of the layer's variables,
  // keyed by Keras variable name ("kernel", "depthwise_kernel", "bias",
  // "gamma", "beta", "moving_mean", "moving_variance").
  std::map<std::string, int> weights;
};

struct GraphSpec {
  // Model name from the file, e.g. "mobilenet_v2".
  std::string name;
  // File the model was read from, for error messages.
  std::string path;
  // Native input size of the model.
  int64_t input_height = 0;
  int64_t input_width = 0;
  int64_t input_channels = 0;
  // Layers in topological order: layers[0] is the InputLayer and the last
  // layer is the model output.
  std::vector<LayerSpec> layers;
  // Index of each layer name.
  std::map<std::string, int> layer_index;
  // Output shape of every layer at the native input size.
  std::vector<Shape> native_shapes;
};

// Builds the spec of the network in `file`. Returns InvalidArgument naming
// the file and the layer for an unsupported layer class or setting, or an
// input that is not an earlier layer. The same goes for a missing, mis-shaped
// or unused weight and for layers whose shapes do not fit together at the
// native input size.
absl::StatusOr<GraphSpec> BuildGraphSpec(const ModelFile& file);

// InvalidArgument "<spec.path>: layer '<name>' (<class>): <problem>".
absl::Status InvalidLayerError(const GraphSpec& spec, const LayerSpec& layer,
                               absl::string_view problem);

}  // namespace panda::keras

#endif  // PANDA_BACKBONES_KERAS_KERAS_GRAPH_SPEC_H_
