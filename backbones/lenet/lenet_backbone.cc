#include "backbones/lenet/lenet_backbone.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <system_error>
#include <utility>

#include "ATen/CPUGeneratorImpl.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "backbones/backbone.h"
#include "backbones/torchvision/network_input.h"
#include "core/fnv1a.h"
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "torch/serialize/input-archive.h"
#include "torch/torch.h"

namespace panda::lenet {

// Channels after each convolution; the fingerprint names them too.
constexpr int64_t kConv1Channels = 8;
constexpr int64_t kConv2Channels = 4;

namespace {

namespace nn = torch::nn;

constexpr int64_t kKernelSize = 5;
constexpr int64_t kPadding = 2;
constexpr double kBatchNormEps = 1e-4;
constexpr double kLeakyReluSlope = 0.01;

nn::Conv2d Convolution(int64_t in_channels, int64_t out_channels) {
  return nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, kKernelSize)
                        .padding(kPadding)
                        .bias(false));
}

nn::BatchNorm2d BatchNorm(int64_t channels) {
  return nn::BatchNorm2d(nn::BatchNorm2dOptions(channels).eps(kBatchNormEps).affine(false));
}

// Refills `weight` as LibTorch's Conv2d and Linear initialise it (Kaiming
// uniform with a = sqrt(5), which is uniform in +-1/sqrt(fan_in)), drawing
// from `generator`.
void InitialiseWeight(torch::Tensor weight, at::Generator& generator) {
  const int64_t fan_in = weight.numel() / weight.size(0);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  torch::NoGradGuard no_grad;
  weight.uniform_(-bound, bound, generator);
}

torch::Tensor ConvBlock(const torch::Tensor& input, nn::Conv2d& conv, nn::BatchNorm2d& batchnorm) {
  const torch::Tensor activated = torch::leaky_relu(batchnorm(conv(input)), kLeakyReluSlope);
  return torch::max_pool2d(activated, /*kernel_size=*/{2, 2}, /*stride=*/{2, 2});
}

}  // namespace

LeNet::LeNet(int64_t input_size, int64_t rep_dim, uint64_t seed)
    : input_size_(input_size), rep_dim_(rep_dim) {
  conv1_ = register_module("conv1", Convolution(1, kConv1Channels));
  bn1_ = register_module("bn1", BatchNorm(kConv1Channels));
  conv2_ = register_module("conv2", Convolution(kConv1Channels, kConv2Channels));
  bn2_ = register_module("bn2", BatchNorm(kConv2Channels));
  // Each 2x2 max-pooling halves the side, rounding down.
  const int64_t side = input_size / 4;
  fc1_ = register_module(
      "fc1", nn::Linear(nn::LinearOptions(kConv2Channels * side * side, rep_dim).bias(false)));

  // The construction above already drew from the global generator; these
  // draws replace those weights, so they depend on `seed` alone.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  InitialiseWeight(conv1_->weight, generator);
  InitialiseWeight(conv2_->weight, generator);
  InitialiseWeight(fc1_->weight, generator);
}

std::vector<torch::Tensor> LeNet::Run(const torch::Tensor& input,
                                      const std::vector<LeNetOutput>& outputs) {
  if (outputs.empty()) return {};
  const int deepest = static_cast<int>(*std::max_element(outputs.begin(), outputs.end()));

  std::array<torch::Tensor, 3> results;
  torch::Tensor x = ConvBlock(input, conv1_, bn1_);
  results[static_cast<int>(LeNetOutput::kConv1)] = x;
  if (deepest >= static_cast<int>(LeNetOutput::kConv2)) {
    x = ConvBlock(x, conv2_, bn2_);
    results[static_cast<int>(LeNetOutput::kConv2)] = x;
  }
  if (deepest >= static_cast<int>(LeNetOutput::kPooled)) {
    results[static_cast<int>(LeNetOutput::kPooled)] = fc1_(x.flatten(/*start_dim=*/1));
  }

  std::vector<torch::Tensor> selected;
  selected.reserve(outputs.size());
  for (LeNetOutput output : outputs) selected.push_back(results[static_cast<int>(output)]);
  return selected;
}

