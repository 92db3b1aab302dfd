#include "backbones/keras/keras_stages.h"

#include <algorithm>

namespace panda::keras {
namespace {

// Height of a layer's output, or 0 for vectors and skipped layers.
int64_t Height(const GraphSpec& spec, int layer) {
  const Shape& shape = spec.native_shapes[layer];
  return shape.size() == 3 ? shape[1] : 0;
}

bool IsMerge(const LayerSpec& layer) {
  return layer.kind == LayerKind::kAdd || layer.kind == LayerKind::kConcatenate;
}

}  // namespace

std::vector<Stage> FindStages(const GraphSpec& spec, int head_pool) {
  const int end = std::min<int>(head_pool, static_cast<int>(spec.layers.size()));
  if (end < 2) return {};

  // Layer i is a cut point when no layer after it reads a layer before it:
  // the earliest input read by any layer after i must be i or later.
  std::vector<int> earliest_read_after(end, end);
  for (int i = end - 2; i >= 0; --i) {
    int earliest = earliest_read_after[i + 1];
    for (int input : spec.layers[i + 1].inputs) earliest = std::min(earliest, input);
    earliest_read_after[i] = earliest;
  }
  auto is_cut = [&](int i) { return earliest_read_after[i] >= i; };

  std::vector<Stage> stages = {{spec.layers[1].name, 1}};
  // The last cut point seen at the current resolution, and the last merge
  // among them; padding layers keep the resolution of their input.
  int last_cut = -1;
  int last_merge_cut = -1;
  int64_t height = Height(spec, 0);
  // The first stage keeps the stem's own downsampling.
  bool stage_has_drop = false;
  for (int i = 1; i < end; ++i) {
    const LayerSpec& layer = spec.layers[i];
    const int64_t layer_height = Height(spec, i);
    if (layer.kind != LayerKind::kZeroPadding2D && layer_height > 0 &&
        layer_height < height) {
      const int boundary = last_merge_cut >= 0 ? last_merge_cut : last_cut;
      if (stage_has_drop && boundary >= stages.back().first_layer) {
        stages.push_back({spec.layers[boundary + 1].name, boundary + 1});
      }
      stage_has_drop = true;
      height = layer_height;
      last_cut = last_merge_cut = -1;
    }
    if (is_cut(i) && i + 1 < end) {
      last_cut = i;
      if (IsMerge(layer)) last_merge_cut = i;
    }
  }
  return stages;
}

}  // namespace panda::keras
