#include "backbones/keras/keras_graph_spec.h"

#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backbones/keras/keras_shape_inference.h"
#include "google/protobuf/repeated_field.h"

namespace panda::keras {
namespace {

struct LayerClass {
  const char* name;
  LayerKind kind;
};

constexpr LayerClass kLayerClasses[] = {
    {"InputLayer", LayerKind::kInputLayer},
    {"ZeroPadding2D", LayerKind::kZeroPadding2D},
    {"Conv2D", LayerKind::kConv2D},
    {"DepthwiseConv2D", LayerKind::kDepthwiseConv2D},
    {"BatchNormalization", LayerKind::kBatchNormalization},
    {"ReLU", LayerKind::kReLU},
    {"Activation", LayerKind::kActivation},
    {"Add", LayerKind::kAdd},
    {"Concatenate", LayerKind::kConcatenate},
    {"MaxPooling2D", LayerKind::kMaxPooling2D},
    {"AveragePooling2D", LayerKind::kAveragePooling2D},
    {"Flatten", LayerKind::kFlatten},
    {"Dense", LayerKind::kDense},
    {"Dropout", LayerKind::kDropout},
};

std::string SupportedClassNames() {
  std::vector<std::string> names;
  for (const LayerClass& layer_class : kLayerClasses) {
    names.push_back(layer_class.name);
  }
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<LayerKind> ParseKind(const GraphSpec& spec, const LayerSpec& layer) {
  for (const LayerClass& layer_class : kLayerClasses) {
    if (layer.class_name == layer_class.name) return layer_class.kind;
  }
  return InvalidLayerError(spec, layer,
                           absl::StrCat("layer class is not supported; supported "
                                        "classes are ",
                                        SupportedClassNames()));
}

// Reads a {height, width} setting of positive values. An absent setting
// keeps `*value`.
absl::Status ParsePair(const GraphSpec& spec, const LayerSpec& layer,
                       const char* field,
                       const google::protobuf::RepeatedField<int32_t>& values,
                       std::array<int64_t, 2>* value) {
  if (values.empty()) return absl::OkStatus();
  if (values.size() != 2 || values[0] < 1 || values[1] < 1) {
    return InvalidLayerError(
        spec, layer,
        absl::StrCat(field, " must be two positive integers, got [",
                     absl::StrJoin(values, ", "), "]"));
  }
  *value = {values[0], values[1]};
  return absl::OkStatus();
}

absl::Status ParsePadding(const GraphSpec& spec, const Layer& source,
                          LayerSpec* layer) {
  if (!source.has_padding() || source.padding() == "valid") {
    layer->padding = Padding::kValid;
  } else if (source.padding() == "same") {
    layer->padding = Padding::kSame;
  } else {
    return InvalidLayerError(
        spec, *layer,
        absl::StrCat("padding \"", source.padding(),
                     "\" is not supported; expected \"same\" or \"valid\""));
  }
  return absl::OkStatus();
}

absl::Status ParseActivation(const GraphSpec& spec, const Layer& source,
                             LayerSpec* layer) {
  static constexpr std::pair<const char*, Activation> kActivations[] = {
      {"linear", Activation::kLinear},   {"relu", Activation::kRelu},
      {"softmax", Activation::kSoftmax}, {"sigmoid", Activation::kSigmoid},
      {"tanh", Activation::kTanh},
  };
  if (!source.has_activation()) return absl::OkStatus();
  for (const auto& [name, activation] : kActivations) {
    if (source.activation() == name) {
      layer->activation = activation;
      return absl::OkStatus();
    }
  }
  return InvalidLayerError(
      spec, *layer,
      absl::StrCat("activation \"", source.activation(),
                   "\" is not supported; expected linear, relu, softmax, "
                   "sigmoid or tanh"));
}

absl::Status RequireFinite(const GraphSpec& spec, const LayerSpec& layer,
                           const char* field, double value) {
  if (std::isfinite(value)) return absl::OkStatus();
  return InvalidLayerError(spec, layer,
                           absl::StrCat(field, " must be finite, got ", value));
}

// Reads the settings of a convolution or pooling window.
absl::Status ParseWindow(const GraphSpec& spec, const Layer& source,
                         LayerSpec* layer) {
  const bool pooling = layer->kind == LayerKind::kMaxPooling2D ||
                       layer->kind == LayerKind::kAveragePooling2D;
  absl::Status status;
  if (pooling) {
    // Keras pools 2x2 windows by default, with strides equal to the window.
    layer->kernel_size = {2, 2};
    status = ParsePair(spec, *layer, "pool_size", source.pool_size(),
                       &layer->kernel_size);
    layer->strides = layer->kernel_size;
  } else if (source.kernel_size().empty()) {
    return InvalidLayerError(spec, *layer, "kernel_size is missing");
  } else {
    status = ParsePair(spec, *layer, "kernel_size", source.kernel_size(),
                       &layer->kernel_size);
  }
  if (status.ok()) {
    status = ParsePair(spec, *layer, "strides", source.strides(), &layer->strides);
  }
  if (status.ok() && !pooling) {
    status = ParsePair(spec, *layer, "dilation_rate", source.dilation_rate(),
                       &layer->dilation_rate);
  }
  if (status.ok()) status = ParsePadding(spec, source, layer);
  return status;
}

// Reads the settings that Conv2D and DepthwiseConv2D share.
absl::Status ParseConvolution(const GraphSpec& spec, const Layer& source,
                              LayerSpec* layer) {
  absl::Status status = ParseWindow(spec, source, layer);
  if (status.ok()) status = ParseActivation(spec, source, layer);
  if (source.has_use_bias()) layer->use_bias = source.use_bias();
  return status;
}

// Fills in the settings of `layer` for its kind from `source`, with Keras's
// defaults for settings the file leaves out.
absl::Status ParseSettings(const GraphSpec& spec, const Layer& source,
                           LayerSpec* layer) {
  absl::Status status;
  switch (layer->kind) {
    case LayerKind::kInputLayer:
    case LayerKind::kAdd:
    case LayerKind::kFlatten:
      break;
    case LayerKind::kZeroPadding2D:
      if (source.zero_padding_size() != 0) {
        if (source.zero_padding_size() != 4) {
          return InvalidLayerError(
              spec, *layer,
              absl::StrCat("zero_padding must be [top, bottom, left, right], got [",
                           absl::StrJoin(source.zero_padding(), ", "), "]"));
        }
        for (int i = 0; i < 4; ++i) {
          if (source.zero_padding(i) < 0) {
            return InvalidLayerError(
                spec, *layer,
                absl::StrCat("zero_padding must not be negative, got [",
                             absl::StrJoin(source.zero_padding(), ", "), "]"));
          }
          layer->zero_padding[i] = source.zero_padding(i);
        }
      }
      break;
    case LayerKind::kConv2D:
      if (source.filters() < 1) {
        return InvalidLayerError(
            spec, *layer,
            absl::StrCat("filters must be positive, got ", source.filters()));
      }
      layer->output_channels = source.filters();
      status = ParseConvolution(spec, source, layer);
      break;
    case LayerKind::kDepthwiseConv2D:
      if (source.has_depth_multiplier()) {
        if (source.depth_multiplier() < 1) {
          return InvalidLayerError(
              spec, *layer,
              absl::StrCat("depth_multiplier must be positive, got ",
                           source.depth_multiplier()));
        }
        layer->depth_multiplier = source.depth_multiplier();
      }
      status = ParseConvolution(spec, source, layer);
      break;
    case LayerKind::kMaxPooling2D:
    case LayerKind::kAveragePooling2D:
      status = ParseWindow(spec, source, layer);
      break;
    case LayerKind::kBatchNormalization:
      if (source.has_epsilon()) {
        if (!std::isfinite(source.epsilon()) || source.epsilon() < 0) {
          return InvalidLayerError(
              spec, *layer,
              absl::StrCat("epsilon must be finite and not negative, got ",
                           source.epsilon()));
        }
        layer->epsilon = source.epsilon();
      }
      if (source.has_center()) layer->center = source.center();
      if (source.has_scale()) layer->scale = source.scale();
      if (source.has_axis()) layer->axis = source.axis();
      break;
    case LayerKind::kReLU:
      if (source.has_max_value()) {
        status = RequireFinite(spec, *layer, "max_value", source.max_value());
        layer->max_value = source.max_value();
      }
      if (status.ok() && source.has_negative_slope()) {
        status = RequireFinite(spec, *layer, "negative_slope",
                               source.negative_slope());
        layer->negative_slope = source.negative_slope();
      }
      if (status.ok() && source.has_threshold()) {
        status = RequireFinite(spec, *layer, "threshold", source.threshold());
        layer->threshold = source.threshold();
      }
      break;
    case LayerKind::kActivation:
      status = ParseActivation(spec, source, layer);
      break;
    case LayerKind::kConcatenate:
      if (source.has_axis()) layer->axis = source.axis();
      break;
    case LayerKind::kDense:
      if (source.units() < 1) {
        return InvalidLayerError(
            spec, *layer,
            absl::StrCat("units must be positive, got ", source.units()));
      }
      layer->output_channels = source.units();
      status = ParseActivation(spec, source, layer);
      if (source.has_use_bias()) layer->use_bias = source.use_bias();
      break;
    case LayerKind::kDropout:
      if (source.has_rate()) {
        if (!(source.rate() >= 0 && source.rate() < 1)) {
          return InvalidLayerError(
              spec, *layer,
              absl::StrCat("rate must be in [0, 1), got ", source.rate()));
        }
        layer->rate = source.rate();
      }
      break;
  }
  return status;
}

absl::Status CheckInputCount(const GraphSpec& spec, const LayerSpec& layer) {
  const size_t count = layer.inputs.size();
  switch (layer.kind) {
    case LayerKind::kInputLayer:
      if (count == 0) return absl::OkStatus();
      return InvalidLayerError(spec, layer, "an InputLayer cannot have inputs");
    case LayerKind::kAdd:
    case LayerKind::kConcatenate:
      if (count >= 2) return absl::OkStatus();
      return InvalidLayerError(
          spec, layer, absl::StrCat("needs at least 2 inputs, got ", count));
    default:
      if (count == 1) return absl::OkStatus();
      return InvalidLayerError(
          spec, layer, absl::StrCat("needs exactly 1 input, got ", count));
  }
}

// The variables a layer owns and the Keras shape of each, given the shape of
// its (first) input.
std::vector<std::pair<std::string, Shape>> ExpectedWeights(const LayerSpec& layer,
                                                           const Shape& input) {
  std::vector<std::pair<std::string, Shape>> weights;
  const int64_t channels = input.empty() ? 0 : input[0];
  const int64_t kernel_height = layer.kernel_size[0];
  const int64_t kernel_width = layer.kernel_size[1];
  switch (layer.kind) {
    case LayerKind::kConv2D:
      weights.push_back({"kernel", {kernel_height, kernel_width, channels,
                                    layer.output_channels}});
      if (layer.use_bias) weights.push_back({"bias", {layer.output_channels}});
      break;
    case LayerKind::kDepthwiseConv2D:
      weights.push_back({"depthwise_kernel", {kernel_height, kernel_width,
                                              channels, layer.depth_multiplier}});
      if (layer.use_bias) {
        weights.push_back({"bias", {channels * layer.depth_multiplier}});
      }
      break;
    case LayerKind::kBatchNormalization:
      if (layer.scale) weights.push_back({"gamma", {channels}});
      if (layer.center) weights.push_back({"beta", {channels}});
      weights.push_back({"moving_mean", {channels}});
      weights.push_back({"moving_variance", {channels}});
      break;
    case LayerKind::kDense:
      weights.push_back({"kernel", {channels, layer.output_channels}});
      if (layer.use_bias) weights.push_back({"bias", {layer.output_channels}});
      break;
    default:
      break;
  }
  return weights;
}

// Finds the weights of `layer` in `file`, checks their shapes against its
// input and records them in layer->weights. Sets the channel counts of
// layers with weights.
absl::Status AttachWeights(const GraphSpec& spec, const ModelFile& file,
                           const Shape& input, LayerSpec* layer,
                           std::vector<bool>* used) {
  const bool has_weights = layer->kind == LayerKind::kConv2D ||
                           layer->kind == LayerKind::kDepthwiseConv2D ||
                           layer->kind == LayerKind::kBatchNormalization ||
                           layer->kind == LayerKind::kDense;
  if (!has_weights) return absl::OkStatus();

  // The kernel layout depends on the input rank, so check it before naming
  // expected shapes.
  const bool vector_input = layer->kind == LayerKind::kDense;
  const bool map_input = layer->kind == LayerKind::kConv2D ||
                         layer->kind == LayerKind::kDepthwiseConv2D;
  if ((vector_input && input.size() != 1) || (map_input && input.size() != 3)) {
    return InvalidLayerError(
        spec, *layer,
        absl::StrCat("needs ", vector_input ? "a vector input [D]" : "an image map input [C, H, W]",
                     ", got shape ", ShapeToString(input)));
  }

  for (const auto& [variable, expected] : ExpectedWeights(*layer, input)) {
    const std::string name = absl::StrCat(layer->name, "/", variable);
    auto found = file.weight_index.find(name);
    if (found == file.weight_index.end()) {
      return InvalidLayerError(
          spec, *layer,
          absl::StrCat("weight \"", name, "\" of shape ", ShapeToString(expected),
                       " is missing from the file"));
    }
    const Weight& weight = file.model.weights(found->second);
    const Shape actual(weight.shape().begin(), weight.shape().end());
    if (actual != expected) {
      return InvalidLayerError(
          spec, *layer,
          absl::StrCat("weight \"", name, "\" has shape ", ShapeToString(actual),
                       ", expected ", ShapeToString(expected), " for input shape ",
                       ShapeToString(input)));
    }
    layer->weights[variable] = found->second;
    (*used)[found->second] = true;
  }

  layer->input_channels = input[0];
  if (layer->kind == LayerKind::kDepthwiseConv2D) {
    layer->output_channels = input[0] * layer->depth_multiplier;
  } else if (layer->kind == LayerKind::kBatchNormalization) {
    layer->output_channels = input[0];
  }
  return absl::OkStatus();
}

absl::Status ParseInputShape(const ModelFile& file, GraphSpec* spec) {
  const auto& shape = file.model.input_shape();
  if (shape.size() != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path, ": input_shape must be three positive integers "
                   "[height, width, channels], got [",
        absl::StrJoin(shape, ", "), "]"));
  }
  spec->input_height = shape[0];
  spec->input_width = shape[1];
  spec->input_channels = shape[2];
  return absl::OkStatus();
}

// Builds layer `index` of the model from its settings, inputs and weights,
// and appends its native output shape to spec->native_shapes.
absl::Status AddLayer(const ModelFile& file, int index, GraphSpec* spec,
                      std::vector<bool>* used_weights) {
  const Layer& source = file.model.layers(index);
  LayerSpec layer;
  layer.name = source.name();
  layer.class_name = source.class_name();
  if (layer.name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path, ": layer ", index, " (", layer.class_name,
                     ") has no name"));
  }
  if (!spec->layer_index.emplace(layer.name, index).second) {
    return InvalidLayerError(*spec, layer, "layer name occurs twice");
  }

  absl::StatusOr<LayerKind> kind = ParseKind(*spec, layer);
  if (!kind.ok()) return kind.status();
  layer.kind = *kind;
  if ((index == 0) != (layer.kind == LayerKind::kInputLayer)) {
    return InvalidLayerError(*spec, layer,
                             "the first layer, and only the first, must be the "
                             "InputLayer");
  }

  for (const std::string& inbound : source.inbound()) {
    auto found = spec->layer_index.find(inbound);
    if (found == spec->layer_index.end() || found->second == index) {
      return InvalidLayerError(
          *spec, layer,
          absl::StrCat("input '", inbound, "' is not an earlier layer"));
    }
    layer.inputs.push_back(found->second);
  }
  absl::Status status = CheckInputCount(*spec, layer);
  if (status.ok()) status = ParseSettings(*spec, source, &layer);
  if (!status.ok()) return status;

  const Shape no_input;
  const Shape& first_input =
      layer.inputs.empty() ? no_input : spec->native_shapes[layer.inputs[0]];
  status = AttachWeights(*spec, file, first_input, &layer, used_weights);
  if (!status.ok()) return status;

  std::vector<const Shape*> inputs;
  for (int input : layer.inputs) inputs.push_back(&spec->native_shapes[input]);
  spec->layers.push_back(std::move(layer));
  absl::StatusOr<Shape> shape = InferLayerShape(
      *spec, index, inputs, spec->input_height, spec->input_width);
  if (!shape.ok()) return shape.status();
  spec->native_shapes.push_back(*std::move(shape));
  return absl::OkStatus();
}

}  // namespace

absl::Status InvalidLayerError(const GraphSpec& spec, const LayerSpec& layer,
                               absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(
      spec.path, ": layer '", layer.name, "' (", layer.class_name, "): ", problem));
}

absl::StatusOr<GraphSpec> BuildGraphSpec(const ModelFile& file) {
  GraphSpec spec;
  spec.name = file.model.name();
  spec.path = file.path;
  absl::Status status = ParseInputShape(file, &spec);
  if (!status.ok()) return status;
  if (file.model.layers_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path, ": the model has no layers"));
  }

  std::vector<bool> used_weights(file.model.weights_size(), false);
  for (int i = 0; i < file.model.layers_size(); ++i) {
    status = AddLayer(file, i, &spec, &used_weights);
    if (!status.ok()) return status;
  }

  for (int i = 0; i < file.model.weights_size(); ++i) {
    if (!used_weights[i]) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path, ": weight \"", file.model.weights(i).name(),
          "\" is not a variable of any layer; weights are named "
          "\"<layer>/<variable>\" and belong to Conv2D, DepthwiseConv2D, "
          "BatchNormalization or Dense layers"));
    }
  }
  return spec;
}

}  // namespace panda::keras
