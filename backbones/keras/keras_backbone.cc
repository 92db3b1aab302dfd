#include "backbones/keras/keras_backbone.h"

#include "core/fnv1a.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backbones/keras/keras_model_file.h"
#include "backbones/keras/keras_preprocess.h"
#include "backbones/keras/keras_shape_inference.h"
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"

namespace panda {
namespace {

using keras::GraphSpec;
using keras::LayerKind;

constexpr char kPooledTap[] = "pooled";
constexpr char kProbabilitiesTap[] = "probabilities";

// Tap names listed in an unknown-tap error, because the models have hundreds.
constexpr size_t kListedTapNames = 12;

// Index of the last AveragePooling2D layer, or -1.
int FindHeadPool(const GraphSpec& spec) {
  for (int i = static_cast<int>(spec.layers.size()) - 1; i >= 0; --i) {
    if (spec.layers[i].kind == LayerKind::kAveragePooling2D) return i;
  }
  return -1;
}

// Returns, for each layer, whether it is layer `target` or one that `target`
// depends on.
std::vector<bool> LayersNeededFor(const GraphSpec& spec, int target) {
  std::vector<bool> needed(spec.layers.size(), false);
  needed[target] = true;
  for (int i = target; i >= 0; --i) {
    if (!needed[i]) continue;
    for (int input : spec.layers[i].inputs) needed[input] = true;
  }
  return needed;
}

std::string DescribeShape(const torch::Tensor& tensor) {
  if (!tensor.defined()) return "an undefined tensor";
  return keras::ShapeToString(tensor.sizes().vec());
}

std::string ScalingName(KerasBackboneOptions::InputScaling scaling) {
  return scaling == KerasBackboneOptions::SYMMETRIC ? "symmetric" : "unit";
}

}  // namespace

absl::StatusOr<std::unique_ptr<KerasBackbone>> KerasBackbone::Create(
    const KerasBackboneOptions& options) {
  if (options.weights_file().empty()) {
    return absl::InvalidArgumentError(
        "keras backbone: weights_file is required: the path of a .pkm model "
        "made by tools/convert_tfjs_layers_model.js");
  }
  if (options.input_size() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("keras backbone: input_size must be 0 (the model's own "
                     "size) or positive, got ",
                     options.input_size()));
  }

  PANDA_ASSIGN_OR_RETURN(keras::ModelFile file,
                         keras::ReadModelFile(options.weights_file()));
  std::unique_ptr<KerasBackbone> backbone(new KerasBackbone());
  backbone->options_ = options;
  PANDA_ASSIGN_OR_RETURN(backbone->graph_, keras::KerasGraph::Create(file));
  const GraphSpec& spec = backbone->graph_->spec();

  if (spec.input_channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path, ": the model takes ", spec.input_channels,
        " input channels; the keras backbone feeds RGB images, so it needs 3"));
  }
  const int head_pool = FindHeadPool(spec);
  if (head_pool < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path, ": the model has no AveragePooling2D layer, so the "
                   "\"pooled\" feature (the global average of that layer's "
                   "input) is undefined"));
  }
  backbone->pooled_layer_ = spec.layers[head_pool].inputs[0];
  backbone->head_pool_ = head_pool;
  backbone->stages_ = keras::FindStages(spec, head_pool);
  backbone->feature_dim_ = spec.native_shapes[backbone->pooled_layer_][0];
  backbone->after_head_pool_.assign(spec.layers.size(), false);
  for (size_t i = head_pool; i < spec.layers.size(); ++i) {
    bool after = static_cast<int>(i) == head_pool;
    for (int input : spec.layers[i].inputs) {
      after = after || backbone->after_head_pool_[input];
    }
    backbone->after_head_pool_[i] = after;
  }

  backbone->input_height_ =
      options.input_size() == 0 ? spec.input_height : options.input_size();
  backbone->input_width_ =
      options.input_size() == 0 ? spec.input_width : options.input_size();
  const absl::StatusOr<std::vector<keras::Shape>> shapes = keras::InferShapes(
      spec, backbone->input_height_, backbone->input_width_,
      LayersNeededFor(spec, backbone->pooled_layer_));
  if (!shapes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("keras backbone: input_size ", options.input_size(),
                     " is too small for the network: ", shapes.status().message()));
  }

  // The header's model description joins the weight checksum, so a file
  // whose layer settings change with the same weights gets new features.
  const std::string architecture = file.model.SerializeAsString();
  backbone->fingerprint_ = absl::StrCat(
      "keras/", spec.name, "/fnv1a64=", absl::Hex(file.checksum, absl::kZeroPad16),
      "/architecture=",
      absl::Hex(Fnv1a64(architecture.data(), architecture.size()),
                absl::kZeroPad16),
      "/input=", backbone->input_height_, "x", backbone->input_width_,
      "/scaling=", ScalingName(options.input_scaling()));
  backbone->graph_->eval();

  int64_t parameter_count = 0;
  for (const torch::Tensor& parameter : backbone->graph_->parameters()) {
    parameter_count += parameter.numel();
  }
  PANDA_LOG(INFO) << "keras backbone: loaded " << spec.name << " from " << file.path
                  << ": " << spec.layers.size() << " layers, " << parameter_count
                  << " parameters, input " << backbone->input_height_ << "x"
                  << backbone->input_width_ << ", " << backbone->feature_dim_
                  << "-d pooled feature";
  return backbone;
}

