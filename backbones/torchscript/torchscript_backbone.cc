#include "backbones/torchscript/torchscript_backbone.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "backbones/torchscript/module_taps.h"
#include "backbones/torchvision/network_input.h"
#include "backbones/torchvision/zip_archive.h"
#include "core/fnv1a.h"
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "torch/script.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr char kPlugin[] = "torchscript backbone";
constexpr char kPooledTap[] = "pooled";
constexpr char kOutputTap[] = "output";

std::string FirstLine(absl::string_view text) {
  return std::string(text.substr(0, text.find('\n')));
}

absl::StatusOr<uint64_t> FileChecksum(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) return absl::NotFoundError(absl::StrCat(kPlugin, ": cannot read ", path));
  uint64_t hash = kFnv1aOffsetBasis;
  std::vector<char> buffer(1 << 20);
  while (stream) {
    stream.read(buffer.data(), buffer.size());
    hash = Fnv1a64(buffer.data(), static_cast<size_t>(stream.gcount()), hash);
  }
  return hash;
}

absl::StatusOr<torch::jit::Module> LoadScriptModule(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat(kPlugin, ": module file not found: ", path));
  }

  // LibTorch 1.13 checks no CRC-32 (its zip reader is built with miniz's
  // checks off), and some corrupt records make it end the process instead of
  // throwing: torch::jit::ErrorReport::what() is noexcept, but it unpickles
  // the module's debug records to quote the failing code, so a corrupt
  // .debug_pkl record calls std::terminate. Verifying every record first
  // turns such files into DataLoss.
  // NOTE: A file crafted with valid CRC-32s and damaged records still reaches
  // LibTorch, where it can end the process or request gigabytes of memory.
  // Like pickles, TorchScript files must come from a trusted source.
  absl::StatusOr<torchvision::ZipArchive> archive = torchvision::ZipArchive::Open(path);
  absl::Status verified = archive.status();
  if (verified.ok()) verified = archive->VerifyRecords();
  if (!verified.ok()) {
    return absl::DataLossError(absl::StrCat(kPlugin, ": invalid module file: ", verified.message()));
  }

  try {
    return torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    const std::string message = FirstLine(e.what());
    if (absl::StrContains(message, "constants.pkl")) {
      return absl::InvalidArgumentError(absl::StrCat(
          kPlugin, ": ", path, " is not a TorchScript module (torch.jit.save) but probably "
          "a torch.save checkpoint; load state dicts of torchvision ResNets with the "
          "\"torchvision_resnet\" backbone (", message, ")"));
    }
    return absl::DataLossError(
        absl::StrCat(kPlugin, ": cannot load ", path, " as a TorchScript module: ", message));
  }
}

torch::Tensor TensorOrUndefined(const c10::IValue& value) {
  return value.isTensor() ? value.toTensor() : torch::Tensor();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TorchscriptBackbone>> TorchscriptBackbone::Create(
    const TorchscriptBackboneOptions& options) {
  if (options.module_file().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": module_file is required: the path of a module saved by torch.jit.save"));
  }
  std::unique_ptr<TorchscriptBackbone> backbone(new TorchscriptBackbone());
  backbone->options_ = options;
  PANDA_ASSIGN_OR_RETURN(backbone->preprocessing_,
                         torchvision::ResolvePreprocessing(
                             options.preprocessing(), absl::StrCat(kPlugin, ": preprocessing")));
  PANDA_ASSIGN_OR_RETURN(torch::jit::Module script, LoadScriptModule(options.module_file()));
  PANDA_ASSIGN_OR_RETURN(const uint64_t checksum, FileChecksum(options.module_file()));
  backbone->holder_ = std::make_shared<torchscript::ScriptModuleHolder>(std::move(script));
  PANDA_RETURN_IF_ERROR(backbone->AddTaps(options));

  backbone->holder_->eval();
  backbone->holder_->SetBatchNormFrozen(options.freeze_batchnorm());
  absl::Status trainable = backbone->holder_->SetTrainableFrom(options.trainable_from());
  if (!trainable.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kPlugin, ": trainable_from: ", trainable.message()));
  }
  backbone->holder_->SetParameterFormat(options.channels_last());

  // A probe run on a black image of the preprocessed size of a 224 x 224
  // image finds the feature dimension and checks every tap.
  const std::array<int64_t, 2> size = torchvision::PreprocessedSize(224, 224, backbone->preprocessing_);
  std::vector<std::string> probe_taps = {kPooledTap};
  probe_taps.insert(probe_taps.end(), backbone->tap_order_.begin(), backbone->tap_order_.end());
  absl::StatusOr<TapMap> probe;
  {
    torch::NoGradGuard no_grad;
    probe = backbone->Forward(torch::zeros({1, 3, size[0], size[1]}), probe_taps);
  }
  if (!probe.ok()) {
    absl::string_view reason = probe.status().message();
    absl::ConsumePrefix(&reason, absl::StrCat(kPlugin, ": "));
    return absl::InvalidArgumentError(absl::StrCat(kPlugin, ": a probe run on a black ", size[0],
                                                   "x", size[1], " image failed: ", reason));
  }
  backbone->feature_dim_ = probe->at(kPooledTap).size(1);

  backbone->fingerprint_ = absl::StrCat(
      "torchscript/fnv1a64=", absl::Hex(checksum, absl::kZeroPad16), "/pooled=",
      options.pooled_from().empty() ? kOutputTap : options.pooled_from(), "/",
      torchvision::DescribePreprocessing(backbone->preprocessing_));
  PANDA_LOG(INFO) << kPlugin << ": loaded " << options.module_file() << ": "
                  << backbone->tap_order_.size() << " taps, " << backbone->feature_dim_
                  << "-d pooled feature";
  return backbone;
}

