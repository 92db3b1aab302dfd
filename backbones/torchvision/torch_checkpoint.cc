#include "backbones/torchvision/torch_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include "absl/strings/string_view.h"
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backbones/torchvision/pickle_reader.h"
#include "backbones/torchvision/zip_archive.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda::torchvision {
namespace {

using Kind = PickleValue::Kind;

// Largest tensor rank accepted; PyTorch itself allows 64 dimensions.
constexpr size_t kMaxRank = 64;

std::string FirstLine(absl::string_view text) {
  return std::string(text.substr(0, text.find('\n')));
}

// Maps the storage classes of torch.save's persistent ids to dtypes.
bool StorageDtype(const std::string& name, torch::Dtype* dtype) {
  static const auto* dtypes = new std::map<std::string, torch::Dtype>{
      {"FloatStorage", torch::kFloat32},   {"DoubleStorage", torch::kFloat64},
      {"HalfStorage", torch::kFloat16},    {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kInt64},      {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},     {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},      {"BoolStorage", torch::kBool},
      {"ComplexFloatStorage", torch::kComplexFloat},
      {"ComplexDoubleStorage", torch::kComplexDouble},
  };
  auto found = dtypes->find(name);
  if (found == dtypes->end()) return false;
  *dtype = found->second;
  return true;
}

bool IsGlobal(const PickleValue& value, absl::string_view module, absl::string_view name) {
  return value.kind == Kind::kGlobal && value.module == module && value.name == name;
}

// Reads a zip archive written by torch.save and turns the pickled values
// that rebuild tensors into tensors.
class CheckpointArchive {
 public:
  CheckpointArchive(std::string path, ZipArchive& archive)
      : path_(std::move(path)), archive_(archive) {}

  absl::Status DataLoss(absl::string_view problem) const {
    return absl::DataLossError(absl::StrCat(path_, ": ", problem));
  }

  // Converts `value`, the entry `name` of the state dict, to a tensor.
  absl::StatusOr<torch::Tensor> ToTensor(const std::string& name, const PickleValue& value) {
    if (value.kind == Kind::kCall && value.items[0]->kind == Kind::kGlobal) {
      const PickleValue& callable = *value.items[0];
      const std::vector<PickleValuePtr>& arguments = value.items[1]->items;
      if (IsGlobal(callable, "torch._utils", "_rebuild_tensor_v2")) {
        return RebuildTensor(name, arguments);
      }
      if (IsGlobal(callable, "torch._utils", "_rebuild_parameter") && !arguments.empty() &&
          arguments[0]->kind == Kind::kCall &&
          IsGlobal(*arguments[0]->items[0], "torch._utils", "_rebuild_tensor_v2")) {
        return RebuildTensor(name, arguments[0]->items[1]->items);
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ": state dict entry \"", name, "\" is ", DescribePickleValue(value),
        ", not a tensor. Save model.state_dict(), whose values are all tensors"));
  }

 private:
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  // backward_hooks[, metadata]).
  absl::StatusOr<torch::Tensor> RebuildTensor(const std::string& name,
                                              const std::vector<PickleValuePtr>& arguments) {
    const std::string where = absl::StrCat("tensor \"", name, "\"");
    if (arguments.size() < 4 || arguments[0]->kind != Kind::kPersistentId ||
        arguments[1]->kind != Kind::kInt || arguments[2]->kind != Kind::kTuple ||
        arguments[3]->kind != Kind::kTuple ||
        arguments[2]->items.size() != arguments[3]->items.size() ||
        arguments[2]->items.size() > kMaxRank) {
      return DataLoss(absl::StrCat(where, ": malformed tensor record"));
    }
    PANDA_ASSIGN_OR_RETURN(torch::Tensor storage, LoadStorage(where, *arguments[0]->items[0]));

    std::vector<int64_t> sizes;
    std::vector<int64_t> strides;
    for (size_t i = 0; i < arguments[2]->items.size(); ++i) {
      const PickleValue& size = *arguments[2]->items[i];
      const PickleValue& stride = *arguments[3]->items[i];
      if (size.kind != Kind::kInt || stride.kind != Kind::kInt || size.int_value < 0 ||
          stride.int_value < 0) {
        return DataLoss(absl::StrCat(where, ": invalid size or stride"));
      }
      sizes.push_back(size.int_value);
      strides.push_back(stride.int_value);
    }
    // The view must lie inside the storage: offset + sum((size - 1) * stride)
    // < storage size, computed without overflow. The element count must not
    // overflow either.
    const int64_t offset = arguments[1]->int_value;
    int64_t last = offset;
    int64_t elements = 1;
    bool empty = false;
    bool overflow = offset < 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      overflow = overflow || __builtin_mul_overflow(elements, sizes[i], &elements);
      if (sizes[i] == 0) {
        empty = true;
        continue;
      }
      int64_t step = 0;
      overflow = overflow || __builtin_mul_overflow(sizes[i] - 1, strides[i], &step) ||
                 __builtin_add_overflow(last, step, &last);
    }
    if (overflow || (!empty && last >= storage.numel()) || offset > storage.numel()) {
      return DataLoss(absl::StrCat(where, ": invalid view: offset ", offset, ", sizes [",
                                   absl::StrJoin(sizes, ", "), "], strides [",
                                   absl::StrJoin(strides, ", "), "] do not fit its storage of ",
                                   storage.numel(), " elements"));
    }
    if (empty) return torch::empty(sizes, storage.options());
    return storage.as_strided(sizes, strides, offset).clone(at::MemoryFormat::Contiguous);
  }

