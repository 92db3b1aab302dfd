// Reading pipeline configs (protobuf text format, config/pipeline.proto).
#ifndef PANDA_CORE_PIPELINE_CONFIG_H_
#define PANDA_CORE_PIPELINE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "config/pipeline.pb.h"

namespace panda {

// Parses `text` as a PipelineConfig. `source` names it in errors (a file
// path). Syntax errors, unknown fields and unknown option types are
// InvalidArgument with the line and column. A missing dataset, backbone or
// scorer, or an unregistered plugin name, is InvalidArgument naming the
// field.
// Prints `message` in text format on one line, with Any fields expanded:
// the form feature caches, checkpoints and Fisher files key on.
std::string SingleLineText(const google::protobuf::Message& message);

absl::StatusOr<PipelineConfig> ParsePipelineConfig(const std::string& text,
                                                   const std::string& source);

// Reads and parses the file at `path`; NotFound if it does not exist.
absl::StatusOr<PipelineConfig> LoadPipelineConfig(const std::string& path);

}  // namespace panda

#endif  // PANDA_CORE_PIPELINE_CONFIG_H_
