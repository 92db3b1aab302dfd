// A converted Keras layers model as one LibTorch module:
//
//   PANDA_ASSIGN_OR_RETURN(keras::ModelFile file, keras::ReadModelFile(path));
//   PANDA_ASSIGN_OR_RETURN(std::shared_ptr<keras::KerasGraph> graph,
//                          keras::KerasGraph::Create(file));
//   graph->eval();
//   const int out_relu = graph->spec().layer_index.at("out_relu");
//   PANDA_ASSIGN_OR_RETURN(std::vector<torch::Tensor> outputs,
//                          graph->Run(input, {out_relu}));
//
// Every layer is a submodule named after its Keras layer ('.' becomes '_'),
// so parameters read "Conv1.kernel" or "bn_Conv1.gamma" and an adapter can
// select them by layer name or freeze BatchNormalization layers.
#ifndef PANDA_BACKBONES_KERAS_KERAS_GRAPH_H_
#define PANDA_BACKBONES_KERAS_KERAS_GRAPH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/keras/keras_graph_spec.h"
#include "backbones/keras/keras_layer.h"
#include "backbones/keras/keras_model_file.h"
#include "torch/nn/module.h"
#include "torch/types.h"

namespace panda::keras {

class KerasGraph : public torch::nn::Module {
 public:
  // Builds the network in `file` on the CPU, in training mode as every new
  // LibTorch module is: call eval() for inference. Errors are those of
  // BuildGraphSpec, and InvalidArgument for two layer names that differ only
  // in '.' versus '_'.
  static absl::StatusOr<std::shared_ptr<KerasGraph>> Create(const ModelFile& file);

  const GraphSpec& spec() const { return spec_; }

  // The module of layer `index` (an index into spec().layers).
  KerasLayer& layer(int index) { return *layers_[index]; }

  // Runs the network on `input`, float32 [N, C, H, W] with C =
  // spec().input_channels, on the device of the parameters, and returns the
  // outputs of the layers `outputs` (indices into spec().layers) in that
  // order. Only the layers these outputs depend on run. Returns
  // InvalidArgument for a wrong input, a device mismatch or a layer that
  // cannot run at this input size, ResourceExhausted when LibTorch runs out
  // of memory and Internal for any other LibTorch error, naming the layer.
  // Outputs may be in channels-last memory format.
  absl::StatusOr<std::vector<torch::Tensor>> Run(const torch::Tensor& input,
                                                 const std::vector<int>& outputs);

  // Chooses whether Run computes in channels-last memory format (the
  // default), which is faster for convolutions on CPU. Results agree up to
  // float rounding.
  void SetChannelsLast(bool channels_last);

  // Keeps every BatchNormalization layer on its moving statistics in
  // training mode too.
  void SetBatchNormFrozen(bool frozen);
  bool channels_last() const { return channels_last_; }

 private:
  explicit KerasGraph(GraphSpec spec) : spec_(std::move(spec)) {}

  absl::Status CheckInput(const torch::Tensor& input) const;

  GraphSpec spec_;
  std::vector<std::shared_ptr<KerasLayer>> layers_;
  bool channels_last_ = true;
};

}  // namespace panda::keras

#endif  // PANDA_BACKBONES_KERAS_KERAS_GRAPH_H_
