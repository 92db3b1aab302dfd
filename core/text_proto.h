#ifndef PANDA_CORE_TEXT_PROTO_H_
#define PANDA_CORE_TEXT_PROTO_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace panda {

// Parses protobuf text format `text` into `message`. On failure the error
// is InvalidArgument and reads "<source>: invalid <what>: " followed by
// every parser message with its 1-based line and column, so that a typo in
// a config names the file, the place and the field.
absl::Status ParseTextProto(const std::string& text, const std::string& source,
                            const std::string& what,
                            google::protobuf::Message& message);

}  // namespace panda

#endif  // PANDA_CORE_TEXT_PROTO_H_
