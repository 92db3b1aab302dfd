// The "keras" backbone plugin: a Keras layers model converted to a .pkm file
// by tools/convert_tfjs_layers_model.js (MobileNetV2 or InceptionV3 from
// nsfwjs), run by LibTorch. Options are KerasBackboneOptions:
//
//   backbone { name: "keras"
//     options { [type.googleapis.com/panda.KerasBackboneOptions] {
//       weights_file: "data/weights/mobilenet_v2.pkm" input_size: 224 } } }
//
// Taps:
//   "pooled"         float32 [N, D]: global average pooling of the input of
//                    the model's last AveragePooling2D layer, i.e. of the last
//                    convolutional map (D = 1280 for MobileNetV2, 2048 for
//                    InceptionV3). Defined at any input size the network
//                    accepts.
//   "probabilities"  float32 [N, classes]: the model's output. Only at the
//                    model's own input size, because the head pools a fixed
//                    window.
//   any layer name   the layer's output, float32 [N, C, H, W] for image maps
//                    and [N, D] after Flatten. Layers that follow the last
//                    AveragePooling2D need the model's own input size too.
#ifndef PANDA_BACKBONES_KERAS_KERAS_BACKBONE_H_
#define PANDA_BACKBONES_KERAS_KERAS_BACKBONE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "backbones/keras/keras_backbone_options.pb.h"
#include "backbones/keras/keras_graph.h"
#include "backbones/keras/keras_stages.h"
#include "google/protobuf/any.pb.h"

namespace panda {

class KerasBackbone : public Backbone {
 public:
  // Loads the model named by `options` on the CPU in eval mode. A missing
  // weights_file is NotFound and a corrupt one DataLoss. An empty
  // weights_file, a negative input_size, one too small for the network, a
  // model without an AveragePooling2D layer or without 3 input channels is
  // InvalidArgument.
  static absl::StatusOr<std::unique_ptr<KerasBackbone>> Create(
      const KerasBackboneOptions& options);

  torch::nn::Module& module() override { return *graph_; }
  torch::Tensor Preprocess(const torch::Tensor& images) const override;
  absl::StatusOr<TapMap> Forward(const torch::Tensor& input,
                                 const std::vector<std::string>& taps) override;
  std::vector<std::string> tap_names() const override;
  int64_t feature_dim() const override { return feature_dim_; }
  std::string Fingerprint() const override { return fingerprint_; }

  // Stages as keras_stages.h finds them, named after their first layer.
  std::vector<std::string> stage_names() const override;
  absl::Status SetTrainableFrom(const std::string& stage) override;
  absl::Status SetBatchNormFrozen(bool frozen) override;

  // The network, for adapters that select layers by name.
  keras::KerasGraph& graph() { return *graph_; }

  // Input size Preprocess resizes to, {height, width}.
  std::array<int64_t, 2> input_size() const { return {input_height_, input_width_}; }

 private:
  KerasBackbone() = default;

  // Maps tap names to layer indices. Returns InvalidArgument for an unknown
  // name, or for a tap in the classification head when `input` is not at the
  // model's own size.
  absl::StatusOr<std::vector<int>> ResolveTaps(
      const std::vector<std::string>& taps, const torch::Tensor& input) const;

  KerasBackboneOptions options_;
  std::shared_ptr<keras::KerasGraph> graph_;
  int64_t input_height_ = 0;
  int64_t input_width_ = 0;
  // The layer whose global average is "pooled": the input of the last
  // AveragePooling2D.
  int pooled_layer_ = 0;
  // Index of the head's AveragePooling2D layer.
  int head_pool_ = 0;
  std::vector<keras::Stage> stages_;
  // Per layer: whether it is the last AveragePooling2D or reads its output,
  // directly or through other layers.
  std::vector<bool> after_head_pool_;
  int64_t feature_dim_ = 0;
  std::string fingerprint_;
};

// Registry factory for "keras": unpacks KerasBackboneOptions from `options`.
absl::StatusOr<std::unique_ptr<Backbone>> CreateKerasBackbone(
    const google::protobuf::Any& options);

}  // namespace panda

#endif  // PANDA_BACKBONES_KERAS_KERAS_BACKBONE_H_
