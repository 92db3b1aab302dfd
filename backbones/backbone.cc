#include "backbones/backbone.h"

namespace panda {

Registry<Backbone>& BackboneRegistry() {
  static auto* registry = new Registry<Backbone>("backbone");
  return *registry;
}

}  // namespace panda
