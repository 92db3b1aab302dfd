// Name-to-factory registries, one per plugin family.
//
// A plugin registers itself from its own .cc file, and its Bazel target is
// `alwayslink = 1` so the linker keeps the registration:
//
//   // scorers/knn_scorer.cc
//   PANDA_REGISTER_PLUGIN(ScorerRegistry, "knn", CreateKnnScorer);
//
// where CreateKnnScorer has the family's factory signature:
//
//   absl::StatusOr<std::unique_ptr<Scorer>> CreateKnnScorer(
//       const google::protobuf::Any& options);
//
// Registration happens during static initialisation; lookups happen after
// main() starts, so the registry needs no lock for reads. Registering two
// plugins under one name is a programming error and aborts at start-up with
// both names printed.
#ifndef PANDA_CORE_REGISTRY_H_
#define PANDA_CORE_REGISTRY_H_

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/any.pb.h"

namespace panda {

// Registry of factories for plugins of interface `T`. `family` names the
// family in error messages ("scorer", "backbone", ...).
template <typename T>
class Registry {
 public:
  using Factory = std::function<absl::StatusOr<std::unique_ptr<T>>(
      const google::protobuf::Any& options)>;

  explicit Registry(std::string family) : family_(std::move(family)) {}

  // Adds `factory` under `name`; aborts if the name is taken.
  void Register(const std::string& name, Factory factory) {
    if (!factories_.emplace(name, std::move(factory)).second) {
      std::fprintf(stderr, "panda: two %s plugins are registered as \"%s\"\n",
                   family_.c_str(), name.c_str());
      std::abort();
    }
  }

  // Creates the plugin registered as `name` from its options. Returns
  // NotFound, listing every registered name, for an unknown name.
  absl::StatusOr<std::unique_ptr<T>> Create(
      const std::string& name, const google::protobuf::Any& options) const {
    auto it = factories_.find(name);
    if (it == factories_.end()) {
      return absl::NotFoundError(absl::StrCat(
          "unknown ", family_, " plugin \"", name, "\"; registered ", family_,
          " plugins: ", absl::StrJoin(Names(), ", ")));
    }
    return it->second(options);
  }

  // Names of every registered plugin, sorted.
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& entry : factories_) names.push_back(entry.first);
    return names;
  }

  bool Contains(const std::string& name) const {
    return factories_.count(name) > 0;
  }

  const std::string& family() const { return family_; }

 private:
  std::string family_;
  std::map<std::string, Factory> factories_;
};

// Registers a factory when constructed; PANDA_REGISTER_PLUGIN makes one
// static instance per plugin.
template <typename T>
class PluginRegistration {
 public:
  PluginRegistration(Registry<T>& registry, const std::string& name,
                     typename Registry<T>::Factory factory) {
    registry.Register(name, std::move(factory));
  }
};

// `registry_getter` is a function returning the family's Registry<T>&, e.g.
// ScorerRegistry. `name` is the string configs use to select the plugin.
#define PANDA_REGISTER_PLUGIN(registry_getter, name, factory)         \
  static const auto PANDA_REGISTRY_CONCAT_(panda_registration_,       \
                                           __LINE__) =                \
      ::panda::MakePluginRegistration(registry_getter(), name, factory)

#define PANDA_REGISTRY_CONCAT_INNER_(x, y) x##y
#define PANDA_REGISTRY_CONCAT_(x, y) PANDA_REGISTRY_CONCAT_INNER_(x, y)

template <typename T, typename F>
PluginRegistration<T> MakePluginRegistration(Registry<T>& registry,
                                             const std::string& name,
                                             F factory) {
  return PluginRegistration<T>(registry, name,
                               typename Registry<T>::Factory(factory));
}

}  // namespace panda

#endif  // PANDA_CORE_REGISTRY_H_
