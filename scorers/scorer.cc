#include "scorers/scorer.h"

namespace panda {

Registry<Scorer>& ScorerRegistry() {
  static auto* registry = new Registry<Scorer>("scorer");
  return *registry;
}

}  // namespace panda
