#include "segmenters/segmenter.h"

namespace panda {

Registry<Segmenter>& SegmenterRegistry() {
  static auto* registry = new Registry<Segmenter>("segmenter");
  return *registry;
}

}  // namespace panda
