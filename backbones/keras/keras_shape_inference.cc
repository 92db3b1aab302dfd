#include "backbones/keras/keras_shape_inference.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace panda::keras {
namespace {

// Output pixels along one axis of a convolution or pooling window.
absl::StatusOr<int64_t> WindowOutputSize(const GraphSpec& spec,
                                         const LayerSpec& layer, int axis,
                                         int64_t size, int64_t dilation) {
  const int64_t kernel = layer.kernel_size[axis];
  const int64_t stride = layer.strides[axis];
  if (layer.padding == Padding::kSame) return (size + stride - 1) / stride;

  const int64_t extent = (kernel - 1) * dilation + 1;
  if (size < extent) {
    return InvalidLayerError(
        spec, layer,
        absl::StrCat("its window spans ", extent, " pixels along the ",
                     axis == 0 ? "height" : "width", ", but its input has only ",
                     size, ". Use a larger input size"));
  }
  return (size - extent) / stride + 1;
}

absl::StatusOr<Shape> WindowOutputShape(const GraphSpec& spec,
                                        const LayerSpec& layer,
                                        const Shape& input, int64_t channels,
                                        bool dilated) {
  Shape output = {channels, 0, 0};
  for (int axis = 0; axis < 2; ++axis) {
    const int64_t dilation = dilated ? layer.dilation_rate[axis] : 1;
    absl::StatusOr<int64_t> size =
        WindowOutputSize(spec, layer, axis, input[1 + axis], dilation);
    if (!size.ok()) return size.status();
    output[1 + axis] = *size;
  }
  return output;
}

absl::Status RequireImageMap(const GraphSpec& spec, const LayerSpec& layer,
                             const Shape& input) {
  if (input.size() == 3) return absl::OkStatus();
  return InvalidLayerError(
      spec, layer,
      absl::StrCat("needs an image map input [C, H, W], got shape ",
                   ShapeToString(input)));
}

absl::Status RequireChannels(const GraphSpec& spec, const LayerSpec& layer,
                             const Shape& input) {
  if (layer.input_channels == 0 || input[0] == layer.input_channels) {
    return absl::OkStatus();
  }
  return InvalidLayerError(
      spec, layer,
      absl::StrCat("its weights expect ", layer.input_channels,
                   " input channels, but its input has shape ",
                   ShapeToString(input)));
}

// Checks that `axis` (Keras, NHWC with batch) is the channel axis of an input
// of `rank` dimensions without batch.
absl::Status RequireChannelAxis(const GraphSpec& spec, const LayerSpec& layer,
                                size_t rank) {
  if (layer.axis == -1 || layer.axis == static_cast<int64_t>(rank)) {
    return absl::OkStatus();
  }
  return InvalidLayerError(
      spec, layer,
      absl::StrCat("axis ", layer.axis,
                   " is not supported; only the channel axis (-1 or ", rank,
                   " for this input) is"));
}

absl::StatusOr<Shape> AddShape(const GraphSpec& spec, const LayerSpec& layer,
                               const std::vector<const Shape*>& inputs) {
  for (const Shape* input : inputs) {
    if (*input != *inputs[0]) {
      return InvalidLayerError(
          spec, layer,
          absl::StrCat("inputs have different shapes ", ShapeToString(*inputs[0]),
                       " and ", ShapeToString(*input)));
    }
  }
  return *inputs[0];
}

absl::StatusOr<Shape> ConcatenateShape(const GraphSpec& spec,
                                       const LayerSpec& layer,
                                       const std::vector<const Shape*>& inputs) {
  absl::Status status = RequireChannelAxis(spec, layer, inputs[0]->size());
  if (!status.ok()) return status;

  Shape output = *inputs[0];
  output[0] = 0;
  for (const Shape* input : inputs) {
    if (input->size() != output.size() ||
        !std::equal(input->begin() + 1, input->end(), output.begin() + 1)) {
      return InvalidLayerError(
          spec, layer,
          absl::StrCat("inputs ", ShapeToString(*inputs[0]), " and ",
                       ShapeToString(*input),
                       " differ in more than the channel axis"));
    }
    output[0] += (*input)[0];
  }
  return output;
}

absl::StatusOr<Shape> FlattenShape(const GraphSpec& spec, const LayerSpec& layer,
                                   const Shape& input) {
  int64_t size = 1;
  for (int64_t dim : input) {
    if (__builtin_mul_overflow(size, dim, &size)) {
      return InvalidLayerError(
          spec, layer,
          absl::StrCat("input shape ", ShapeToString(input), " is too large"));
    }
  }
  return Shape{size};
}

absl::StatusOr<Shape> DenseShape(const GraphSpec& spec, const LayerSpec& layer,
                                 const Shape& input) {
  if (input.size() != 1) {
    return InvalidLayerError(
        spec, layer,
        absl::StrCat("needs a vector input [D], got shape ", ShapeToString(input),
                     ". Only Dense layers after Flatten are supported"));
  }
  if (layer.input_channels != 0 && input[0] != layer.input_channels) {
    return InvalidLayerError(
        spec, layer,
        absl::StrCat("its kernel expects ", layer.input_channels,
                     " input units, but its input has ", input[0],
                     ". The classification head runs only at the input size "
                     "the model was built for"));
  }
  return Shape{layer.output_channels};
}

}  // namespace

