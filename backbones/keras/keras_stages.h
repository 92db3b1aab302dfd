// Stages of a Keras graph: the runs of layers that adapters train or freeze
// as a unit, like layer1..layer4 of a ResNet.
//
// A stage ends where the network's resolution is about to drop. It begins
// right after a cut point, a layer whose output alone carries everything
// that later layers read, preferring a merge (Add or Concatenate), so that
// MobileNetV2's stages begin at "block_3_expand", "block_6_expand" and
// "block_13_expand" and InceptionV3's after "mixed2" and "mixed7". Layers
// from the head's pooling on belong to no stage.
#ifndef PANDA_BACKBONES_KERAS_KERAS_STAGES_H_
#define PANDA_BACKBONES_KERAS_KERAS_STAGES_H_

#include <string>
#include <vector>

#include "backbones/keras/keras_graph_spec.h"

namespace panda::keras {

struct Stage {
  // Name of the stage's first layer.
  std::string name;
  // Index into GraphSpec::layers of the stage's first layer.
  int first_layer = 0;
};

// Returns the stages of `spec` in input-to-output order, from shapes at the
// native input size. `head_pool` is the index of the head's pooling layer;
// layers from it on are left out. The first stage starts at layer 1, the
// layer after the input.
std::vector<Stage> FindStages(const GraphSpec& spec, int head_pool);

}  // namespace panda::keras

#endif  // PANDA_BACKBONES_KERAS_KERAS_STAGES_H_