void LeNet::train(bool on) {
  nn::Module::train(on);
  if (!on || !batchnorm_frozen_) return;
  bn1_->eval();
  bn2_->eval();
}

void LeNet::SetBatchNormFrozen(bool frozen) {
  batchnorm_frozen_ = frozen;
  train(is_training());
}

const std::vector<std::string>& LeNet::StageNames() {
  static const auto* names = new std::vector<std::string>{"conv1", "conv2", "fc"};
  return *names;
}

std::vector<std::shared_ptr<nn::Module>> LeNet::StageModules(size_t index) {
  if (index == 0) return {conv1_.ptr(), bn1_.ptr()};
  if (index == 1) return {conv2_.ptr(), bn2_.ptr()};
  return {fc1_.ptr()};
}

absl::Status LeNet::SetTrainableFrom(const std::string& stage) {
  return SetTrainableStages("LeNet", StageNames(), stage,
                            [this](size_t index) { return StageModules(index); });
}

}  // namespace panda::lenet

namespace panda {
namespace {

using lenet::LeNet;
using lenet::LeNetOutput;

constexpr char kPlugin[] = "lenet backbone";

// Both 2x2 max-poolings must leave at least one pixel.
constexpr int64_t kMinInputSize = 4;

// Offending tensors listed per kind in a weights_file mismatch error.
constexpr size_t kListedTensors = 5;

// Tensors by their dotted name ("conv1.weight"), sorted by name.
using NamedTensors = std::map<std::string, torch::Tensor>;

const std::vector<std::pair<std::string, LeNetOutput>>& TapOutputs() {
  static const auto* taps = new std::vector<std::pair<std::string, LeNetOutput>>{
      {"pooled", LeNetOutput::kPooled},
      {"conv1", LeNetOutput::kConv1},
      {"conv2", LeNetOutput::kConv2},
  };
  return *taps;
}

std::string FirstLine(absl::string_view text) {
  return std::string(text.substr(0, text.find('\n')));
}

std::string DescribeTensor(const torch::Tensor& tensor) {
  return absl::StrCat(c10::toString(tensor.scalar_type()), " [",
                      absl::StrJoin(tensor.sizes(), ", "), "]");
}

// Returns the first kListedTensors entries of `names`, with the total when
// some are left out.
std::string ListNames(const std::vector<std::string>& names) {
  if (names.size() <= kListedTensors) return absl::StrJoin(names, ", ");
  return absl::StrCat(
      absl::StrJoin(std::vector<std::string>(names.begin(), names.begin() + kListedTensors),
                    ", "),
      ", ... (", names.size(), " in all)");
}

NamedTensors NetworkState(LeNet& network) {
  NamedTensors state;
  for (const auto& entry : network.named_parameters()) state[entry.key()] = entry.value();
  for (const auto& entry : network.named_buffers()) state[entry.key()] = entry.value();
  return state;
}

// Collects the tensors of `archive` and of its nested archives, which
// torch::save writes one per submodule, named by their path from the top.
void CollectArchiveTensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                           NamedTensors& tensors) {
  for (const std::string& key : archive.keys()) {
    torch::Tensor tensor;
    torch::serialize::InputArchive child;
    if (archive.try_read(key, tensor)) {
      tensors[prefix + key] = tensor;
    } else if (archive.try_read(key, child)) {
      CollectArchiveTensors(child, absl::StrCat(prefix, key, "."), tensors);
    }
  }
}

// Copies the tensors of a torch::save file into `network`. Module::load
// would accept a tensor of another shape and ignore extra tensors, so the
// names, shapes and dtypes are compared first.
absl::Status LoadWeightsFile(const std::string& path, LeNet& network) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat(kPlugin, ": weights_file not found: ", path));
  }
  NamedTensors stored;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, torch::kCPU);
    CollectArchiveTensors(archive, "", stored);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(kPlugin, ": cannot read ", path,
                                            " as a module saved by torch::save: ",
                                            FirstLine(e.what_without_backtrace())));
  }

  const NamedTensors expected = NetworkState(network);
  std::vector<std::string> missing;
  std::vector<std::string> mismatched;
  std::vector<std::string> unexpected;
  for (const auto& [name, tensor] : expected) {
    const auto found = stored.find(name);
    if (found == stored.end()) {
      missing.push_back(name);
    } else if (found->second.sizes() != tensor.sizes() ||
               found->second.scalar_type() != tensor.scalar_type()) {
      mismatched.push_back(absl::StrCat(name, " is ", DescribeTensor(found->second),
                                        " in the file but ", DescribeTensor(tensor),
                                        " in the network"));
    }
  }
  for (const auto& entry : stored) {
    if (expected.count(entry.first) == 0) unexpected.push_back(entry.first);
  }
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::vector<std::string> problems;
    if (!missing.empty()) problems.push_back(absl::StrCat("missing ", ListNames(missing)));
    if (!mismatched.empty()) problems.push_back(ListNames(mismatched));
    if (!unexpected.empty()) {
      problems.push_back(absl::StrCat("unexpected ", ListNames(unexpected)));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": ", path, " does not hold a LeNet for input_size ", network.input_size(),
        " and rep_dim ", network.rep_dim(), ": ", absl::StrJoin(problems, "; ")));
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : expected) {
    torch::Tensor target = tensor;
    target.copy_(stored.at(name));
  }
  return absl::OkStatus();
}