absl::Status TorchscriptBackbone::AddTaps(const TorchscriptBackboneOptions& options) {
  std::vector<std::string> submodule_paths;
  for (const TorchscriptBackboneOptions::Tap& tap : options.taps()) {
    const bool has_submodule = !tap.submodule().empty();
    const bool has_method = !tap.method().empty();
    if (has_submodule == has_method) {
      return absl::InvalidArgumentError(absl::StrCat(
          kPlugin, ": each of taps needs exactly one of submodule and method, got \"",
          tap.ShortDebugString(), "\""));
    }
    const std::string name =
        !tap.name().empty() ? tap.name() : (has_submodule ? tap.submodule() : tap.method());
    if (name == kPooledTap || name == kOutputTap || taps_.count(name) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          kPlugin, ": tap name \"", name, "\" is ",
          taps_.count(name) > 0 ? "used twice" : "reserved", "; set a distinct taps.name"));
    }
    TapSource source;
    if (has_submodule) {
      source.submodule = true;
      submodule_paths.push_back(tap.submodule());
      source.index = static_cast<int>(submodule_paths.size());
    } else {
      if (!holder_->script().find_method(tap.method()).has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            kPlugin, ": the module has no method \"", tap.method(),
            "\"; export it with @torch.jit.export"));
      }
      source.method = tap.method();
    }
    taps_[name] = source;
    tap_order_.push_back(name);
  }

  if (!options.pooled_from().empty() && taps_.count(options.pooled_from()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": pooled_from \"", options.pooled_from(), "\" names no tap; the taps are ",
        tap_order_.empty() ? "none" : absl::StrJoin(tap_order_, ", ")));
  }
  pooled_from_ = options.pooled_from();

  if (!submodule_paths.empty()) {
    absl::StatusOr<std::string> method = torchscript::AddTapMethod(holder_->script(),
                                                                   submodule_paths);
    if (!method.ok()) {
      return absl::Status(method.status().code(),
                          absl::StrCat(kPlugin, ": taps: ", method.status().message()));
    }
    tap_method_ = *method;
  }
  return absl::OkStatus();
}

torch::Tensor TorchscriptBackbone::Preprocess(const torch::Tensor& images) const {
  return torchvision::PreprocessImages(images, preprocessing_);
}

std::vector<std::string> TorchscriptBackbone::tap_names() const {
  std::vector<std::string> names = {kPooledTap, kOutputTap};
  names.insert(names.end(), tap_order_.begin(), tap_order_.end());
  return names;
}

