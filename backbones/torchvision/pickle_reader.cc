#include "backbones/torchvision/pickle_reader.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace panda::torchvision {
namespace {

using Kind = PickleValue::Kind;

// Opcodes of pickle protocols 2 to 4 (Python's Lib/pickletools.py lists
// them all); only the ones torch.save can emit are handled.
enum Opcode : uint8_t {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kBinFloat = 'G',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNoneOp = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

// Maximum nesting depth of values: a list in a list in a list has depth 2.
// torch.save's state dicts nest a few levels. Destroying a value recurses
// once per level, so the bound keeps that recursion far from the end of the
// stack.
constexpr int kMaxDepth = 1000;

// The values that `value` refers to, in a fixed order: items, then the key
// and value of each entry, then state.
size_t ChildCount(const PickleValue& value) {
  return value.items.size() + 2 * value.entries.size() +
         (value.state != nullptr ? 1 : 0);
}

const PickleValue* Child(const PickleValue& value, size_t index) {
  if (index < value.items.size()) return value.items[index].get();
  index -= value.items.size();
  if (index < 2 * value.entries.size()) {
    const auto& entry = value.entries[index / 2];
    return (index % 2 == 0 ? entry.first : entry.second).get();
  }
  return value.state.get();
}

class PickleMachine {
 public:
  explicit PickleMachine(absl::string_view bytes) : bytes_(bytes) {}

  // Unless Run() succeeded, unlinks every value made, so that values which
  // contain themselves are freed too and nested values are freed one at a
  // time instead of recursively.
  ~PickleMachine() {
    if (succeeded_) return;
    for (const PickleValuePtr& value : made_) {
      value->items.clear();
      value->entries.clear();
      value->state.reset();
    }
  }

  absl::StatusOr<PickleValuePtr> Run() {
    while (true) {
      opcode_offset_ = position_;
      uint8_t opcode = 0;
      PANDA_RETURN_IF_ERROR(ReadLittleEndian(1, &opcode));
      if (opcode == kStop) {
        if (stack_.empty()) return Error("STOP with an empty stack");
        PANDA_RETURN_IF_ERROR(CheckStructure());
        succeeded_ = true;
        return stack_.back();
      }
      PANDA_RETURN_IF_ERROR(Step(opcode));
    }
  }

 private:
  PickleValuePtr MakeValue(Kind kind) {
    auto value = std::make_shared<PickleValue>();
    value->kind = kind;
    made_.push_back(value);
    return value;
  }

  // Returns DataLoss if a value contains itself, directly or through others
  // (APPEND, SETITEM and BUILD with memoized values can link a container
  // into itself), or if values nest deeper than kMaxDepth. One depth-first
  // walk over every value made, so values dropped from the stack count too.
  absl::Status CheckStructure() const {
    const auto too_deep = [] {
      return absl::DataLossError(absl::StrCat(
          "pickle: values nest more than ", kMaxDepth, " levels deep"));
    };
    // Depth of each value whose walk has finished; -1 while it is on `path`.
    std::unordered_map<const PickleValue*, int> depth;
    struct Step {
      const PickleValue* value;
      size_t next_child;
      int depth;
    };
    std::vector<Step> path;
    for (const PickleValuePtr& start : made_) {
      if (!depth.emplace(start.get(), -1).second) continue;
      path.push_back({start.get(), 0, 0});
      while (!path.empty()) {
        Step& step = path.back();
        if (step.next_child == ChildCount(*step.value)) {
          const int finished = step.depth;
          depth[step.value] = finished;
          path.pop_back();
          if (path.empty()) continue;
          path.back().depth = std::max(path.back().depth, finished + 1);
          if (path.back().depth > kMaxDepth) return too_deep();
          continue;
        }

        const PickleValue* child = Child(*step.value, step.next_child++);
        const auto [found, inserted] = depth.emplace(child, -1);
        if (inserted) {
          // The values on `path` nest path.size() levels deep above `child`.
          if (path.size() > static_cast<size_t>(kMaxDepth)) return too_deep();
          path.push_back({child, 0, 0});
          continue;
        }
        if (found->second < 0) {
          return absl::DataLossError(absl::StrCat(
              "pickle: ", DescribePickleValue(*child),
              " contains itself; torch.save does not write reference cycles"));
        }
        step.depth = std::max(step.depth, found->second + 1);
        if (step.depth > kMaxDepth) return too_deep();
      }
    }
    return absl::OkStatus();
  }

