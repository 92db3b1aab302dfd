// torchvision's ResNet family as LibTorch modules, with torchvision's
// architecture and parameter names, so that a state dict saved from
// torchvision.models.resnet50() loads by name:
//
//   conv1.weight, bn1.{weight,bias,running_mean,running_var,num_batches_tracked},
//   layer1.0.conv1.weight, ..., layer1.0.downsample.0.weight,
//   layer1.0.downsample.1.*, ..., fc.weight, fc.bias
//
// The variants are those of torchvision 0.14 (ResNet v1.5: a Bottleneck
// block strides in its 3x3 convolution), from He et al., "Deep Residual
// Learning for Image Recognition" (2016), and Zagoruyko and Komodakis,
// "Wide Residual Networks" (2016).
#ifndef PANDA_BACKBONES_TORCHVISION_RESNET_H_
#define PANDA_BACKBONES_TORCHVISION_RESNET_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/nn/module.h"
#include "torch/nn/modules/container/sequential.h"
#include "torch/nn/modules/conv.h"
#include "torch/nn/modules/batchnorm.h"
#include "torch/nn/modules/linear.h"

namespace panda::torchvision {

// Depth and width of one ResNet variant.
struct ResNetSpec {
  std::string name;            // torchvision's constructor name, e.g. "resnet50"
  bool bottleneck = false;     // Bottleneck blocks (expansion 4) or BasicBlock
  std::array<int, 4> blocks{};  // blocks in layer1..layer4
  int64_t width_per_group = 64;  // 128 for the wide variants
};

// The spec of torchvision's `name`: resnet18, resnet34, resnet50, resnet101,
// resnet152, wide_resnet50_2 or wide_resnet101_2. Other names are
// InvalidArgument listing these.
absl::StatusOr<ResNetSpec> FindResNetSpec(const std::string& name);

// The names FindResNetSpec accepts.
std::vector<std::string> ResNetNames();

// Outputs ResNet::Run can return. kStem is the max-pooling output (the input
// of layer1); kPooled is the global average of layer4, the input of fc.
enum class ResNetOutput { kStem, kLayer1, kLayer2, kLayer3, kLayer4, kPooled, kLogits };

class ResNet : public torch::nn::Module {
 public:
  // Builds the network for `spec` with a `num_classes`-way fc layer, in
  // training mode with LibTorch's default initialisation.
  ResNet(const ResNetSpec& spec, int64_t num_classes);

  // Runs the network on float32 input [N, 3, H, W] on the device of the
  // parameters and returns `outputs` in that order: stem and layer maps
  // [N, C, H', W'] (possibly channels-last), pooled [N, 2048 or 512],
  // logits [N, num_classes]. Stops after the deepest requested output.
  // Throws c10::Error on a wrong input, as LibTorch modules do.
  std::vector<torch::Tensor> Run(const torch::Tensor& input,
                                 const std::vector<ResNetOutput>& outputs);

  // Switches training mode like any module, but keeps the BatchNorm layers
  // in eval mode (normalising with their running statistics and not
  // updating them) while SetBatchNormFrozen(true) is in effect.
  // NOTE: calling train() on a submodule, such as layer3, bypasses this
  // override and puts that submodule's BatchNorm layers into training mode.
  void train(bool on = true) override;

  // Freezes or releases every BatchNorm2d as train() describes, applied at
  // once to the current mode.
  void SetBatchNormFrozen(bool frozen);
  bool batchnorm_frozen() const { return batchnorm_frozen_; }

  // Stage names, input side first: "stem" (conv1, bn1) and "layer1" to
  // "layer4". The fc head is no stage.
  static const std::vector<std::string>& StageNames();

  // Sets requires_grad on the parameters of stage `stage` and every later
  // stage and clears it on the earlier ones. The fc parameters keep their
  // requires_grad. An unknown name is InvalidArgument listing StageNames().
  absl::Status SetTrainableFrom(const std::string& stage);

  // Stores convolution weights in channels-last memory format and runs in
  // it, which is faster for CPU convolutions; results agree up to float
  // rounding.
  void SetChannelsLast(bool channels_last);

  const ResNetSpec& spec() const { return spec_; }
  int64_t feature_dim() const { return feature_dim_; }
  int64_t num_classes() const { return num_classes_; }

 private:
  // The modules of stage `index` of StageNames().
  std::vector<std::shared_ptr<torch::nn::Module>> StageModules(size_t index);

  ResNetSpec spec_;
  int64_t feature_dim_;
  int64_t num_classes_;
  bool batchnorm_frozen_ = false;
  bool channels_last_ = false;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  std::array<torch::nn::Sequential, 4> layers_{
      torch::nn::Sequential{nullptr}, torch::nn::Sequential{nullptr},
      torch::nn::Sequential{nullptr}, torch::nn::Sequential{nullptr}};
  torch::nn::Linear fc_{nullptr};
};

}  // namespace panda::torchvision

#endif  // PANDA_BACKBONES_TORCHVISION_RESNET_H_