// FNV-1a over every parameter and buffer name and its bytes, in name order.
uint64_t StateChecksum(LeNet& network) {
  uint64_t hash = kFnv1aOffsetBasis;
  for (const auto& [name, tensor] : NetworkState(network)) {
    hash = Fnv1a64(name.data(), name.size(), hash);
    const torch::Tensor bytes = tensor.contiguous().cpu();
    hash = Fnv1a64(bytes.data_ptr(), bytes.numel() * bytes.element_size(), hash);
  }
  return hash;
}

absl::Status WithPrefix(const absl::Status& status, const std::string& prefix) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

absl::Status CheckInput(const torch::Tensor& input, int64_t size, const torch::Device& device) {
  if (!input.defined()) {
    return absl::InvalidArgumentError(absl::StrCat(kPlugin, ": the input tensor is undefined"));
  }
  const bool valid_shape = input.dim() == 4 && input.size(0) > 0 && input.size(1) == 1 &&
                           input.size(2) == size && input.size(3) == size;
  if (!valid_shape || input.scalar_type() != torch::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": expected float32 input [N, 1, ", size, ", ", size,
        "] (the output of Preprocess), got ", DescribeTensor(input)));
  }
  if (input.device() != device) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": the input is on ", input.device().str(), " but the network is on ",
        device.str(), "; move one of them with .to()"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LenetBackbone>> LenetBackbone::Create(
    const LenetBackboneOptions& options) {
  if (options.input_size() < kMinInputSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": input_size must be at least ", kMinInputSize,
        ", so that both 2x2 max-poolings leave a non-empty map, got ", options.input_size()));
  }
  if (options.rep_dim() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(kPlugin, ": rep_dim must be positive, got ", options.rep_dim()));
  }

  std::unique_ptr<LenetBackbone> backbone(new LenetBackbone());
  backbone->network_ = std::make_shared<LeNet>(options.input_size(), options.rep_dim(),
                                               static_cast<uint64_t>(options.seed()));
  if (!options.weights_file().empty()) {
    PANDA_RETURN_IF_ERROR(LoadWeightsFile(options.weights_file(), *backbone->network_));
  }
  backbone->network_->eval();

  // The checksum covers loaded weights, and random ones from a LibTorch
  // build whose draws differ for the same seed. The seed is named only when
  // the weights come from it.
  const std::string origin = options.weights_file().empty()
                                 ? absl::StrCat("/seed=", options.seed())
                                 : std::string("/weights_file");
  backbone->fingerprint_ = absl::StrCat(
      "lenet/conv", lenet::kConv1Channels, "-conv", lenet::kConv2Channels, "-fc",
      options.rep_dim(), origin, "/input=", options.input_size(), "x", options.input_size(),
      "/fnv1a64=", absl::Hex(StateChecksum(*backbone->network_), absl::kZeroPad16),
      "/grey=mean/scale=unit/resize=bilinear");

  int64_t parameter_count = 0;
  for (const torch::Tensor& parameter : backbone->network_->parameters()) {
    parameter_count += parameter.numel();
  }
  PANDA_LOG(INFO) << kPlugin << ": "
                  << (options.weights_file().empty()
                          ? absl::StrCat("random weights from seed ", options.seed())
                          : absl::StrCat("weights from ", options.weights_file()))
                  << ": " << parameter_count << " parameters, input " << options.input_size()
                  << "x" << options.input_size() << ", " << options.rep_dim()
                  << "-d pooled feature";
  return backbone;
}

