#include "backbones/torchvision/torchvision_resnet_backbone.h"

#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backbones/torchvision/network_input.h"
#include "backbones/torchvision/state_dict.h"
#include "backbones/torchvision/torch_checkpoint.h"
#include "core/fnv1a.h"
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda {
namespace {

using torchvision::NamedTensor;
using torchvision::ResNet;
using torchvision::ResNetOutput;

constexpr char kPlugin[] = "torchvision_resnet backbone";
constexpr char kDataParallelPrefix[] = "module.";

const std::vector<std::pair<std::string, ResNetOutput>>& TapOutputs() {
  static const auto* taps = new std::vector<std::pair<std::string, ResNetOutput>>{
      {"pooled", ResNetOutput::kPooled}, {"stem", ResNetOutput::kStem},
      {"layer1", ResNetOutput::kLayer1}, {"layer2", ResNetOutput::kLayer2},
      {"layer3", ResNetOutput::kLayer3}, {"layer4", ResNetOutput::kLayer4},
      {"logits", ResNetOutput::kLogits},
  };
  return *taps;
}

bool IsSpatial(ResNetOutput output) {
  return output != ResNetOutput::kPooled && output != ResNetOutput::kLogits;
}

// Removes nn.DataParallel's "module." from every name when all have it.
void StripDataParallelPrefix(std::vector<NamedTensor>& state, const std::string& path) {
  if (state.empty()) return;
  for (const NamedTensor& entry : state) {
    if (!absl::StartsWith(entry.name, kDataParallelPrefix)) return;
  }
  for (NamedTensor& entry : state) entry.name.erase(0, sizeof(kDataParallelPrefix) - 1);
  PANDA_LOG(INFO) << kPlugin << ": " << path << " was saved from nn.DataParallel; "
                  << "loading its names without the \"module.\" prefix";
}

// FNV-1a over every name and the bytes of every tensor, in file order.
uint64_t StateChecksum(const std::vector<NamedTensor>& state) {
  uint64_t hash = kFnv1aOffsetBasis;
  for (const NamedTensor& entry : state) {
    hash = Fnv1a64(entry.name.data(), entry.name.size(), hash);
    const torch::Tensor tensor = entry.tensor.contiguous();
    hash = Fnv1a64(tensor.data_ptr(), tensor.numel() * tensor.element_size(), hash);
  }
  return hash;
}

int64_t NumClasses(const std::vector<NamedTensor>& state) {
  for (const NamedTensor& entry : state) {
    if (entry.name == "fc.weight" && entry.tensor.dim() == 2 && entry.tensor.size(0) > 0) {
      return entry.tensor.size(0);
    }
  }
  return 1000;  // torchvision's default; the load then reports fc.weight.
}

absl::Status WithPrefix(const absl::Status& status, const std::string& prefix) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TorchvisionResnetBackbone>> TorchvisionResnetBackbone::Create(
    const TorchvisionResnetOptions& options) {
  if (options.arch().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": arch is required, one of ",
        absl::StrJoin(torchvision::ResNetNames(), ", ")));
  }
  absl::StatusOr<torchvision::ResNetSpec> spec = torchvision::FindResNetSpec(options.arch());
  if (!spec.ok()) return WithPrefix(spec.status(), absl::StrCat(kPlugin, ": arch: "));
  if (options.weights_file().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": weights_file is required: the path of a checkpoint saved by torch.save "
                 "from torchvision.models.", options.arch(), "().state_dict()"));
  }

  std::unique_ptr<TorchvisionResnetBackbone> backbone(new TorchvisionResnetBackbone());
  PANDA_ASSIGN_OR_RETURN(backbone->preprocessing_,
                         torchvision::ResolvePreprocessing(
                             options.preprocessing(), absl::StrCat(kPlugin, ": preprocessing")));

  PANDA_ASSIGN_OR_RETURN(std::vector<NamedTensor> state,
                         torchvision::ReadStateDict(options.weights_file()));
  StripDataParallelPrefix(state, options.weights_file());
  backbone->network_ = std::make_shared<ResNet>(*spec, NumClasses(state));
  PANDA_RETURN_IF_ERROR(torchvision::LoadStateDict(state, *backbone->network_,
                                                   options.weights_file(), options.arch()));

  backbone->network_->eval();
  backbone->network_->SetBatchNormFrozen(options.freeze_batchnorm());
  PANDA_RETURN_IF_ERROR(WithPrefix(backbone->network_->SetTrainableFrom(options.trainable_from()),
                                   absl::StrCat(kPlugin, ": trainable_from: ")));
  backbone->network_->SetChannelsLast(options.channels_last());

  backbone->fingerprint_ = absl::StrCat(
      "torchvision_resnet/", options.arch(), "/fnv1a64=",
      absl::Hex(StateChecksum(state), absl::kZeroPad16), "/",
      torchvision::DescribePreprocessing(backbone->preprocessing_));

  int64_t parameter_count = 0;
  for (const torch::Tensor& parameter : backbone->network_->parameters()) {
    parameter_count += parameter.numel();
  }
  PANDA_LOG(INFO) << kPlugin << ": loaded " << options.arch() << " from "
                  << options.weights_file() << ": " << state.size() << " tensors, "
                  << parameter_count << " parameters, " << backbone->feature_dim()
                  << "-d pooled feature, " << backbone->network_->num_classes() << " classes";
  return backbone;
}

