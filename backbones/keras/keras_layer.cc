#include "backbones/keras/keras_layer.h"

#include <limits>
#include <utility>

#include "backbones/keras/keras_shape_inference.h"
#include "torch/torch.h"

namespace panda::keras {
namespace {

// Fraction of a batch's statistics that training mixes into the moving
// statistics: 1 - Keras's default momentum of 0.99.
// NOTE: the file does not store each layer's Keras momentum (MobileNetV2
// used 0.999), so training updates the moving statistics at this rate.
constexpr double kBatchNormUpdateRate = 0.01;

torch::Tensor WeightTensor(const ModelFile& file, int index) {
  const Weight& weight = file.model.weights(index);
  const std::vector<int64_t> shape(weight.shape().begin(), weight.shape().end());
  // from_blob does not copy, so clone() gives the layer its own storage.
  return torch::from_blob(const_cast<float*>(file.WeightData(index)), shape,
                          torch::kFloat)
      .clone();
}

// Padding of TensorFlow's "same" mode for an [N, C, H, W] input, in the
// {left, right, top, bottom} order of torch::constant_pad_nd.
std::vector<int64_t> SamePaddingNchw(const LayerSpec& spec,
                                     const torch::Tensor& input,
                                     bool dilated) {
  const auto vertical =
      SamePadding(input.size(2), spec.kernel_size[0], spec.strides[0],
                  dilated ? spec.dilation_rate[0] : 1);
  const auto horizontal =
      SamePadding(input.size(3), spec.kernel_size[1], spec.strides[1],
                  dilated ? spec.dilation_rate[1] : 1);
  return {horizontal[0], horizontal[1], vertical[0], vertical[1]};
}

// Whether every side pads the same amount, so LibTorch's own symmetric
// padding argument can replace an explicit pad.
bool IsSymmetric(const std::vector<int64_t>& padding) {
  return padding[0] == padding[1] && padding[2] == padding[3];
}

}  // namespace

KerasLayer::KerasLayer(LayerSpec spec, const ModelFile& file)
    : spec_(std::move(spec)) {
  auto weight = [&](const char* variable) -> torch::Tensor {
    auto found = spec_.weights.find(variable);
    if (found == spec_.weights.end()) return torch::Tensor();
    return WeightTensor(file, found->second);
  };

  switch (spec_.kind) {
    case LayerKind::kConv2D:
      // [H, W, I, O] -> [O, I, H, W].
      kernel_ = register_parameter(
          "kernel", weight("kernel").permute({3, 2, 0, 1}).contiguous());
      break;
    case LayerKind::kDepthwiseConv2D: {
      // [H, W, C, M] -> [C, M, H, W] -> [C*M, 1, H, W]: output channel c*M + m
      // of a grouped convolution with C groups, as in TensorFlow.
      const torch::Tensor keras_kernel = weight("depthwise_kernel");
      kernel_ = register_parameter(
          "depthwise_kernel",
          keras_kernel.permute({2, 3, 0, 1})
              .reshape({-1, 1, keras_kernel.size(0), keras_kernel.size(1)})
              .contiguous());
      break;
    }
    case LayerKind::kDense:
      // [I, O] -> [O, I].
      kernel_ = register_parameter("kernel", weight("kernel").t().contiguous());
      break;
    case LayerKind::kBatchNormalization:
      if (spec_.scale) gamma_ = register_parameter("gamma", weight("gamma"));
      if (spec_.center) beta_ = register_parameter("beta", weight("beta"));
      moving_mean_ = register_buffer("moving_mean", weight("moving_mean"));
      moving_variance_ =
          register_buffer("moving_variance", weight("moving_variance"));
      break;
    default:
      break;
  }
  if (spec_.use_bias && (spec_.kind == LayerKind::kConv2D ||
                         spec_.kind == LayerKind::kDepthwiseConv2D ||
                         spec_.kind == LayerKind::kDense)) {
    bias_ = register_parameter("bias", weight("bias"));
  }
}

void KerasLayer::SetKernelMemoryFormat(bool channels_last) {
  if (!kernel_.defined() || kernel_.dim() != 4) return;
  torch::NoGradGuard no_grad;
  kernel_.set_data(kernel_.contiguous(channels_last
                                          ? torch::MemoryFormat::ChannelsLast
                                          : torch::MemoryFormat::Contiguous));
}

torch::Tensor KerasLayer::Forward(const std::vector<torch::Tensor>& inputs) {
  const torch::Tensor& input = inputs.front();
  switch (spec_.kind) {
    case LayerKind::kInputLayer:
      return input;
    case LayerKind::kZeroPadding2D: {
      const auto& pad = spec_.zero_padding;
      return torch::constant_pad_nd(input, {pad[2], pad[3], pad[0], pad[1]}, 0);
    }
    case LayerKind::kConv2D:
    case LayerKind::kDepthwiseConv2D:
      return Activate(Convolve(input));
    case LayerKind::kBatchNormalization:
      return BatchNormalize(input);
    case LayerKind::kReLU:
      return Relu(input);
    case LayerKind::kActivation:
      return Activate(input);
    case LayerKind::kAdd: {
      torch::Tensor sum = inputs[0] + inputs[1];
      for (size_t i = 2; i < inputs.size(); ++i) sum.add_(inputs[i]);
      return sum;
    }
    case LayerKind::kConcatenate:
      // Only the channel axis is supported: dimension 1 here.
      return torch::cat(inputs, 1);
    case LayerKind::kMaxPooling2D:
      return MaxPool(input);
    case LayerKind::kAveragePooling2D:
      return AveragePool(input);
    case LayerKind::kFlatten:
      // Keras flattens NHWC, so channels vary fastest.
      if (input.dim() == 4) return input.permute({0, 2, 3, 1}).reshape({input.size(0), -1});
      return input.reshape({input.size(0), -1});
    case LayerKind::kDense:
      return Activate(torch::linear(input, kernel_, bias_));
    case LayerKind::kDropout:
      return torch::dropout(input, spec_.rate, is_training());
  }
  TORCH_CHECK(false, "layer ", spec_.name, " has an unknown kind");
}

torch::Tensor KerasLayer::Convolve(const torch::Tensor& input) const {
  const int64_t groups =
      spec_.kind == LayerKind::kDepthwiseConv2D ? spec_.input_channels : 1;
  const std::vector<int64_t> strides = {spec_.strides[0], spec_.strides[1]};
  const std::vector<int64_t> dilation = {spec_.dilation_rate[0],
                                         spec_.dilation_rate[1]};
  const std::vector<int64_t> no_padding = {0, 0};
  if (spec_.padding == Padding::kValid) {
    return torch::conv2d(input, kernel_, bias_, strides, no_padding, dilation,
                         groups);
  }

  const std::vector<int64_t> padding = SamePaddingNchw(spec_, input, /*dilated=*/true);
  if (IsSymmetric(padding)) {
    const std::vector<int64_t> symmetric_padding = {padding[2], padding[0]};
    return torch::conv2d(input, kernel_, bias_, strides, symmetric_padding,
                         dilation, groups);
  }
  return torch::conv2d(torch::constant_pad_nd(input, padding, 0), kernel_, bias_,
                       strides, no_padding, dilation, groups);
}

torch::Tensor KerasLayer::BatchNormalize(const torch::Tensor& input) {
  return torch::batch_norm(input, gamma_, beta_, moving_mean_, moving_variance_,
                           is_training() && !batchnorm_frozen_, kBatchNormUpdateRate, spec_.epsilon,
                           /*cudnn_enabled=*/true);
}

torch::Tensor KerasLayer::Relu(const torch::Tensor& input) const {
  if (spec_.threshold == 0 && spec_.negative_slope == 0) {
    if (spec_.max_value) return torch::clamp(input, 0, *spec_.max_value);
    return torch::relu(input);
  }
  torch::Tensor output =
      torch::where(input >= spec_.threshold, input,
                   (input - spec_.threshold) * spec_.negative_slope);
  if (spec_.max_value) output = torch::clamp_max(output, *spec_.max_value);
  return output;
}

torch::Tensor KerasLayer::MaxPool(const torch::Tensor& input) const {
  const std::vector<int64_t> kernel = {spec_.kernel_size[0], spec_.kernel_size[1]};
  const std::vector<int64_t> strides = {spec_.strides[0], spec_.strides[1]};
  if (spec_.padding == Padding::kValid) {
    return torch::max_pool2d(input, kernel, strides);
  }
  const std::vector<int64_t> padding = SamePaddingNchw(spec_, input, /*dilated=*/false);
  if (IsSymmetric(padding)) {
    // max_pool2d pads with -infinity, so padding never wins.
    return torch::max_pool2d(input, kernel, strides, {padding[2], padding[0]});
  }
  return torch::max_pool2d(
      torch::constant_pad_nd(input, padding, -std::numeric_limits<float>::infinity()),
      kernel, strides);
}

torch::Tensor KerasLayer::AveragePool(const torch::Tensor& input) const {
  const std::vector<int64_t> kernel = {spec_.kernel_size[0], spec_.kernel_size[1]};
  const std::vector<int64_t> strides = {spec_.strides[0], spec_.strides[1]};
  if (spec_.padding == Padding::kValid) {
    return torch::avg_pool2d(input, kernel, strides);
  }
  // TensorFlow's "same" average pooling divides by the number of input
  // pixels in each window, leaving the padding out.
  const std::vector<int64_t> padding = SamePaddingNchw(spec_, input, /*dilated=*/false);
  if (IsSymmetric(padding)) {
    return torch::avg_pool2d(input, kernel, strides, {padding[2], padding[0]},
                             /*ceil_mode=*/false, /*count_include_pad=*/false);
  }
  // LibTorch pads symmetrically only, so pad explicitly and divide the window
  // sums by the window's count of real pixels.
  const torch::Tensor sums =
      torch::avg_pool2d(torch::constant_pad_nd(input, padding, 0), kernel, strides);
  const torch::Tensor ones =
      torch::ones({1, 1, input.size(2), input.size(3)}, input.options());
  const torch::Tensor counts =
      torch::avg_pool2d(torch::constant_pad_nd(ones, padding, 0), kernel, strides);
  return sums / counts;
}

torch::Tensor KerasLayer::Activate(const torch::Tensor& input) const {
  switch (spec_.activation) {
    case Activation::kLinear:
      return input;
    case Activation::kRelu:
      return torch::relu(input);
    case Activation::kSoftmax:
      // Keras takes the softmax over the last NHWC axis: channels.
      return torch::softmax(input, 1);
    case Activation::kSigmoid:
      return torch::sigmoid(input);
    case Activation::kTanh:
      return torch::tanh(input);
  }
  return input;
}

}  // namespace panda::keras
