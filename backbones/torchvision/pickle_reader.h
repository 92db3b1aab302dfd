// A reader for the subset of Python's pickle format that torch.save writes
// (protocols 2 to 4), without LibTorch and without running any Python code:
//
//   PANDA_ASSIGN_OR_RETURN(PickleValuePtr root, ParsePickle(bytes));
//
// Class references (GLOBAL) stay symbolic: calling one (REDUCE, NEWOBJ)
// yields a kCall value that records the callable and its arguments, and the
// caller decides what to make of it. The one exception is
// collections.OrderedDict called without arguments, which becomes an empty
// kDict so that the SETITEMS that follow fill it: this is how every
// state_dict() is pickled. BUILD on a dict (an OrderedDict's attributes such
// as `_metadata`) is dropped; on a call it is kept as `state`.
//
// Every read is bounds-checked, so truncated or corrupted input is an error,
// never a crash.
#ifndef PANDA_BACKBONES_TORCHVISION_PICKLE_READER_H_
#define PANDA_BACKBONES_TORCHVISION_PICKLE_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace panda::torchvision {

struct PickleValue;
using PickleValuePtr = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,  // str, as UTF-8
    kBytes,   // bytes
    kTuple,
    kList,
    kDict,
    kGlobal,        // a class or function reference: `module` and `name`
    kCall,          // items[0] called with the tuple items[1]; see `state`
    kPersistentId,  // items[0] is the id (torch.save: a storage tuple)
  };

  Kind kind = Kind::kNone;
  bool bool_value = false;
  int64_t int_value = 0;
  double float_value = 0;
  // Text of kString and kBytes.
  std::string string_value;
  // Module and name of kGlobal, for example "torch._utils" and
  // "_rebuild_tensor_v2".
  std::string module;
  std::string name;
  // Elements of kTuple and kList; callable and arguments of kCall; the id of
  // kPersistentId.
  std::vector<PickleValuePtr> items;
  // Entries of kDict in insertion order.
  std::vector<std::pair<PickleValuePtr, PickleValuePtr>> entries;
  // Argument of a BUILD applied to a kCall, or null.
  PickleValuePtr state;

  // The value of string key `key` in a kDict, or null.
  PickleValuePtr Find(absl::string_view key) const;
};

// Parses one pickle. Returns DataLoss, naming the byte offset, for truncated
// or malformed input and for opcodes outside the supported subset. Also
// DataLoss: a value that contains itself (such as a list appended to itself)
// and values nested more than 1000 levels deep.
absl::StatusOr<PickleValuePtr> ParsePickle(absl::string_view bytes);

// A short description for error messages: "a str", "a dict with 3 entries",
// "an object made by torchvision.models.resnet.ResNet", ...
std::string DescribePickleValue(const PickleValue& value);

}  // namespace panda::torchvision

#endif  // PANDA_BACKBONES_TORCHVISION_PICKLE_READER_H_