std::array<int64_t, 2> SamePadding(int64_t size, int64_t kernel, int64_t stride,
                                   int64_t dilation) {
  const int64_t output = (size + stride - 1) / stride;
  const int64_t extent = (kernel - 1) * dilation + 1;
  const int64_t total = std::max<int64_t>((output - 1) * stride + extent - size, 0);
  return {total / 2, total - total / 2};
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<Shape> InferLayerShape(const GraphSpec& spec, int index,
                                      const std::vector<const Shape*>& inputs,
                                      int64_t height, int64_t width) {
  const LayerSpec& layer = spec.layers[index];
  if (layer.kind == LayerKind::kInputLayer) {
    return Shape{spec.input_channels, height, width};
  }
  if (inputs.empty() || inputs.size() != layer.inputs.size()) {
    return InvalidLayerError(spec, layer,
                             absl::StrCat("expected ", layer.inputs.size(),
                                          " input shapes, got ", inputs.size()));
  }
  const Shape& input = *inputs[0];
  absl::Status status;

  switch (layer.kind) {
    case LayerKind::kInputLayer:
      break;
    case LayerKind::kZeroPadding2D: {
      status = RequireImageMap(spec, layer, input);
      if (!status.ok()) return status;
      const auto& pad = layer.zero_padding;
      return Shape{input[0], input[1] + pad[0] + pad[1],
                   input[2] + pad[2] + pad[3]};
    }
    case LayerKind::kConv2D:
    case LayerKind::kDepthwiseConv2D:
      status = RequireImageMap(spec, layer, input);
      if (status.ok()) status = RequireChannels(spec, layer, input);
      if (!status.ok()) return status;
      return WindowOutputShape(spec, layer, input, layer.output_channels,
                               /*dilated=*/true);
    case LayerKind::kMaxPooling2D:
    case LayerKind::kAveragePooling2D:
      status = RequireImageMap(spec, layer, input);
      if (!status.ok()) return status;
      return WindowOutputShape(spec, layer, input, input[0], /*dilated=*/false);
    case LayerKind::kBatchNormalization:
      status = RequireChannelAxis(spec, layer, input.size());
      if (status.ok()) status = RequireChannels(spec, layer, input);
      if (!status.ok()) return status;
      return input;
    case LayerKind::kReLU:
    case LayerKind::kActivation:
    case LayerKind::kDropout:
      return input;
    case LayerKind::kAdd:
      return AddShape(spec, layer, inputs);
    case LayerKind::kConcatenate:
      return ConcatenateShape(spec, layer, inputs);
    case LayerKind::kFlatten:
      return FlattenShape(spec, layer, input);
    case LayerKind::kDense:
      return DenseShape(spec, layer, input);
  }
  return InvalidLayerError(spec, layer, "has no shape rule");
}

absl::StatusOr<std::vector<Shape>> InferShapes(const GraphSpec& spec,
                                               int64_t height, int64_t width,
                                               const std::vector<bool>& needed) {
  if (needed.size() != spec.layers.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.path, ": expected one needed flag per layer (",
                     spec.layers.size(), "), got ", needed.size()));
  }
  if (height < 1 || width < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.path, ": input size ", height, "x", width,
                     " is invalid; both sides must be at least 1 pixel"));
  }

  std::vector<Shape> shapes(spec.layers.size());
  std::vector<const Shape*> inputs;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    if (!needed[i]) continue;
    const LayerSpec& layer = spec.layers[i];
    inputs.clear();
    for (int input : layer.inputs) {
      if (!needed[input]) {
        return InvalidLayerError(
            spec, layer,
            absl::StrCat("is needed but its input '", spec.layers[input].name,
                         "' is not marked as needed"));
      }
      inputs.push_back(&shapes[input]);
    }
    absl::StatusOr<Shape> shape =
        InferLayerShape(spec, static_cast<int>(i), inputs, height, width);
    if (!shape.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(shape.status().message(), " (network input ", height,
                       "x", width, ")"));
    }
    shapes[i] = *std::move(shape);
  }
  return shapes;
}

}  // namespace panda::keras