torch::Tensor TorchvisionResnetBackbone::Preprocess(const torch::Tensor& images) const {
  return torchvision::PreprocessImages(images, preprocessing_);
}

std::vector<std::string> TorchvisionResnetBackbone::tap_names() const {
  std::vector<std::string> names;
  for (const auto& tap : TapOutputs()) names.push_back(tap.first);
  return names;
}

absl::StatusOr<TapMap> TorchvisionResnetBackbone::Forward(const torch::Tensor& input,
                                                          const std::vector<std::string>& taps) {
  std::vector<ResNetOutput> outputs;
  for (const std::string& tap : taps) {
    bool found = false;
    for (const auto& [name, output] : TapOutputs()) {
      if (name == tap) {
        outputs.push_back(output);
        found = true;
        break;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat(kPlugin, ": unknown tap \"", tap,
                                                     "\"; valid taps are ",
                                                     absl::StrJoin(tap_names(), ", ")));
    }
  }
  TapMap result;
  if (taps.empty()) return result;
  PANDA_RETURN_IF_ERROR(torchvision::CheckNetworkInput(
      input, network_->parameters().front().device(), kPlugin));

  std::vector<torch::Tensor> values;
  try {
    values = network_->Run(input, outputs);
  } catch (const c10::Error& error) {
    return torchvision::ForwardErrorStatus(error, kPlugin);
  }
  for (size_t i = 0; i < taps.size(); ++i) {
    result[taps[i]] = IsSpatial(outputs[i]) ? values[i].contiguous() : values[i];
  }
  return result;
}

std::vector<std::string> TorchvisionResnetBackbone::stage_names() const {
  return ResNet::StageNames();
}

absl::Status TorchvisionResnetBackbone::SetTrainableFrom(const std::string& stage) {
  return WithPrefix(network_->SetTrainableFrom(stage), absl::StrCat(kPlugin, ": "));
}

absl::Status TorchvisionResnetBackbone::SetBatchNormFrozen(bool frozen) {
  network_->SetBatchNormFrozen(frozen);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backbone>> CreateTorchvisionResnetBackbone(
    const google::protobuf::Any& options) {
  PANDA_ASSIGN_OR_RETURN(
      const TorchvisionResnetOptions resnet_options,
      UnpackPluginOptions<TorchvisionResnetOptions>(options, "torchvision_resnet"));
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<TorchvisionResnetBackbone> backbone,
                         TorchvisionResnetBackbone::Create(resnet_options));
  return std::unique_ptr<Backbone>(std::move(backbone));
}

PANDA_REGISTER_PLUGIN(BackboneRegistry, "torchvision_resnet", CreateTorchvisionResnetBackbone);

}  // namespace panda
