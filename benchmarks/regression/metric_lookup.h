// Metrics looked up by field name through protobuf reflection, so that a
// field added to RunResult can be checked by a benchmark matrix without a
// code change:
//
//   PANDA_RETURN_IF_ERROR(
//       ValidateMetricName(*RunResult::descriptor(), "mean_roc_auc"));
//   PANDA_ASSIGN_OR_RETURN(double auc, MetricValue(result, "mean_roc_auc"));
#ifndef PANDA_BENCHMARKS_REGRESSION_METRIC_LOOKUP_H_
#define PANDA_BENCHMARKS_REGRESSION_METRIC_LOOKUP_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace panda {

// Names of the fields of `descriptor` that a check may name, in field
// order: singular double or float fields whose names do not end in
// "seconds". Absolute times are left out because they differ from machine
// to machine.
std::vector<std::string> CheckableMetricNames(
    const google::protobuf::Descriptor& descriptor);

// Returns OK when `name` is one of CheckableMetricNames(descriptor), and
// otherwise InvalidArgument saying why and listing the names allowed.
absl::Status ValidateMetricName(const google::protobuf::Descriptor& descriptor,
                                const std::string& name);

// Returns field `name` of `message`. InvalidArgument when the name fails
// ValidateMetricName, NotFound when the field is unset.
absl::StatusOr<double> MetricValue(const google::protobuf::Message& message,
                                   const std::string& name);

}  // namespace panda

#endif  // PANDA_BENCHMARKS_REGRESSION_METRIC_LOOKUP_H_