absl::StatusOr<TapMap> TorchscriptBackbone::Forward(const torch::Tensor& input,
                                                    const std::vector<std::string>& taps) {
  for (const std::string& tap : taps) {
    if (tap != kPooledTap && tap != kOutputTap && taps_.count(tap) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(kPlugin, ": unknown tap \"", tap,
                                                     "\"; valid taps are ",
                                                     absl::StrJoin(tap_names(), ", ")));
    }
  }
  if (taps.empty()) return TapMap();
  const std::vector<torch::Tensor> parameters = holder_->parameters();
  const torch::Device device =
      parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
  PANDA_RETURN_IF_ERROR(torchvision::CheckNetworkInput(input, device, kPlugin));
  try {
    return Run(input, taps);
  } catch (const c10::Error& error) {
    return torchvision::ForwardErrorStatus(error, kPlugin);
  } catch (const std::exception& error) {
    return absl::InternalError(
        absl::StrCat(kPlugin, ": the forward pass failed: ", FirstLine(error.what())));
  }
}

absl::StatusOr<TapMap> TorchscriptBackbone::Run(const torch::Tensor& input,
                                                const std::vector<std::string>& taps) {
  // What the requested taps need: the forward output, the tap method's
  // tuple, and which methods.
  std::set<std::string> wanted(taps.begin(), taps.end());
  if (wanted.count(kPooledTap) > 0) wanted.insert(pooled_from_.empty() ? kOutputTap : pooled_from_);
  bool need_tuple = false;
  for (const std::string& tap : wanted) {
    auto found = taps_.find(tap);
    if (found != taps_.end() && found->second.submodule) need_tuple = true;
  }

  const torch::Tensor x =
      options_.channels_last() ? input.contiguous(torch::MemoryFormat::ChannelsLast) : input;
  torch::jit::Module& script = holder_->script();
  std::map<std::string, c10::IValue> values;
  if (need_tuple) {
    const c10::IValue result = script.get_method(tap_method_)({x});
    const auto& elements = result.toTupleRef().elements();
    values[kOutputTap] = elements[0];
    for (const auto& [name, source] : taps_) {
      if (source.submodule) values[name] = elements[source.index];
    }
  } else if (wanted.count(kOutputTap) > 0) {
    values[kOutputTap] = script.forward({x});
  }
  for (const std::string& tap : wanted) {
    auto found = taps_.find(tap);
    if (found != taps_.end() && !found->second.submodule) {
      values[tap] = script.get_method(found->second.method)({x});
    }
  }

  TapMap result;
  for (const std::string& tap : taps) {
    if (tap == kPooledTap) continue;
    torch::Tensor tensor = TensorOrUndefined(values.at(tap));
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(absl::StrCat(
          kPlugin, ": tap \"", tap, "\" is ", values.at(tap).tagKind(), ", not a tensor"));
    }
    result[tap] = tensor.contiguous();
  }
  if (wanted.count(kPooledTap) > 0) {
    const std::string source_name = pooled_from_.empty() ? kOutputTap : pooled_from_;
    const torch::Tensor source = TensorOrUndefined(values.at(source_name));
    if (!source.defined() || (source.dim() != 2 && source.dim() != 4)) {
      return absl::InvalidArgumentError(absl::StrCat(
          kPlugin, ": \"pooled\" averages tap \"", source_name,
          "\", which must be a [N, C, H, W] or [N, D] tensor, but it is ",
          source.defined() ? absl::StrCat("[", absl::StrJoin(source.sizes(), ", "), "]")
                           : values.at(source_name).tagKind()));
    }
    result[kPooledTap] = source.dim() == 4 ? source.mean({2, 3}) : source.contiguous();
  }
  return result;
}

std::vector<std::string> TorchscriptBackbone::stage_names() const {
  return holder_->StageNames();
}

absl::Status TorchscriptBackbone::SetTrainableFrom(const std::string& stage) {
  absl::Status status = holder_->SetTrainableFrom(stage);
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(kPlugin, ": ", status.message()));
}

absl::Status TorchscriptBackbone::SetBatchNormFrozen(bool frozen) {
  holder_->SetBatchNormFrozen(frozen);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backbone>> CreateTorchscriptBackbone(
    const google::protobuf::Any& options) {
  PANDA_ASSIGN_OR_RETURN(
      const TorchscriptBackboneOptions script_options,
      UnpackPluginOptions<TorchscriptBackboneOptions>(options, "torchscript"));
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<TorchscriptBackbone> backbone,
                         TorchscriptBackbone::Create(script_options));
  return std::unique_ptr<Backbone>(std::move(backbone));
}

PANDA_REGISTER_PLUGIN(BackboneRegistry, "torchscript", CreateTorchscriptBackbone);

}  // namespace panda
