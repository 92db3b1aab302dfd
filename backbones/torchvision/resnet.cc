#include "backbones/torchvision/resnet.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backbones/backbone.h"
#include "torch/torch.h"

namespace panda::torchvision {
namespace {

namespace nn = torch::nn;

const std::vector<ResNetSpec>& AllSpecs() {
  static const auto* specs = new std::vector<ResNetSpec>{
      {"resnet18", false, {2, 2, 2, 2}, 64},
      {"resnet34", false, {3, 4, 6, 3}, 64},
      {"resnet50", true, {3, 4, 6, 3}, 64},
      {"resnet101", true, {3, 4, 23, 3}, 64},
      {"resnet152", true, {3, 8, 36, 3}, 64},
      {"wide_resnet50_2", true, {3, 4, 6, 3}, 128},
      {"wide_resnet101_2", true, {3, 4, 23, 3}, 128},
  };
  return *specs;
}

nn::Conv2d Convolution(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel)
                        .stride(stride)
                        .padding(kernel / 2)
                        .bias(false));
}

// conv1x1 + BatchNorm on the shortcut when a block changes shape.
nn::Sequential Downsample(int64_t in, int64_t out, int64_t stride) {
  return nn::Sequential(Convolution(in, out, 1, stride), nn::BatchNorm2d(out));
}

// Two 3x3 convolutions (ResNet-18/34).
class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride)
      : conv1_(register_module("conv1", Convolution(in, planes, 3, stride))),
        bn1_(register_module("bn1", nn::BatchNorm2d(planes))),
        conv2_(register_module("conv2", Convolution(planes, planes, 3, 1))),
        bn2_(register_module("bn2", nn::BatchNorm2d(planes))) {
    if (stride != 1 || in != planes) {
      downsample_ = register_module("downsample", Downsample(in, planes, stride));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = bn1_(conv1_(x)).relu_();
    out = bn2_(conv2_(out));
    out += downsample_ ? downsample_->forward(x) : x;
    return out.relu_();
  }

 private:
  nn::Conv2d conv1_;
  nn::BatchNorm2d bn1_;
  nn::Conv2d conv2_;
  nn::BatchNorm2d bn2_;
  nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(BasicBlock);

// 1x1, 3x3 (strided), 1x1 convolutions with expansion 4 (ResNet-50 and up).
class BottleneckImpl : public nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;

  BottleneckImpl(int64_t in, int64_t planes, int64_t stride, int64_t width)
      : conv1_(register_module("conv1", Convolution(in, width, 1, 1))),
        bn1_(register_module("bn1", nn::BatchNorm2d(width))),
        conv2_(register_module("conv2", Convolution(width, width, 3, stride))),
        bn2_(register_module("bn2", nn::BatchNorm2d(width))),
        conv3_(register_module("conv3", Convolution(width, planes * kExpansion, 1, 1))),
        bn3_(register_module("bn3", nn::BatchNorm2d(planes * kExpansion))) {
    if (stride != 1 || in != planes * kExpansion) {
      downsample_ =
          register_module("downsample", Downsample(in, planes * kExpansion, stride));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = bn1_(conv1_(x)).relu_();
    out = bn2_(conv2_(out)).relu_();
    out = bn3_(conv3_(out));
    out += downsample_ ? downsample_->forward(x) : x;
    return out.relu_();
  }

 private:
  nn::Conv2d conv1_;
  nn::BatchNorm2d bn1_;
  nn::Conv2d conv2_;
  nn::BatchNorm2d bn2_;
  nn::Conv2d conv3_;
  nn::BatchNorm2d bn3_;
  nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

}  // namespace

absl::StatusOr<ResNetSpec> FindResNetSpec(const std::string& name) {
  for (const ResNetSpec& spec : AllSpecs()) {
    if (spec.name == name) return spec;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown ResNet architecture \"", name, "\"; valid architectures are ",
      absl::StrJoin(ResNetNames(), ", ")));
}

std::vector<std::string> ResNetNames() {
  std::vector<std::string> names;
  for (const ResNetSpec& spec : AllSpecs()) names.push_back(spec.name);
  return names;
}