  absl::Status Error(absl::string_view problem) const {
    return absl::DataLossError(
        absl::StrCat("pickle: ", problem, " at byte ", opcode_offset_));
  }

  template <typename T>
  absl::Status ReadLittleEndian(size_t size, T* out) {
    if (bytes_.size() - position_ < size) return Error("unexpected end of data");
    uint64_t value = 0;
    for (size_t i = 0; i < size; ++i) {
      value |= static_cast<uint64_t>(static_cast<uint8_t>(bytes_[position_ + i])) << (8 * i);
    }
    position_ += size;
    *out = static_cast<T>(value);
    return absl::OkStatus();
  }

  absl::Status ReadBytes(uint64_t size, std::string* out) {
    if (bytes_.size() - position_ < size) return Error("unexpected end of data");
    out->assign(bytes_.data() + position_, size);
    position_ += size;
    return absl::OkStatus();
  }

  absl::Status ReadLine(std::string* out) {
    const size_t end = bytes_.find('\n', position_);
    if (end == absl::string_view::npos) return Error("unterminated GLOBAL name");
    out->assign(bytes_.data() + position_, end - position_);
    position_ = end + 1;
    return absl::OkStatus();
  }

  absl::StatusOr<PickleValuePtr> Pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
      return Error("stack underflow");
    }
    PickleValuePtr value = std::move(stack_.back());
    stack_.pop_back();
    return value;
  }