  // The persistent id of a storage: ("storage", torch.<Type>Storage, key,
  // location, element count). Returns the storage as a 1-D tensor.
  absl::StatusOr<torch::Tensor> LoadStorage(const std::string& where, const PickleValue& id) {
    torch::Dtype dtype;
    if (id.kind != Kind::kTuple || id.items.size() != 5 ||
        id.items[0]->kind != Kind::kString || id.items[0]->string_value != "storage" ||
        id.items[1]->kind != Kind::kGlobal || id.items[2]->kind != Kind::kString ||
        id.items[4]->kind != Kind::kInt || id.items[4]->int_value < 0) {
      return DataLoss(absl::StrCat(where, ": malformed storage reference"));
    }
    if (id.items[1]->module != "torch" || !StorageDtype(id.items[1]->name, &dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": ", where, " has storage type ", id.items[1]->module, ".",
          id.items[1]->name, ", which is not supported"));
    }
    const std::string& key = id.items[2]->string_value;
    const int64_t count = id.items[4]->int_value;

    auto cached = storages_.find(key);
    if (cached != storages_.end()) {
      if (cached->second.scalar_type() != dtype || cached->second.numel() != count) {
        return DataLoss(absl::StrCat(where, ": storage ", key,
                                     " is referenced with two types or sizes"));
      }
      return cached->second;
    }

    const std::string record = absl::StrCat("data/", key);
    if (!archive_.HasRecord(record)) {
      return DataLoss(absl::StrCat(where, ": the archive has no record ", record));
    }
    PANDA_ASSIGN_OR_RETURN(const uint64_t bytes, archive_.RecordSize(record));
    const uint64_t element_size = c10::elementSize(dtype);
    if (bytes / element_size != static_cast<uint64_t>(count) || bytes % element_size != 0) {
      return DataLoss(absl::StrCat(where, ": record ", record, " has ", bytes,
                                   " bytes, expected ", count, " elements of ",
                                   element_size, " bytes"));
    }
    torch::Tensor storage = torch::empty({count}, torch::TensorOptions().dtype(dtype));
    PANDA_RETURN_IF_ERROR(archive_.ReadRecord(record, storage.data_ptr(), bytes));
    storages_.emplace(key, storage);
    return storage;
  }

  std::string path_;
  ZipArchive& archive_;
  std::map<std::string, torch::Tensor> storages_;
};

// Picks the dict of tensors out of the pickled top-level object.
absl::StatusOr<const PickleValue*> FindStateDict(const std::string& path, const PickleValue& root) {
  if (root.kind != Kind::kDict) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the checkpoint holds ", DescribePickleValue(root),
        ", not a state dict. Save model.state_dict() instead of the model"));
  }
  for (const char* wrapper : {"state_dict", "model"}) {
    const PickleValuePtr inner = root.Find(wrapper);
    if (inner == nullptr) continue;
    if (inner->kind != Kind::kDict) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": the checkpoint's \"", wrapper, "\" entry is ", DescribePickleValue(*inner),
          ", not a state dict. Save model.state_dict() instead of the model"));
    }
    return inner.get();
  }
  return &root;
}

absl::StatusOr<std::vector<NamedTensor>> ReadArchive(const std::string& path) {
  PANDA_ASSIGN_OR_RETURN(ZipArchive archive, ZipArchive::Open(path));
  if (archive.HasRecord("byteorder")) {
    PANDA_ASSIGN_OR_RETURN(const std::string order, archive.ReadRecord("byteorder"));
    if (order != "little") {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": the tensors are stored in \"", order,
          "\" byte order; only little-endian checkpoints are supported"));
    }
  }
  if (!archive.HasRecord("data.pkl")) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the archive has no data.pkl record, so torch.save did not write it"));
  }
  PANDA_ASSIGN_OR_RETURN(const std::string pickle, archive.ReadRecord("data.pkl"));
  const absl::StatusOr<PickleValuePtr> root = ParsePickle(pickle);
  if (!root.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": data.pkl: ", root.status().message()));
  }
  PANDA_ASSIGN_OR_RETURN(const PickleValue* state, FindStateDict(path, **root));

  CheckpointArchive checkpoint(path, archive);
  std::vector<NamedTensor> tensors;
  tensors.reserve(state->entries.size());
  for (const auto& [key, value] : state->entries) {
    if (key->kind != Kind::kString) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": a state dict key is ", DescribePickleValue(*key), ", not a str"));
    }
    PANDA_ASSIGN_OR_RETURN(torch::Tensor tensor, checkpoint.ToTensor(key->string_value, *value));
    tensors.push_back({key->string_value, std::move(tensor)});
  }
  return tensors;
}

}  // namespace

absl::StatusOr<std::vector<NamedTensor>> ReadStateDict(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("checkpoint file not found: ", path));
  }
  char magic[2] = {0, 0};
  std::ifstream(path, std::ios::binary).read(magic, sizeof(magic));
  if (static_cast<uint8_t>(magic[0]) == 0x80 && magic[1] >= 2 && magic[1] <= 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the file is in the torch.save format of PyTorch before 1.6 (a bare "
              "pickle stream), which is not supported. Re-save it with a current "
              "PyTorch: torch.save(torch.load(OLD), NEW)"));
  }
  if (magic[0] != 'P' || magic[1] != 'K') {
    return absl::DataLossError(absl::StrCat(
        path, ": not a torch.save checkpoint: a zip archive starts with \"PK\""));
  }

  try {
    return ReadArchive(path);
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat(path, ": corrupt or truncated archive: ",
                     FirstLine(e.what_without_backtrace())));
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat(path, ": corrupt or truncated archive: ", FirstLine(e.what())));
  }
}

}  // namespace panda::torchvision