torch::Tensor KerasBackbone::Preprocess(const torch::Tensor& images) const {
  return keras::PreprocessImages(images, input_height_, input_width_,
                                 options_.input_scaling());
}

std::vector<std::string> KerasBackbone::tap_names() const {
  std::vector<std::string> names = {kPooledTap, kProbabilitiesTap};
  for (const keras::LayerSpec& layer : graph_->spec().layers) {
    names.push_back(layer.name);
  }
  return names;
}

absl::StatusOr<std::vector<int>> KerasBackbone::ResolveTaps(
    const std::vector<std::string>& taps, const torch::Tensor& input) const {
  const GraphSpec& spec = graph_->spec();
  std::vector<int> layers;
  for (const std::string& tap : taps) {
    int layer = -1;
    if (tap == kPooledTap) {
      layer = pooled_layer_;
    } else if (tap == kProbabilitiesTap) {
      layer = static_cast<int>(spec.layers.size()) - 1;
    } else if (auto found = spec.layer_index.find(tap);
               found != spec.layer_index.end()) {
      layer = found->second;
    } else {
      std::vector<std::string> names = tap_names();
      const size_t total = names.size();
      names.resize(std::min(total, kListedTapNames));
      return absl::InvalidArgumentError(absl::StrCat(
          "keras backbone: unknown tap \"", tap, "\" for model ", spec.name,
          "; valid taps are ", absl::StrJoin(names, ", "), ", ... (", total,
          " in all: \"pooled\", \"probabilities\" and every layer name)"));
    }

    const bool native_size = input.defined() && input.dim() == 4 &&
                             input.size(2) == spec.input_height &&
                             input.size(3) == spec.input_width;
    if (after_head_pool_[layer] && tap != kPooledTap && !native_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "keras backbone: tap \"", tap, "\" runs the classification head of ",
          spec.name, ", which pools a fixed window and so is defined only for ",
          spec.input_height, "x", spec.input_width,
          " input, got ", DescribeShape(input),
          ". Use \"pooled\" for features at other sizes"));
    }
    layers.push_back(layer);
  }
  return layers;
}

absl::StatusOr<TapMap> KerasBackbone::Forward(
    const torch::Tensor& input, const std::vector<std::string>& taps) {
  PANDA_ASSIGN_OR_RETURN(const std::vector<int> layers, ResolveTaps(taps, input));
  PANDA_ASSIGN_OR_RETURN(std::vector<torch::Tensor> outputs,
                         graph_->Run(input, layers));

  TapMap result;
  for (size_t i = 0; i < taps.size(); ++i) {
    if (taps[i] == kPooledTap) {
      result[taps[i]] = outputs[i].mean({2, 3});
    } else {
      result[taps[i]] = outputs[i].contiguous();
    }
  }
  return result;
}

std::vector<std::string> KerasBackbone::stage_names() const {
  std::vector<std::string> names;
  for (const keras::Stage& stage : stages_) names.push_back(stage.name);
  return names;
}

absl::Status KerasBackbone::SetTrainableFrom(const std::string& stage) {
  auto found = std::find_if(stages_.begin(), stages_.end(),
                            [&](const keras::Stage& s) { return s.name == stage; });
  if (found == stages_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "keras backbone: no stage \"", stage, "\" in ", graph_->spec().name,
        "; its stages are ", absl::StrJoin(stage_names(), ", ")));
  }
  // The classification head stays frozen: it does not shape the features.
  for (int i = 0; i < static_cast<int>(graph_->spec().layers.size()); ++i) {
    const bool trainable = i >= found->first_layer && i < head_pool_;
    for (torch::Tensor& parameter : graph_->layer(i).parameters()) {
      parameter.set_requires_grad(trainable);
    }
  }
  return absl::OkStatus();
}

absl::Status KerasBackbone::SetBatchNormFrozen(bool frozen) {
  graph_->SetBatchNormFrozen(frozen);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backbone>> CreateKerasBackbone(
    const google::protobuf::Any& options) {
  PANDA_ASSIGN_OR_RETURN(
      const KerasBackboneOptions keras_options,
      UnpackPluginOptions<KerasBackboneOptions>(options, "keras"));
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<KerasBackbone> backbone,
                         KerasBackbone::Create(keras_options));
  return std::unique_ptr<Backbone>(std::move(backbone));
}

PANDA_REGISTER_PLUGIN(BackboneRegistry, "keras", CreateKerasBackbone);

}  // namespace panda
