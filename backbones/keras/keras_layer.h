// One Keras layer as a LibTorch module, computing what Keras computes in
// NCHW tensors (any memory format, channels-last included).
//
// Weights are converted from Keras to LibTorch layout when the layer is made
// and registered under their Keras variable names, so the module
// "Conv1" of a KerasGraph has parameters "Conv1.kernel" and, with a bias,
// "Conv1.bias":
//   Conv2D kernel            [H, W, I, O]    -> parameter kernel [O, I, H, W]
//   DepthwiseConv2D kernel   [H, W, C, M]    -> parameter depthwise_kernel [C*M, 1, H, W]
//   Dense kernel             [I, O]          -> parameter kernel [O, I]
//   biases, BatchNormalization gamma and beta -> parameters of the same name
//   moving_mean, moving_variance              -> buffers of the same name
#ifndef PANDA_BACKBONES_KERAS_KERAS_LAYER_H_
#define PANDA_BACKBONES_KERAS_KERAS_LAYER_H_

#include <vector>

#include "backbones/keras/keras_graph_spec.h"
#include "backbones/keras/keras_model_file.h"
#include "torch/nn/module.h"
#include "torch/types.h"

namespace panda::keras {

class KerasLayer : public torch::nn::Module {
 public:
  // Creates the layer described by `spec`, copying its weights out of `file`.
  // `spec` must come from BuildGraphSpec(file), which has checked the weights.
  KerasLayer(LayerSpec spec, const ModelFile& file);

  const LayerSpec& spec() const { return spec_; }

  // Computes the layer's output from `inputs`, one tensor per
  // LayerSpec::inputs: float32 [N, C, H, W] image maps or [N, D] vectors, on
  // the device of the layer's weights. Shapes must be those InferShapes
  // accepts. In training mode BatchNormalization uses batch statistics and
  // updates its moving statistics, and Dropout drops.
  torch::Tensor Forward(const std::vector<torch::Tensor>& inputs);

  // Converts the convolution kernel, if any, to channels-last memory format
  // (`channels_last` true) or to contiguous NCHW. Values are unchanged.
  void SetKernelMemoryFormat(bool channels_last);

  // Keeps a BatchNormalization layer on its moving statistics, not updating
  // them, even in training mode. No effect on other layers.
  void SetBatchNormFrozen(bool frozen) { batchnorm_frozen_ = frozen; }

 private:
  torch::Tensor Convolve(const torch::Tensor& input) const;
  torch::Tensor BatchNormalize(const torch::Tensor& input);
  torch::Tensor Relu(const torch::Tensor& input) const;
  torch::Tensor MaxPool(const torch::Tensor& input) const;
  torch::Tensor AveragePool(const torch::Tensor& input) const;
  torch::Tensor Activate(const torch::Tensor& input) const;

  LayerSpec spec_;
  // Undefined where the layer has no such variable.
  torch::Tensor kernel_;
  torch::Tensor bias_;
  torch::Tensor gamma_;
  torch::Tensor beta_;
  torch::Tensor moving_mean_;
  torch::Tensor moving_variance_;
  bool batchnorm_frozen_ = false;
};

}  // namespace panda::keras

#endif  // PANDA_BACKBONES_KERAS_KERAS_LAYER_H_
