// The "lenet" backbone plugin: the small LeNet-type network that Deep SVDD
// (Ruff et al., "Deep One-Class Classification", ICML 2018) trains from
// scratch on MNIST, as MNIST_LeNet in their Deep-SVDD-PyTorch code
// (src/networks/mnist_LeNet.py). It is randomly initialised or loaded from a
// file that torch::save wrote. Options are LenetBackboneOptions:
//
//   backbone { name: "lenet"
//     options { [type.googleapis.com/panda.LenetBackboneOptions] { seed: 3 } } }
//
// The network, for input size S (28 by default) and rep_dim D (32):
//
//   conv1  Conv2d(1 -> 8, 5x5, padding 2), BatchNorm2d(8, eps 1e-4, affine
//          false), leaky ReLU (slope 0.01), max-pool 2x2
//   conv2  Conv2d(8 -> 4, 5x5, padding 2), BatchNorm2d(4, eps 1e-4, affine
//          false), leaky ReLU (slope 0.01), max-pool 2x2
//   fc     flatten (channel-major), Linear(4 * (S/4)^2 -> D)
//
// No layer has a bias or an affine BatchNorm shift, because with them the
// network could map every input to the hypersphere centre, a trivial
// minimum of the Deep SVDD loss.
//
// Taps:
//   "pooled"  float32 [N, D]: the output of fc.
//   "conv1"   float32 [N, 8, S/2, S/2]: after the first max-pooling.
//   "conv2"   float32 [N, 4, S/4, S/4]: after the second max-pooling.
// (S/2 and S/4 round down.)
//
// Preprocess() turns uint8 images [N, H, W, C] (C = 1 or 3) into grey float
// [N, 1, S, S] in [0, 1]: pixels / 255, the mean of the channels for RGB,
// then bilinear resizing (align_corners false, no antialiasing) when H or W
// differs from S.
// NOTE: unlike backbone.h's general contract of 3 input channels, the input
// has one channel. Deep-SVDD-PyTorch also applies global contrast
// normalisation (L1) and min-max scaling to MNIST, which this plugin does not.
#ifndef PANDA_BACKBONES_LENET_LENET_BACKBONE_H_
#define PANDA_BACKBONES_LENET_LENET_BACKBONE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "backbones/lenet/lenet_backbone_options.pb.h"
#include "google/protobuf/any.pb.h"
#include "torch/nn/module.h"
#include "torch/nn/modules/batchnorm.h"
#include "torch/nn/modules/conv.h"
#include "torch/nn/modules/linear.h"
#include "torch/types.h"

namespace panda::lenet {

// Outputs LeNet::Run can return, in network order.
enum class LeNetOutput { kConv1, kConv2, kPooled };

// The network. Its parameters are conv1.weight, conv2.weight and fc1.weight;
// its buffers are bn1.* and bn2.* (running_mean, running_var,
// num_batches_tracked), the names of Ruff et al.'s MNIST_LeNet.
class LeNet : public torch::nn::Module {
 public:
  // Builds the network for square input of side `input_size` (at least 4)
  // with a `rep_dim`-d output, in training mode. Weights follow LibTorch's
  // default initialisation, uniform in +-1/sqrt(fan_in), but are drawn from
  // a generator seeded with `seed` rather than the global one.
  LeNet(int64_t input_size, int64_t rep_dim, uint64_t seed);

  // Runs the network on float32 input [N, 1, input_size, input_size] on the
  // device of the parameters and returns `outputs` in that order. Stops
  // after the deepest requested output. Throws c10::Error on a wrong input,
  // as LibTorch modules do.
  std::vector<torch::Tensor> Run(const torch::Tensor& input,
                                 const std::vector<LeNetOutput>& outputs);

  // Switches training mode like any module, but keeps the BatchNorm layers
  // in eval mode (normalising with their running statistics and not
  // updating them) while SetBatchNormFrozen(true) is in effect.
  void train(bool on = true) override;

  void SetBatchNormFrozen(bool frozen);
  bool batchnorm_frozen() const { return batchnorm_frozen_; }

  // Stage names, input side first: "conv1" (conv1, bn1), "conv2" (conv2,
  // bn2) and "fc" (fc1).
  static const std::vector<std::string>& StageNames();

  // Sets requires_grad on the parameters of stage `stage` and every later
  // stage and clears it on the earlier ones. An unknown name is
  // InvalidArgument listing StageNames().
  absl::Status SetTrainableFrom(const std::string& stage);

  int64_t input_size() const { return input_size_; }
  int64_t rep_dim() const { return rep_dim_; }

 private:
  // The modules of stage `index` of StageNames().
  std::vector<std::shared_ptr<torch::nn::Module>> StageModules(size_t index);

  int64_t input_size_;
  int64_t rep_dim_;
  bool batchnorm_frozen_ = false;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::Conv2d conv2_{nullptr};
  torch::nn::BatchNorm2d bn2_{nullptr};
  torch::nn::Linear fc1_{nullptr};
};

}  // namespace panda::lenet

namespace panda {

class LenetBackbone : public Backbone {
 public:
  // Builds the network on the CPU in eval mode and, when
  // options.weights_file is set, loads it. A negative or zero seed is
  // accepted. An input_size below 4 or a rep_dim below 1 is
  // InvalidArgument. A missing weights_file is NotFound, a file that
  // torch::load cannot read is DataLoss, and a file whose tensors differ
  // from the network's (names, shapes or dtype) is InvalidArgument listing
  // the first offending tensors.
  static absl::StatusOr<std::unique_ptr<LenetBackbone>> Create(
      const LenetBackboneOptions& options);

  torch::nn::Module& module() override { return *network_; }
  torch::Tensor Preprocess(const torch::Tensor& images) const override;
  // Runs only as deep as the deepest requested tap. Input other than
  // float32 [N, 1, S, S] on the network's device is InvalidArgument. A
  // LibTorch failure is ResourceExhausted when memory ran out and Internal
  // otherwise.
  absl::StatusOr<TapMap> Forward(const torch::Tensor& input,
                                 const std::vector<std::string>& taps) override;
  std::vector<std::string> tap_names() const override;
  int64_t feature_dim() const override { return network_->rep_dim(); }
  std::string Fingerprint() const override { return fingerprint_; }
  std::vector<std::string> stage_names() const override;
  absl::Status SetTrainableFrom(const std::string& stage) override;
  absl::Status SetBatchNormFrozen(bool frozen) override;

  lenet::LeNet& network() { return *network_; }

 private:
  LenetBackbone() = default;

  std::shared_ptr<lenet::LeNet> network_;
  std::string fingerprint_;
};

// Registry factory for "lenet": unpacks LenetBackboneOptions.
absl::StatusOr<std::unique_ptr<Backbone>> CreateLenetBackbone(
    const google::protobuf::Any& options);

}  // namespace panda

#endif  // PANDA_BACKBONES_LENET_LENET_BACKBONE_H_
