// The "torchscript" backbone plugin: any module saved by torch.jit.save,
// with named taps on its submodules or methods. Options are
// TorchscriptBackboneOptions:
//
//   backbone { name: "torchscript"
//     options { [type.googleapis.com/panda.TorchscriptBackboneOptions] {
//       module_file: "data/weights/resnet152_scripted.pt"
//       taps { submodule: "layer3" }
//       taps { submodule: "layer4" }
//       pooled_from: "layer4" } } }
//
// Taps:
//   "pooled"        float32 [N, D]: the global average over height and width
//                   of tap `pooled_from`, or of the forward output (taken as
//                   it is when that is already [N, D]).
//   "output"        the forward output.
//   each Tap name   the submodule's output or the method's result, spatial
//                   maps as float32 [N, C, H, W].
//
// Preprocess() follows ImagePreprocessing, as for torchvision_resnet.
#ifndef PANDA_BACKBONES_TORCHSCRIPT_TORCHSCRIPT_BACKBONE_H_
#define PANDA_BACKBONES_TORCHSCRIPT_TORCHSCRIPT_BACKBONE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "backbones/torchscript/script_module_holder.h"
#include "backbones/torchscript/torchscript_backbone_options.pb.h"
#include "backbones/torchvision/image_preprocessing.h"
#include "google/protobuf/any.pb.h"

namespace panda {

class TorchscriptBackbone : public Backbone {
 public:
  // Loads options.module_file on the CPU in eval mode and runs it once on a
  // black image of the preprocessed size to find feature_dim() and check
  // the taps. Returns InvalidArgument for an empty module_file, an unknown
  // pooled_from, invalid preprocessing or trainable_from, and a probe run
  // that fails or gives no 2-D or 4-D "pooled" source. Invalid taps are
  // InvalidArgument too: no or both of submodule and method, a duplicate or
  // reserved name, a submodule that AddTapMethod rejects, an unknown method.
  // A missing file is NotFound. A file that is not a well-formed zip
  // archive, has a record that fails its CRC-32 check or that
  // torch::jit::load cannot read is DataLoss, or InvalidArgument when it is
  // a torch.save checkpoint.
  static absl::StatusOr<std::unique_ptr<TorchscriptBackbone>> Create(
      const TorchscriptBackboneOptions& options);

  torch::nn::Module& module() override { return *holder_; }
  torch::Tensor Preprocess(const torch::Tensor& images) const override;
  // Runs forward (with the submodule taps when any is needed) and the
  // requested methods. Wrong input is InvalidArgument; a LibTorch failure is
  // ResourceExhausted when memory ran out and Internal otherwise.
  absl::StatusOr<TapMap> Forward(const torch::Tensor& input,
                                 const std::vector<std::string>& taps) override;
  std::vector<std::string> tap_names() const override;
  int64_t feature_dim() const override { return feature_dim_; }
  std::string Fingerprint() const override { return fingerprint_; }
  std::vector<std::string> stage_names() const override;
  absl::Status SetTrainableFrom(const std::string& stage) override;
  absl::Status SetBatchNormFrozen(bool frozen) override;

 private:
  struct TapSource {
    bool submodule = false;
    int index = 0;       // position in the tap method's tuple, from 1
    std::string method;  // method name when !submodule
  };

  TorchscriptBackbone() = default;

  absl::Status AddTaps(const TorchscriptBackboneOptions& options);
  absl::StatusOr<TapMap> Run(const torch::Tensor& input, const std::vector<std::string>& taps);

  TorchscriptBackboneOptions options_;
  std::shared_ptr<torchscript::ScriptModuleHolder> holder_;
  torchvision::PreprocessSettings preprocessing_;
  std::vector<std::string> tap_order_;
  std::map<std::string, TapSource> taps_;
  std::string tap_method_;  // empty without submodule taps
  std::string pooled_from_;
  int64_t feature_dim_ = 0;
  std::string fingerprint_;
};

// Registry factory for "torchscript": unpacks TorchscriptBackboneOptions.
absl::StatusOr<std::unique_ptr<Backbone>> CreateTorchscriptBackbone(
    const google::protobuf::Any& options);

}  // namespace panda

#endif  // PANDA_BACKBONES_TORCHSCRIPT_TORCHSCRIPT_BACKBONE_H_
