#include "benchmarks/regression/metric_lookup.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace panda {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

bool IsFloatingPoint(const FieldDescriptor& field) {
  return field.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE ||
         field.cpp_type() == FieldDescriptor::CPPTYPE_FLOAT;
}

// Spreads such as "mean_roc_auc_std" are better when lower, and a check
// flags only values below the expected one.
bool IsSpread(const FieldDescriptor& field) {
  return absl::EndsWith(field.name(), "_std");
}

bool IsCheckable(const FieldDescriptor& field) {
  return !field.is_repeated() && IsFloatingPoint(field) &&
         !absl::EndsWith(field.name(), "seconds") && !IsSpread(field);
}

}  // namespace

std::vector<std::string> CheckableMetricNames(const Descriptor& descriptor) {
  std::vector<std::string> names;
  for (int i = 0; i < descriptor.field_count(); ++i) {
    if (IsCheckable(*descriptor.field(i))) {
      names.push_back(descriptor.field(i)->name());
    }
  }
  return names;
}

absl::Status ValidateMetricName(const Descriptor& descriptor,
                                const std::string& name) {
  const FieldDescriptor* field = descriptor.FindFieldByName(name);
  const std::string allowed =
      absl::StrCat("; metrics of ", descriptor.name(), ": ",
                   absl::StrJoin(CheckableMetricNames(descriptor), ", "));
  if (field == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown metric \"", name, "\": ", descriptor.name(),
                     " has no such field", allowed));
  }
  if (absl::EndsWith(name, "seconds") && IsFloatingPoint(*field)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric \"", name,
        "\" is an absolute time, which differs from "
        "machine to machine and is reported but never checked; speed entries "
        "check relative speeds",
        allowed));
  }
  if (IsSpread(*field) && IsFloatingPoint(*field)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric \"", name,
        "\" is a spread across seeds, better when lower, but checks "
        "flag only values below the expected one",
        allowed));
  }
  if (!IsCheckable(*field)) {
    return absl::InvalidArgumentError(
        absl::StrCat("field \"", name, "\" of ", descriptor.name(),
                     " is not a metric (a single double or float)", allowed));
  }
  return absl::OkStatus();
}

absl::StatusOr<double> MetricValue(const google::protobuf::Message& message,
                                   const std::string& name) {
  const Descriptor& descriptor = *message.GetDescriptor();
  const absl::Status valid = ValidateMetricName(descriptor, name);
  if (!valid.ok()) return valid;

  const FieldDescriptor* field = descriptor.FindFieldByName(name);
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  if (!reflection.HasField(message, field)) {
    return absl::NotFoundError(
        absl::StrCat("the ", descriptor.name(), " has no value for metric \"",
                     name, "\"; this entry does not compute it"));
  }
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
    return static_cast<double>(reflection.GetFloat(message, field));
  }
  return reflection.GetDouble(message, field);
}

}  // namespace panda
