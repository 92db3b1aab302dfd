#include "backbones/keras/keras_graph.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "backbones/keras/keras_shape_inference.h"
#include "c10/util/Exception.h"

namespace panda::keras {

absl::StatusOr<std::shared_ptr<KerasGraph>> KerasGraph::Create(
    const ModelFile& file) {
  absl::StatusOr<GraphSpec> spec = BuildGraphSpec(file);
  if (!spec.ok()) return spec.status();

  // make_shared cannot reach the private constructor.
  std::shared_ptr<KerasGraph> graph(new KerasGraph(*std::move(spec)));
  std::map<std::string, std::string> module_names;
  for (const LayerSpec& layer : graph->spec_.layers) {
    // LibTorch separates submodule names with '.', so a '.' in a Keras name
    // would break parameter names.
    std::string module_name = absl::StrReplaceAll(layer.name, {{".", "_"}});
    auto [existing, inserted] = module_names.emplace(module_name, layer.name);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path, ": layers '", existing->second, "' and '", layer.name,
          "' both map to the module name '", module_name, "'"));
    }
    graph->layers_.push_back(graph->register_module(
        module_name, std::make_shared<KerasLayer>(layer, file)));
  }
  graph->SetChannelsLast(graph->channels_last_);
  return graph;
}

void KerasGraph::SetChannelsLast(bool channels_last) {
  channels_last_ = channels_last;
  for (const auto& layer : layers_) layer->SetKernelMemoryFormat(channels_last);
}

void KerasGraph::SetBatchNormFrozen(bool frozen) {
  for (const auto& layer : layers_) layer->SetBatchNormFrozen(frozen);
}

absl::Status KerasGraph::CheckInput(const torch::Tensor& input) const {
  if (!input.defined() || input.dim() != 4 ||
      input.size(1) != spec_.input_channels ||
      input.scalar_type() != torch::kFloat) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec_.path, ": network input must be float32 [N, ", spec_.input_channels,
        ", H, W], got ",
        input.defined() ? absl::StrCat(input.toString(), " ",
                                       ShapeToString(input.sizes().vec()))
                        : "an undefined tensor"));
  }
  for (const auto& parameter : parameters()) {
    if (parameter.device() != input.device()) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec_.path, ": network input is on ", input.device().str(),
          " but the network is on ", parameter.device().str(),
          "; move one of them with .to()"));
    }
    break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<torch::Tensor>> KerasGraph::Run(
    const torch::Tensor& input, const std::vector<int>& outputs) {
  absl::Status status = CheckInput(input);
  if (!status.ok()) return status;

  const int layer_count = static_cast<int>(layers_.size());
  std::vector<bool> needed(layer_count, false);
  std::vector<bool> is_output(layer_count, false);
  int last = -1;
  for (int output : outputs) {
    if (output < 0 || output >= layer_count) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec_.path, ": output layer index ", output,
                       " is out of range [0, ", layer_count, ")"));
    }
    needed[output] = true;
    is_output[output] = true;
    last = std::max(last, output);
  }
  // Inputs come before the layers that read them, so one backward sweep
  // marks every layer the outputs depend on.
  for (int i = last; i >= 0; --i) {
    if (!needed[i]) continue;
    for (int input_index : spec_.layers[i].inputs) needed[input_index] = true;
  }

  const absl::StatusOr<std::vector<Shape>> shapes =
      InferShapes(spec_, input.size(2), input.size(3), needed);
  if (!shapes.ok()) return shapes.status();

  // Drop each intermediate result after its last reader, to bound memory.
  std::vector<int> last_reader(layer_count, -1);
  for (int i = 0; i <= last; ++i) {
    if (!needed[i]) continue;
    for (int input_index : spec_.layers[i].inputs) last_reader[input_index] = i;
  }

  std::vector<torch::Tensor> values(layer_count);
  std::vector<torch::Tensor> layer_inputs;
  for (int i = 0; i <= last; ++i) {
    if (!needed[i]) continue;
    const LayerSpec& layer = spec_.layers[i];
    layer_inputs.clear();
    if (layer.kind == LayerKind::kInputLayer) {
      layer_inputs.push_back(input.contiguous(
          channels_last_ ? torch::MemoryFormat::ChannelsLast
                         : torch::MemoryFormat::Contiguous));
    }
    for (int input_index : layer.inputs) layer_inputs.push_back(values[input_index]);

    try {
      values[i] = layers_[i]->Forward(layer_inputs);
    } catch (const c10::OutOfMemoryError& error) {
      return absl::ResourceExhaustedError(
          absl::StrCat(spec_.path, ": out of memory in layer '", layer.name,
                       "': ", error.what_without_backtrace()));
    } catch (const c10::Error& error) {
      return absl::InternalError(
          absl::StrCat(spec_.path, ": layer '", layer.name, "' (",
                       layer.class_name, ") failed: ",
                       error.what_without_backtrace()));
    }

    // Shape inference accepted this input size, so a mismatch here is a bug
    // in a layer rule. The check keeps such a bug from passing as a feature.
    const Shape& expected = (*shapes)[i];
    if (values[i].dim() != static_cast<int64_t>(expected.size()) + 1 ||
        !std::equal(expected.begin(), expected.end(), values[i].sizes().begin() + 1)) {
      return absl::InternalError(absl::StrCat(
          spec_.path, ": layer '", layer.name, "' (", layer.class_name,
          ") produced shape ", ShapeToString(values[i].sizes().vec()),
          " but shape inference expected [N, ", absl::StrJoin(expected, ", "),
          "]"));
    }

    for (int input_index : layer.inputs) {
      if (last_reader[input_index] == i && !is_output[input_index]) {
        values[input_index] = torch::Tensor();
      }
    }
  }

  std::vector<torch::Tensor> results;
  results.reserve(outputs.size());
  for (int output : outputs) results.push_back(values[output]);
  return results;
}

}  // namespace panda::keras
