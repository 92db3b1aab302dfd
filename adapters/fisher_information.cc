#include "adapters/fisher_information.h"

#include <filesystem>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/atomic_file.h"
#include "core/progress_bar.h"
#include "core/status_macros.h"
#include "torch/serialize.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr char kIdentityKey[] = "panda/fisher_identity";

std::map<std::string, torch::Tensor> TrainableParameters(Backbone& backbone) {
  std::map<std::string, torch::Tensor> parameters;
  for (const auto& item : backbone.module().named_parameters()) {
    if (item.value().requires_grad()) parameters[item.key()] = item.value();
  }
  return parameters;
}

}  // namespace

absl::StatusOr<FisherDiagonal> EstimateFisher(Backbone& backbone,
                                              const torch::Tensor& images,
                                              const FisherSettings& settings) {
  const std::map<std::string, torch::Tensor> parameters = TrainableParameters(backbone);
  if (parameters.empty()) {
    return absl::InvalidArgumentError("the Fisher needs trainable parameters; none require gradients");
  }
  FisherDiagonal fisher;
  for (const auto& [name, parameter] : parameters) fisher[name] = torch::zeros_like(parameter);

  backbone.module().to(settings.device);
  backbone.module().eval();
  torch::Generator generator =
      at::detail::createCPUGenerator(static_cast<uint64_t>(settings.seed));
  const int64_t count = images.size(0);
  ProgressBar progress("Fisher information", count, "images");
  for (int64_t i = 0; i < count; ++i) {
    const torch::Tensor input =
        backbone.Preprocess(images.slice(0, i, i + 1).to(settings.device));
    PANDA_ASSIGN_OR_RETURN(TapMap outputs, backbone.Forward(input, {settings.tap}));
    const torch::Tensor probabilities = outputs.at(settings.tap).reshape({-1});
    const torch::Tensor total = probabilities.detach().sum();
    if (!torch::isfinite(probabilities).all().item<bool>() ||
        (probabilities.detach() < 0).any().item<bool>() ||
        std::abs(total.item<double>() - 1.0) > 1e-3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Fisher information: tap \"", settings.tap, "\" of image ", i,
          " is not a probability distribution (sum ", total.item<double>(),
          "); name the tap with the softmax output of the pretraining head"));
    }
    const torch::Tensor label = torch::multinomial(
        probabilities.detach().to(torch::kCPU, torch::kDouble), 1, false, generator);
    const torch::Tensor log_likelihood =
        torch::log(probabilities[label.item<int64_t>()].clamp_min(1e-12));

    backbone.module().zero_grad();
    log_likelihood.backward();
    for (auto& [name, parameter] : parameters) {
      if (parameter.grad().defined()) fisher[name].add_(parameter.grad().pow(2));
    }
    progress.Advance(1);
  }
  backbone.module().zero_grad();
  for (auto& [name, values] : fisher) values.div_(static_cast<double>(count));
  return fisher;
}

absl::Status SaveFisher(const std::string& path, const std::string& identity,
                        const FisherDiagonal& fisher) {
  torch::serialize::OutputArchive archive;
  archive.write(kIdentityKey, c10::IValue(identity));
  for (const auto& [name, values] : fisher) {
    archive.write(absl::StrCat("fisher/", name), values.to(torch::kCPU));
  }
  std::ostringstream bytes;
  archive.save_to(bytes);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code error;
    std::filesystem::create_directories(parent, error);
  }
  return WriteFileAtomically(path, bytes.str());
}

absl::StatusOr<FisherDiagonal> LoadFisher(const std::string& path,
                                          const std::string& identity,
                                          Backbone& backbone) {
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("no Fisher file at ", path));
  }
  FisherDiagonal fisher;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, torch::kCPU);
    c10::IValue stored_identity;
    archive.read(kIdentityKey, stored_identity);
    if (!stored_identity.isString() || stored_identity.toStringRef().rfind(identity, 0) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "Fisher file ", path, " was computed for ",
          stored_identity.isString() ? stored_identity.toStringRef() : "an unknown setup",
          ", not for ", identity, "; delete it or name another fisher_file"));
    }
    for (const auto& [name, parameter] : TrainableParameters(backbone)) {
      torch::Tensor values;
      if (!archive.try_read(absl::StrCat("fisher/", name), values)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "Fisher file ", path, " has no entry for trainable parameter ", name));
      }
      if (values.sizes() != parameter.sizes()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "Fisher file ", path, ": entry ", name, " has shape ", c10::str(values.sizes()), " but the parameter is ", c10::str(parameter.sizes())));
      }
      if (!torch::isfinite(values).all().item<bool>() || (values < 0).any().item<bool>()) {
        return absl::DataLossError(absl::StrCat(
            "Fisher file ", path, ": entry ", name, " contains negative or non-finite values"));
      }
      fisher[name] = values;
    }
  } catch (const c10::Error& error) {
    return absl::DataLossError(absl::StrCat("cannot read Fisher file ", path, ": ",
                                            error.what_without_backtrace()));
  }
  return fisher;
}

}  // namespace panda