torch::Tensor LenetBackbone::Preprocess(const torch::Tensor& images) const {
  TORCH_CHECK(images.defined() && images.dim() == 4 && images.scalar_type() == torch::kByte &&
                  (images.size(3) == 1 || images.size(3) == 3),
              "lenet backbone: expected uint8 images [N, H, W, C] with C = 1 or 3, got ",
              images.defined() ? images.toString() : "an undefined tensor", " ",
              images.defined() ? images.sizes() : torch::IntArrayRef());
  const int64_t size = network_->input_size();
  torch::Tensor grey = images.to(torch::kFloat32)
                           .div(255)
                           .mean(/*dim=*/3, /*keepdim=*/true)
                           .permute({0, 3, 1, 2});
  if (grey.size(2) != size || grey.size(3) != size) {
    grey = torch::upsample_bilinear2d(grey, {size, size}, /*align_corners=*/false);
  }
  return grey.contiguous();
}

std::vector<std::string> LenetBackbone::tap_names() const {
  std::vector<std::string> names;
  for (const auto& tap : TapOutputs()) names.push_back(tap.first);
  return names;
}

absl::StatusOr<TapMap> LenetBackbone::Forward(const torch::Tensor& input,
                                              const std::vector<std::string>& taps) {
  std::vector<LeNetOutput> outputs;
  for (const std::string& tap : taps) {
    const auto found = std::find_if(TapOutputs().begin(), TapOutputs().end(),
                                    [&](const auto& entry) { return entry.first == tap; });
    if (found == TapOutputs().end()) {
      return absl::InvalidArgumentError(absl::StrCat(kPlugin, ": unknown tap \"", tap,
                                                     "\"; valid taps are ",
                                                     absl::StrJoin(tap_names(), ", ")));
    }
    outputs.push_back(found->second);
  }
  TapMap result;
  if (taps.empty()) return result;
  PANDA_RETURN_IF_ERROR(CheckInput(input, network_->input_size(),
                                   network_->parameters().front().device()));

  std::vector<torch::Tensor> values;
  try {
    values = network_->Run(input, outputs);
  } catch (const c10::Error& error) {
    return torchvision::ForwardErrorStatus(error, kPlugin);
  }
  for (size_t i = 0; i < taps.size(); ++i) result[taps[i]] = values[i].contiguous();
  return result;
}

std::vector<std::string> LenetBackbone::stage_names() const { return LeNet::StageNames(); }

absl::Status LenetBackbone::SetTrainableFrom(const std::string& stage) {
  return WithPrefix(network_->SetTrainableFrom(stage), absl::StrCat(kPlugin, ": "));
}

absl::Status LenetBackbone::SetBatchNormFrozen(bool frozen) {
  network_->SetBatchNormFrozen(frozen);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backbone>> CreateLenetBackbone(
    const google::protobuf::Any& options) {
  PANDA_ASSIGN_OR_RETURN(const LenetBackboneOptions lenet_options,
                         UnpackPluginOptions<LenetBackboneOptions>(options, "lenet"));
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<LenetBackbone> backbone,
                         LenetBackbone::Create(lenet_options));
  return std::unique_ptr<Backbone>(std::move(backbone));
}

PANDA_REGISTER_PLUGIN(BackboneRegistry, "lenet", CreateLenetBackbone);

}  // namespace panda
