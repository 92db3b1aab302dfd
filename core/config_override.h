// Command-line overrides of pipeline config fields:
//
//   --set batch_size=32
//   --set subset.max_train_per_class=100
//   --set scorer.knn.k=5          (plugin options: family.plugin.field)
//   --set segmentation.segmenter.patch_core.coreset_fraction=0.01
//
// A path walks message fields by name. After a plugin field (dataset,
// backbone, adapter, scorer, segmentation.segmenter), the next segment is the plugin's registered
// name, which must match the config's, and the rest walks the plugin's
// options message, unpacked from its google.protobuf.Any. Repeated fields
// cannot be set this way.
#ifndef PANDA_CORE_CONFIG_OVERRIDE_H_
#define PANDA_CORE_CONFIG_OVERRIDE_H_

#include <string>

#include "absl/status/status.h"
#include "config/pipeline.pb.h"

namespace panda {

// Applies one `path=value` override to `config`. The value is written as in
// the text format ("5", "true", "AUTO", "\"text\"" or bare text for
// strings). Errors are InvalidArgument naming the path segment at fault and
// listing the fields that exist there.
absl::Status ApplyConfigOverride(const std::string& assignment,
                                 PipelineConfig& config);

}  // namespace panda

#endif  // PANDA_CORE_CONFIG_OVERRIDE_H_
