// Unpacks a plugin's options message from the google.protobuf.Any that a
// pipeline config carries for it.
#ifndef PANDA_CORE_PLUGIN_OPTIONS_H_
#define PANDA_CORE_PLUGIN_OPTIONS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/any.pb.h"

namespace panda {

// Returns `options` unpacked as `OptionsT`. Empty options (none given in the
// config) yield `OptionsT` with its declared defaults. Options of another
// message type are InvalidArgument naming the plugin and both types.
template <typename OptionsT>
absl::StatusOr<OptionsT> UnpackPluginOptions(
    const google::protobuf::Any& options, const std::string& plugin) {
  OptionsT unpacked;
  if (options.type_url().empty() && options.value().empty()) return unpacked;

  if (!options.Is<OptionsT>()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plugin \"", plugin, "\" takes options of type ",
        OptionsT::descriptor()->full_name(), ", but the config gives ",
        options.type_url()));
  }
  if (!options.UnpackTo(&unpacked)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "options of plugin \"", plugin, "\" could not be parsed as ",
        OptionsT::descriptor()->full_name()));
  }
  return unpacked;
}

}  // namespace panda

#endif  // PANDA_CORE_PLUGIN_OPTIONS_H_
