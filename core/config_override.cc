#include "core/config_override.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace panda {
namespace {

// Drops the parser's messages; the caller reports the value and field.
class TextErrorSink : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, int, const std::string&) override {}
  void AddWarning(int, int, const std::string&) override {}
};

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::string FieldNames(const Descriptor& descriptor) {
  std::vector<std::string> names;
  for (int i = 0; i < descriptor.field_count(); ++i) {
    names.push_back(descriptor.field(i)->name());
  }
  return absl::StrJoin(names, ", ");
}

// Sets the field that `path` names inside `message` to `value`.
absl::Status SetField(const std::vector<std::string>& path, size_t position,
                      const std::string& value, const std::string& assignment,
                      Message& message);

// Handles a PluginConfig: `path[position]` is the plugin name and the rest
// walks its options.
absl::Status SetPluginOption(const std::vector<std::string>& path,
                             size_t position, const std::string& value,
                             const std::string& assignment,
                             PluginConfig& plugin) {
  const std::string& name = path[position];
  if (name == "name" || name == "options") {
    return SetField(path, position, value, assignment, plugin);
  }
  if (name != plugin.name()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": \"", name, "\" is not the configured plugin \"",
        plugin.name(), "\"; write ", absl::StrJoin(path.begin(),
                                                   path.begin() + position, "."),
        ".", plugin.name(), ".<option>"));
  }
  if (position + 1 >= path.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": the path ends at the plugin; name an option"));
  }
  if (plugin.options().type_url().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": plugin \"", plugin.name(),
        "\" has no options block in the config, so its options type is "
        "unknown; add `options { [type.googleapis.com/...] {} }` first"));
  }

  const std::string type_name(
      absl::StripPrefix(plugin.options().type_url(), "type.googleapis.com/"));
  const Descriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
          type_name);
  if (descriptor == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": unknown options type ", type_name));
  }
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<Message> options(factory.GetPrototype(descriptor)->New());
  if (!options->ParseFromString(plugin.options().value())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": the options of plugin \"", plugin.name(),
        "\" could not be parsed as ", type_name));
  }
  PANDA_RETURN_IF_ERROR(
      SetField(path, position + 1, value, assignment, *options));
  plugin.mutable_options()->set_value(options->SerializeAsString());
  return absl::OkStatus();
}

absl::Status SetField(const std::vector<std::string>& path, size_t position,
                      const std::string& value, const std::string& assignment,
                      Message& message) {
  const Descriptor& descriptor = *message.GetDescriptor();
  const FieldDescriptor* field = descriptor.FindFieldByName(path[position]);
  if (field == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": ", descriptor.full_name(), " has no field \"",
        path[position], "\"; fields: ", FieldNames(descriptor)));
  }
  const bool last = position + 1 == path.size();

  if (field->is_repeated()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": \"", field->name(),
        "\" is a repeated field, which --set cannot change"));
  }
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (last) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--set ", assignment, ": \"", field->name(),
          "\" is a message; name one of its fields: ",
          FieldNames(*field->message_type())));
    }
    Message* child = message.GetReflection()->MutableMessage(&message, field);
    if (auto* plugin = dynamic_cast<PluginConfig*>(child)) {
      return SetPluginOption(path, position + 1, value, assignment, *plugin);
    }
    return SetField(path, position + 1, value, assignment, *child);
  }
  if (!last) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": \"", field->name(),
        "\" is not a message, so the path cannot go on after it"));
  }

  std::string text = value;
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
      !absl::StartsWith(value, "\"")) {
    text = absl::StrCat("\"", absl::CEscape(value), "\"");
  }
  // A parser with an error collector of its own keeps protobuf from
  // logging a second, raw message beside the one returned here.
  TextErrorSink ignored_errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&ignored_errors);
  if (!parser.ParseFieldValueFromString(text, field, &message)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": \"", value, "\" is not a valid value for ",
        field->full_name(), " (", field->type_name(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyConfigOverride(const std::string& assignment,
                                 PipelineConfig& config) {
  const size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", assignment, ": expected FIELD.PATH=VALUE, e.g. scorer.knn.k=5"));
  }
  const std::vector<std::string> path =
      absl::StrSplit(assignment.substr(0, equals), '.');
  for (const std::string& segment : path) {
    if (segment.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--set ", assignment, ": empty path segment"));
    }
  }
  return SetField(path, 0, assignment.substr(equals + 1), assignment, config);
}

}  // namespace panda