  // Removes and returns the values above the topmost MARK.
  absl::StatusOr<std::vector<PickleValuePtr>> PopToMark() {
    if (marks_.empty()) return Error("no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleValuePtr> values(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return values;
  }

  absl::Status PushString(Kind kind, uint64_t size) {
    PickleValuePtr value = MakeValue(kind);
    PANDA_RETURN_IF_ERROR(ReadBytes(size, &value->string_value));
    stack_.push_back(std::move(value));
    return absl::OkStatus();
  }

  absl::Status PushInt(int64_t number) {
    PickleValuePtr value = MakeValue(Kind::kInt);
    value->int_value = number;
    stack_.push_back(std::move(value));
    return absl::OkStatus();
  }

  // LONG1 / LONG4: little-endian two's complement of `size` bytes.
  absl::Status PushLong(uint64_t size) {
    if (size > 8) return Error(absl::StrCat("integer of ", size, " bytes is too large"));
    uint64_t raw = 0;
    PANDA_RETURN_IF_ERROR(ReadLittleEndian(size, &raw));
    if (size > 0 && size < 8 && (raw >> (8 * size - 1)) & 1) {
      raw |= ~uint64_t{0} << (8 * size);  // Sign-extend.
    }
    int64_t number;
    std::memcpy(&number, &raw, sizeof(number));
    return PushInt(number);
  }

  absl::Status PushTuple(std::vector<PickleValuePtr> items) {
    PickleValuePtr tuple = MakeValue(Kind::kTuple);
    tuple->items = std::move(items);
    stack_.push_back(std::move(tuple));
    return absl::OkStatus();
  }

  absl::Status PushTupleOf(int count) {
    std::vector<PickleValuePtr> items(count);
    for (int i = count - 1; i >= 0; --i) {
      PANDA_ASSIGN_OR_RETURN(items[i], Pop());
    }
    return PushTuple(std::move(items));
  }

  absl::Status Memoize(uint64_t index) {
    if (stack_.empty()) return Error("memoizing with an empty stack");
    memo_[index] = stack_.back();
    return absl::OkStatus();
  }

  absl::Status RecallMemo(uint64_t index) {
    auto found = memo_.find(index);
    if (found == memo_.end()) return Error(absl::StrCat("memo entry ", index, " is not set"));
    stack_.push_back(found->second);
    return absl::OkStatus();
  }

  absl::Status SetItems(std::vector<PickleValuePtr> keys_and_values) {
    if (keys_and_values.size() % 2 != 0) return Error("odd number of dict keys and values");
    if (stack_.empty()) return Error("SETITEMS with an empty stack");
    PickleValue& dict = *stack_.back();
    if (dict.kind != Kind::kDict) {
      return Error(absl::StrCat("SETITEMS on ", DescribePickleValue(dict)));
    }
    for (size_t i = 0; i < keys_and_values.size(); i += 2) {
      PickleValuePtr& key = keys_and_values[i];
      PickleValuePtr& value = keys_and_values[i + 1];
      bool replaced = false;
      if (key->kind == Kind::kString) {
        for (auto& entry : dict.entries) {
          if (entry.first->kind == Kind::kString &&
              entry.first->string_value == key->string_value) {
            entry.second = value;
            replaced = true;
            break;
          }
        }
      }
      if (!replaced) dict.entries.emplace_back(std::move(key), std::move(value));
    }
    return absl::OkStatus();
  }

  absl::Status Append(std::vector<PickleValuePtr> items) {
    if (stack_.empty()) return Error("APPENDS with an empty stack");
    PickleValue& list = *stack_.back();
    if (list.kind != Kind::kList) {
      return Error(absl::StrCat("APPEND to ", DescribePickleValue(list)));
    }
    for (PickleValuePtr& item : items) list.items.push_back(std::move(item));
    return absl::OkStatus();
  }

  absl::Status PushGlobal(std::string module, std::string name) {
    PickleValuePtr global = MakeValue(Kind::kGlobal);
    global->module = std::move(module);
    global->name = std::move(name);
    stack_.push_back(std::move(global));
    return absl::OkStatus();
  }

  absl::Status Call(bool new_object) {
    PANDA_ASSIGN_OR_RETURN(PickleValuePtr arguments, Pop());
    PANDA_ASSIGN_OR_RETURN(PickleValuePtr callable, Pop());
    if (arguments->kind != Kind::kTuple) {
      return Error(absl::StrCat("call arguments are ", DescribePickleValue(*arguments),
                                ", not a tuple"));
    }
    if (!new_object && callable->kind == Kind::kGlobal && callable->module == "collections" &&
        callable->name == "OrderedDict" && arguments->items.empty()) {
      stack_.push_back(MakeValue(Kind::kDict));
      return absl::OkStatus();
    }
    PickleValuePtr call = MakeValue(Kind::kCall);
    call->items = {std::move(callable), std::move(arguments)};
    stack_.push_back(std::move(call));
    return absl::OkStatus();
  }

  absl::Status Build() {
    PANDA_ASSIGN_OR_RETURN(PickleValuePtr state, Pop());
    if (stack_.empty()) return Error("BUILD with an empty stack");
    PickleValue& target = *stack_.back();
    if (target.kind == Kind::kDict) return absl::OkStatus();
    if (target.kind != Kind::kCall) {
      return Error(absl::StrCat("BUILD on ", DescribePickleValue(target)));
    }
    target.state = std::move(state);
    return absl::OkStatus();
  }

  absl::Status Step(uint8_t opcode) {
    switch (opcode) {
      case kProto: {
        uint8_t protocol = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(1, &protocol));
        if (protocol < 2 || protocol > 5) {
          return Error(absl::StrCat("unsupported pickle protocol ", protocol));
        }
        return absl::OkStatus();
      }
      case kFrame: {
        uint64_t frame_size = 0;
        return ReadLittleEndian(8, &frame_size);
      }
      case kMark:
        marks_.push_back(stack_.size());
        return absl::OkStatus();
      case kPop:
        return Pop().status();
      case kPopMark:
        return PopToMark().status();
      case kDup:
        if (stack_.empty()) return Error("DUP with an empty stack");
        stack_.push_back(stack_.back());
        return absl::OkStatus();

      case kNoneOp:
        stack_.push_back(MakeValue(Kind::kNone));
        return absl::OkStatus();
      case kNewTrue:
      case kNewFalse: {
        PickleValuePtr value = MakeValue(Kind::kBool);
        value->bool_value = opcode == kNewTrue;
        stack_.push_back(std::move(value));
        return absl::OkStatus();
      }
      case kBinInt: {
        uint32_t raw = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(4, &raw));
        return PushInt(static_cast<int32_t>(raw));
      }
      case kBinInt1: {
        uint8_t raw = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(1, &raw));
        return PushInt(raw);
      }
      case kBinInt2: {
        uint16_t raw = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(2, &raw));
        return PushInt(raw);
      }
      case kLong1: {
        uint8_t size = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(1, &size));
        return PushLong(size);
      }
      case kLong4: {
        uint32_t size = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(4, &size));
        return PushLong(size);
      }
      case kBinFloat: {
        if (bytes_.size() - position_ < 8) return Error("unexpected end of data");
        uint64_t raw = 0;
        for (int i = 0; i < 8; ++i) {
          raw = (raw << 8) | static_cast<uint8_t>(bytes_[position_ + i]);  // Big-endian.
        }
        position_ += 8;
        PickleValuePtr value = MakeValue(Kind::kFloat);
        std::memcpy(&value->float_value, &raw, sizeof(raw));
        stack_.push_back(std::move(value));
        return absl::OkStatus();
      }

      case kShortBinUnicode:
      case kShortBinString:
      case kShortBinBytes: {
        uint8_t size = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(1, &size));
        return PushString(opcode == kShortBinBytes ? Kind::kBytes : Kind::kString, size);
      }
      case kBinUnicode:
      case kBinString:
      case kBinBytes: {
        uint32_t size = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(4, &size));
        if (opcode == kBinString && static_cast<int32_t>(size) < 0) {
          return Error("negative string length");
        }
        return PushString(opcode == kBinBytes ? Kind::kBytes : Kind::kString, size);
      }
      case kBinUnicode8:
      case kBinBytes8: {
        uint64_t size = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(8, &size));
        return PushString(opcode == kBinBytes8 ? Kind::kBytes : Kind::kString, size);
      }

      case kEmptyTuple:
        return PushTuple({});
      case kTuple1:
        return PushTupleOf(1);
      case kTuple2:
        return PushTupleOf(2);
      case kTuple3:
        return PushTupleOf(3);
      case kTuple: {
        PANDA_ASSIGN_OR_RETURN(std::vector<PickleValuePtr> items, PopToMark());
        return PushTuple(std::move(items));
      }
      case kEmptyList:
        stack_.push_back(MakeValue(Kind::kList));
        return absl::OkStatus();
      case kList: {
        PANDA_ASSIGN_OR_RETURN(std::vector<PickleValuePtr> items, PopToMark());
        stack_.push_back(MakeValue(Kind::kList));
        return Append(std::move(items));
      }
      case kAppend: {
        PANDA_ASSIGN_OR_RETURN(PickleValuePtr item, Pop());
        return Append({std::move(item)});
      }
      case kAppends: {
        PANDA_ASSIGN_OR_RETURN(std::vector<PickleValuePtr> items, PopToMark());
        return Append(std::move(items));
      }
      case kEmptyDict:
        stack_.push_back(MakeValue(Kind::kDict));
        return absl::OkStatus();
      case kDict: {
        PANDA_ASSIGN_OR_RETURN(std::vector<PickleValuePtr> items, PopToMark());
        stack_.push_back(MakeValue(Kind::kDict));
        return SetItems(std::move(items));
      }
      case kSetItem: {
        PANDA_ASSIGN_OR_RETURN(PickleValuePtr value, Pop());
        PANDA_ASSIGN_OR_RETURN(PickleValuePtr key, Pop());
        return SetItems({std::move(key), std::move(value)});
      }
      case kSetItems: {
        PANDA_ASSIGN_OR_RETURN(std::vector<PickleValuePtr> items, PopToMark());
        return SetItems(std::move(items));
      }

      case kBinPut: {
        uint8_t index = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(1, &index));
        return Memoize(index);
      }
      case kLongBinPut: {
        uint32_t index = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(4, &index));
        return Memoize(index);
      }
      case kMemoize:
        return Memoize(memo_.size());
      case kBinGet: {
        uint8_t index = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(1, &index));
        return RecallMemo(index);
      }
      case kLongBinGet: {
        uint32_t index = 0;
        PANDA_RETURN_IF_ERROR(ReadLittleEndian(4, &index));
        return RecallMemo(index);
      }

      case kGlobal: {
        std::string module;
        std::string name;
        PANDA_RETURN_IF_ERROR(ReadLine(&module));
        PANDA_RETURN_IF_ERROR(ReadLine(&name));
        return PushGlobal(std::move(module), std::move(name));
      }
      case kStackGlobal: {
        PANDA_ASSIGN_OR_RETURN(PickleValuePtr name, Pop());
        PANDA_ASSIGN_OR_RETURN(PickleValuePtr module, Pop());
        if (name->kind != Kind::kString || module->kind != Kind::kString) {
          return Error("STACK_GLOBAL needs two strings");
        }
        return PushGlobal(module->string_value, name->string_value);
      }
      case kReduce:
        return Call(/*new_object=*/false);
      case kNewObj:
        return Call(/*new_object=*/true);
      case kBuild:
        return Build();
      case kBinPersId: {
        PANDA_ASSIGN_OR_RETURN(PickleValuePtr id, Pop());
        PickleValuePtr persistent = MakeValue(Kind::kPersistentId);
        persistent->items = {std::move(id)};
        stack_.push_back(std::move(persistent));
        return absl::OkStatus();
      }
      default:
        return Error(absl::StrCat("unsupported opcode 0x", absl::Hex(opcode, absl::kZeroPad2)));
    }
  }

  absl::string_view bytes_;
  size_t position_ = 0;
  size_t opcode_offset_ = 0;
  std::vector<PickleValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValuePtr> memo_;
  // Every value made, for CheckStructure() and the destructor.
  std::vector<PickleValuePtr> made_;
  bool succeeded_ = false;
};

}  // namespace

