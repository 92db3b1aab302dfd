// Shape inference for a GraphSpec at any input size, with TensorFlow's
// padding rules:
//
//   std::vector<bool> needed(spec.layers.size(), true);
//   PANDA_ASSIGN_OR_RETURN(std::vector<keras::Shape> shapes,
//                          keras::InferShapes(spec, 112, 112, needed));
//
// Shapes leave out the batch axis: {C, H, W} for image maps, {D} for vectors.
#ifndef PANDA_BACKBONES_KERAS_KERAS_SHAPE_INFERENCE_H_
#define PANDA_BACKBONES_KERAS_KERAS_SHAPE_INFERENCE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/keras/keras_graph_spec.h"

namespace panda::keras {

// Infers the output shape of every layer with needed[i] true for an input of
// height x width pixels. Other layers get an empty shape. `needed` has one
// entry per layer, and the inputs of a needed layer must be needed too.
// Returns InvalidArgument naming the first layer that cannot run at this size.
absl::StatusOr<std::vector<Shape>> InferShapes(const GraphSpec& spec,
                                               int64_t height, int64_t width,
                                               const std::vector<bool>& needed);

// Infers the output shape of spec.layers[index] from the shapes of its
// inputs, in the order of LayerSpec::inputs. The InputLayer yields
// {spec.input_channels, height, width}. Checks the input ranks, the channels
// the layer's weights expect (when LayerSpec::input_channels is set) and that
// windows fit. Returns InvalidArgument naming the layer otherwise.
absl::StatusOr<Shape> InferLayerShape(const GraphSpec& spec, int index,
                                      const std::vector<const Shape*>& inputs,
                                      int64_t height, int64_t width);

// Padding {before, after} that TensorFlow's "same" mode adds along an axis of
// `size` pixels for a window of `kernel` taps with `stride` and `dilation`:
// the output has ceil(size / stride) pixels, and the extra pixel of an odd
// total goes after.
std::array<int64_t, 2> SamePadding(int64_t size, int64_t kernel, int64_t stride,
                                   int64_t dilation);

// "[1, 2, 3]" for {1, 2, 3}.
std::string ShapeToString(const std::vector<int64_t>& shape);

}  // namespace panda::keras

#endif  // PANDA_BACKBONES_KERAS_KERAS_SHAPE_INFERENCE_H_