ResNet::ResNet(const ResNetSpec& spec, int64_t num_classes)
    : spec_(spec), num_classes_(num_classes) {
  const int64_t expansion = spec.bottleneck ? BottleneckImpl::kExpansion : 1;
  conv1_ = register_module(
      "conv1", nn::Conv2d(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
  bn1_ = register_module("bn1", nn::BatchNorm2d(64));

  int64_t in = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = int64_t{64} << stage;
    const int64_t width = planes * spec.width_per_group / 64;
    nn::Sequential layer;
    for (int block = 0; block < spec.blocks[stage]; ++block) {
      const int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
      if (spec.bottleneck) {
        layer->push_back(Bottleneck(in, planes, stride, width));
      } else {
        layer->push_back(BasicBlock(in, planes, stride));
      }
      in = planes * expansion;
    }
    layers_[stage] = register_module(absl::StrCat("layer", stage + 1), layer);
  }
  feature_dim_ = in;
  fc_ = register_module("fc", nn::Linear(in, num_classes));
}

std::vector<torch::Tensor> ResNet::Run(const torch::Tensor& input,
                                       const std::vector<ResNetOutput>& outputs) {
  int deepest = -1;
  for (ResNetOutput output : outputs) deepest = std::max(deepest, static_cast<int>(output));

  std::array<torch::Tensor, 7> results;
  torch::Tensor x = channels_last_ ? input.contiguous(torch::MemoryFormat::ChannelsLast) : input;
  if (deepest >= 0) {
    x = torch::max_pool2d(bn1_(conv1_(x)).relu_(), /*kernel_size=*/3, /*stride=*/2,
                          /*padding=*/1);
    results[static_cast<int>(ResNetOutput::kStem)] = x;
  }
  for (int stage = 0; stage < 4 && stage < deepest; ++stage) {
    x = layers_[stage]->forward(x);
    results[static_cast<int>(ResNetOutput::kLayer1) + stage] = x;
  }
  if (deepest >= static_cast<int>(ResNetOutput::kPooled)) {
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    results[static_cast<int>(ResNetOutput::kPooled)] = x;
  }
  if (deepest >= static_cast<int>(ResNetOutput::kLogits)) {
    results[static_cast<int>(ResNetOutput::kLogits)] = fc_(x);
  }

  std::vector<torch::Tensor> selected;
  selected.reserve(outputs.size());
  for (ResNetOutput output : outputs) selected.push_back(results[static_cast<int>(output)]);
  return selected;
}

void ResNet::train(bool on) {
  nn::Module::train(on);
  if (!on || !batchnorm_frozen_) return;
  for (const std::shared_ptr<nn::Module>& module : modules(/*include_self=*/false)) {
    if (auto* batchnorm = module->as<nn::BatchNorm2d>()) batchnorm->eval();
  }
}

void ResNet::SetBatchNormFrozen(bool frozen) {
  batchnorm_frozen_ = frozen;
  train(is_training());
}

// The fc head is left out of the stages, so SetTrainableFrom never changes
// its requires_grad. fc does not shape the pooled feature that adaptation
// trains on, so a loss on that feature gives fc no gradient either way.
const std::vector<std::string>& ResNet::StageNames() {
  static const auto* names =
      new std::vector<std::string>{"stem", "layer1", "layer2", "layer3", "layer4"};
  return *names;
}

std::vector<std::shared_ptr<nn::Module>> ResNet::StageModules(size_t index) {
  if (index == 0) return {conv1_.ptr(), bn1_.ptr()};
  return {layers_[index - 1].ptr()};
}

absl::Status ResNet::SetTrainableFrom(const std::string& stage) {
  return SetTrainableStages("ResNet", StageNames(), stage,
                            [this](size_t index) { return StageModules(index); });
}

void ResNet::SetChannelsLast(bool channels_last) {
  channels_last_ = channels_last;
  const auto format =
      channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  for (torch::Tensor& parameter : parameters()) {
    if (parameter.dim() == 4) parameter.set_data(parameter.contiguous(format));
  }
}

}  // namespace panda::torchvision