PickleValuePtr PickleValue::Find(absl::string_view key) const {
  for (const auto& entry : entries) {
    if (entry.first->kind == Kind::kString && entry.first->string_value == key) {
      return entry.second;
    }
  }
  return nullptr;
}

absl::StatusOr<PickleValuePtr> ParsePickle(absl::string_view bytes) {
  return PickleMachine(bytes).Run();
}

std::string DescribePickleValue(const PickleValue& value) {
  switch (value.kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "a bool";
    case Kind::kInt:
      return "an int";
    case Kind::kFloat:
      return "a float";
    case Kind::kString:
      return "a str";
    case Kind::kBytes:
      return "a bytes object";
    case Kind::kTuple:
      return absl::StrCat("a tuple of ", value.items.size());
    case Kind::kList:
      return absl::StrCat("a list of ", value.items.size());
    case Kind::kDict:
      return absl::StrCat("a dict with ", value.entries.size(), " entries");
    case Kind::kGlobal:
      return absl::StrCat("the global ", value.module, ".", value.name);
    case Kind::kCall: {
      const PickleValue& callable = *value.items[0];
      if (callable.kind != Kind::kGlobal) return "the result of a call";
      return absl::StrCat("an object made by ", callable.module, ".", callable.name);
    }
    case Kind::kPersistentId:
      return "a persistent id";
  }
  return "an unknown value";
}

}  // namespace panda::torchvision
