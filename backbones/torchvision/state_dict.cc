#include "backbones/torchvision/state_dict.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "torch/torch.h"

namespace panda::torchvision {
namespace {

// Entries listed per kind of mismatch; the rest are counted.
constexpr size_t kListedEntries = 5;

std::string ShapeString(const torch::Tensor& tensor) {
  return absl::StrCat("[", absl::StrJoin(tensor.sizes(), ", "), "]");
}

bool SameKindOfType(const torch::Tensor& a, const torch::Tensor& b) {
  const bool a_float = a.is_floating_point();
  const bool b_float = b.is_floating_point();
  const bool a_integral = c10::isIntegralType(a.scalar_type(), /*includeBool=*/false);
  const bool b_integral = c10::isIntegralType(b.scalar_type(), /*includeBool=*/false);
  return (a_float && b_float) || (a_integral && b_integral) || a.scalar_type() == b.scalar_type();
}

// "N <kind> (first, second, ...)" with at most kListedEntries names.
std::string ListEntries(const std::string& kind, const std::vector<std::string>& entries) {
  std::vector<std::string> listed(
      entries.begin(), entries.begin() + std::min(entries.size(), kListedEntries));
  return absl::StrCat(entries.size(), " ", kind, " (", absl::StrJoin(listed, ", "),
                      entries.size() > kListedEntries ? ", ..." : "", ")");
}

}  // namespace

absl::Status LoadStateDict(const std::vector<NamedTensor>& state, torch::nn::Module& module,
                           const std::string& source, const std::string& model) {
  std::map<std::string, torch::Tensor> targets;
  std::vector<std::string> target_order;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    targets.emplace(item.key(), item.value());
    target_order.push_back(item.key());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    targets.emplace(item.key(), item.value());
    target_order.push_back(item.key());
  }

  std::map<std::string, const torch::Tensor*> sources;
  std::vector<std::string> unexpected;
  std::vector<std::string> mismatched;
  for (const NamedTensor& entry : state) {
    sources[entry.name] = &entry.tensor;
    auto target = targets.find(entry.name);
    if (target == targets.end()) {
      unexpected.push_back(absl::StrCat(entry.name, " ", ShapeString(entry.tensor)));
    } else if (target->second.sizes() != entry.tensor.sizes() ||
               !SameKindOfType(target->second, entry.tensor)) {
      mismatched.push_back(absl::StrCat(
          entry.name, ": checkpoint ", ShapeString(entry.tensor), " ",
          c10::toString(entry.tensor.scalar_type()), ", model ", ShapeString(target->second),
          " ", c10::toString(target->second.scalar_type())));
    }
  }
  std::vector<std::string> missing;
  for (const std::string& name : target_order) {
    if (sources.count(name) == 0) {
      missing.push_back(absl::StrCat(name, " ", ShapeString(targets.at(name))));
    }
  }

  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::vector<std::string> problems;
    if (!missing.empty()) problems.push_back(ListEntries("missing", missing));
    if (!unexpected.empty()) problems.push_back(ListEntries("unexpected", unexpected));
    if (!mismatched.empty()) {
      problems.push_back(ListEntries("with another shape or type", mismatched));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": the checkpoint does not match ", model, ": ",
        absl::StrJoin(problems, "; "), ". Check that the configured architecture is the "
        "one the checkpoint was saved from"));
  }

  torch::NoGradGuard no_grad;
  for (const NamedTensor& entry : state) {
    targets.at(entry.name).copy_(entry.tensor);
  }
  return absl::OkStatus();
}

}  // namespace panda::torchvision
