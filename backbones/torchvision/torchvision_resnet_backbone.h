// The "torchvision_resnet" backbone plugin: torchvision's ResNet and
// WideResNet (resnet.h) with weights from a torchvision checkpoint
// (torch_checkpoint.h). Options are TorchvisionResnetOptions:
//
//   backbone { name: "torchvision_resnet"
//     options { [type.googleapis.com/panda.TorchvisionResnetOptions] {
//       arch: "resnet152" weights_file: "data/weights/resnet152-394f9c45.pth" } } }
//
// Taps:
//   "pooled"            float32 [N, D]: global average of layer4, the input
//                       of fc (D = 512 for ResNet-18/34, 2048 otherwise).
//   "stem"              float32 [N, 64, H/4, W/4]: after conv1, bn1, ReLU
//                       and max pooling.
//   "layer1".."layer4"  float32 [N, C, H/s, W/s] with s = 4, 8, 16, 32.
//   "logits"            float32 [N, classes]: fc's output.
//
// Preprocess() follows ImagePreprocessing (by default torchvision's
// Resize(256), CenterCrop(224) and ImageNet normalisation).
#ifndef PANDA_BACKBONES_TORCHVISION_TORCHVISION_RESNET_BACKBONE_H_
#define PANDA_BACKBONES_TORCHVISION_TORCHVISION_RESNET_BACKBONE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "backbones/torchvision/image_preprocessing.h"
#include "backbones/torchvision/resnet.h"
#include "backbones/torchvision/torchvision_resnet_options.pb.h"
#include "google/protobuf/any.pb.h"

namespace panda {

class TorchvisionResnetBackbone : public Backbone {
 public:
  // Builds the network and loads options.weights_file on the CPU, in eval
  // mode, then applies trainable_from and freeze_batchnorm. Returns
  // InvalidArgument for an empty or unknown arch, an empty weights_file, or
  // invalid preprocessing or trainable_from. A missing file
  // is NotFound and a corrupt file DataLoss. A checkpoint of another
  // architecture is InvalidArgument listing the first missing, unexpected
  // and mis-shaped tensors. State dicts saved from nn.DataParallel (every
  // name starting with "module.") load with that prefix removed.
  static absl::StatusOr<std::unique_ptr<TorchvisionResnetBackbone>> Create(
      const TorchvisionResnetOptions& options);

  torch::nn::Module& module() override { return *network_; }
  torch::Tensor Preprocess(const torch::Tensor& images) const override;
  // Runs only as deep as the deepest requested tap, on the device of the
  // network and the input. Input other than float32 [N, 3, H, W] on the
  // network's device is InvalidArgument. A LibTorch failure is
  // ResourceExhausted when memory ran out and Internal otherwise.
  // NOTE: tests run on the CPU only, because Debian's LibTorch has no CUDA.
  absl::StatusOr<TapMap> Forward(const torch::Tensor& input,
                                 const std::vector<std::string>& taps) override;
  std::vector<std::string> tap_names() const override;
  int64_t feature_dim() const override { return network_->feature_dim(); }
  std::string Fingerprint() const override { return fingerprint_; }
  // "stem" (conv1, bn1) and "layer1" to "layer4".
  std::vector<std::string> stage_names() const override;
  // Leaves the requires_grad of the fc head as it is, because fc does not
  // shape the pooled feature.
  absl::Status SetTrainableFrom(const std::string& stage) override;
  // Covers every BatchNorm2d of the network and always returns OK.
  absl::Status SetBatchNormFrozen(bool frozen) override;

  torchvision::ResNet& network() { return *network_; }
  const torchvision::PreprocessSettings& preprocessing() const { return preprocessing_; }

 private:
  TorchvisionResnetBackbone() = default;

  std::shared_ptr<torchvision::ResNet> network_;
  torchvision::PreprocessSettings preprocessing_;
  std::string fingerprint_;
};

// Registry factory for "torchvision_resnet": unpacks TorchvisionResnetOptions.
absl::StatusOr<std::unique_ptr<Backbone>> CreateTorchvisionResnetBackbone(
    const google::protobuf::Any& options);

}  // namespace panda

#endif  // PANDA_BACKBONES_TORCHVISION_TORCHVISION_RESNET_BACKBONE_H_
