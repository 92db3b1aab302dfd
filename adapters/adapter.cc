#include "adapters/adapter.h"

namespace panda {

Registry<Adapter>& AdapterRegistry() {
  static auto* registry = new Registry<Adapter>("adapter");
  return *registry;
}

}  // namespace panda
