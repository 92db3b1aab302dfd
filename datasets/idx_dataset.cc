// The "idx" dataset plugin: MNIST-style data sets stored as IDX files, with
// the options of datasets/idx_dataset_options.proto.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "datasets/dataset.h"
#include "datasets/idx_dataset_options.pb.h"
#include "datasets/idx_file.h"
#include "google/protobuf/any.pb.h"
#include "torch/types.h"

namespace panda {
namespace {

constexpr char kPluginName[] = "idx";
constexpr int kImageRank = 3;
constexpr int kLabelRank = 1;

// Resolved paths of one split's two files.
struct SplitFiles {
  std::string images;
  std::string labels;
};

std::string JoinPath(const std::string& directory, const std::string& name) {
  if (directory.empty() || directory.back() == '/') return directory + name;
  return absl::StrCat(directory, "/", name);
}

// Returns `path` if it exists, otherwise `path` + ".gz" if that exists.
absl::StatusOr<std::string> ResolveFile(const std::string& path) {
  struct stat info;
  for (const std::string& candidate : {path, path + ".gz"}) {
    if (::stat(candidate.c_str(), &info) == 0) return candidate;
    if (errno != ENOENT) {
      return absl::ErrnoToStatus(errno,
                                 absl::StrCat("failed to inspect ", candidate));
    }
  }
  return absl::NotFoundError(
      absl::StrCat("idx dataset file not found: neither ", path, " nor ", path,
                   ".gz exists"));
}

absl::StatusOr<SplitFiles> ResolveSplit(const IdxDatasetOptions& options,
                                        Split split) {
  const bool train = split == Split::kTrain;
  const std::string& images =
      train ? options.train_images() : options.test_images();
  const std::string& labels =
      train ? options.train_labels() : options.test_labels();

  SplitFiles files;
  PANDA_ASSIGN_OR_RETURN(files.images,
                         ResolveFile(JoinPath(options.directory(), images)));
  PANDA_ASSIGN_OR_RETURN(files.labels,
                         ResolveFile(JoinPath(options.directory(), labels)));
  return files;
}

// Returns "<path> size=<bytes> mtime=<seconds>.<nanoseconds>".
absl::StatusOr<std::string> FileStamp(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("failed to inspect ", path));
  }
  return absl::StrCat(path, " size=", info.st_size,
                      " mtime=", info.st_mtim.tv_sec, ".",
                      absl::Dec(info.st_mtim.tv_nsec, absl::kZeroPad9));
}

absl::Status CheckOptions(const IdxDatasetOptions& options) {
  if (options.directory().empty()) {
    return absl::InvalidArgumentError(
        "idx dataset option `directory` is required: set it to the folder "
        "containing the IDX files, e.g. /usr/share/datasets/fashion-mnist");
  }
  const std::pair<const char*, const std::string*> names[] = {
      {"train_images", &options.train_images()},
      {"train_labels", &options.train_labels()},
      {"test_images", &options.test_images()},
      {"test_labels", &options.test_labels()},
  };
  for (const auto& [field, value] : names) {
    if (value->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("idx dataset option `", field,
                       "` is empty; give a file name or leave it out "
                       "for the default"));
    }
  }

  struct stat info;
  if (::stat(options.directory().c_str(), &info) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(
          "idx dataset directory ", options.directory(), " does not exist"));
    }
    return absl::ErrnoToStatus(
        errno, absl::StrCat("failed to inspect idx dataset directory ",
                            options.directory()));
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("idx dataset option `directory` is ", options.directory(),
                     ", which is not a directory"));
  }
  return absl::OkStatus();
}

// Returns "0" to "K-1", where K is one more than the largest label of
// either split, so that every label has a name whichever split is loaded.
absl::StatusOr<std::vector<std::string>> NumberedClassNames(
    const IdxDatasetOptions& options) {
  int max_label = -1;
  for (Split split : {Split::kTrain, Split::kTest}) {
    PANDA_ASSIGN_OR_RETURN(SplitFiles files, ResolveSplit(options, split));
    PANDA_ASSIGN_OR_RETURN(IdxArray labels,
                           ReadIdxFile(files.labels, kLabelRank));
    for (uint8_t label : labels.data) {
      max_label = std::max<int>(max_label, label);
    }
  }

  std::vector<std::string> names;
  for (int label = 0; label <= max_label; ++label) {
    names.push_back(absl::StrCat(label));
  }
  return names;
}

absl::Status CheckLabels(const IdxArray& labels, const std::string& path,
                         size_t num_classes) {
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= num_classes) {
      return absl::DataLossError(absl::StrCat(
          "label ", int{labels.data[i]}, " of image ", i, " in ", path,
          " is out of range: the idx dataset has ", num_classes,
          " class names; list a name for every label in `class_names`"));
    }
  }
  return absl::OkStatus();
}

class IdxDataset : public Dataset {
 public:
  IdxDataset(IdxDatasetOptions options, std::vector<std::string> class_names)
      : options_(std::move(options)), class_names_(std::move(class_names)) {}

  const std::vector<std::string>& class_names() const override {
    return class_names_;
  }

  absl::StatusOr<ImageSet> Load(Split split) const override {
    PANDA_ASSIGN_OR_RETURN(SplitFiles files, ResolveSplit(options_, split));
    PANDA_ASSIGN_OR_RETURN(IdxArray images,
                           ReadIdxFile(files.images, kImageRank));
    PANDA_ASSIGN_OR_RETURN(IdxArray labels,
                           ReadIdxFile(files.labels, kLabelRank));

    if (images.dims[0] != labels.dims[0]) {
      return absl::DataLossError(absl::StrCat(
          "idx dataset ", SplitName(split), " split: ", files.images,
          " contains ", images.dims[0], " images but ", files.labels,
          " contains ", labels.dims[0], " labels"));
    }
    PANDA_RETURN_IF_ERROR(
        CheckLabels(labels, files.labels, class_names_.size()));

    ImageSet set;
    set.images = torch::empty(
        {images.dims[0], images.dims[1], images.dims[2], 1}, torch::kUInt8);
    std::memcpy(set.images.data_ptr<uint8_t>(), images.data.data(),
                images.data.size());
    set.labels.assign(labels.data.begin(), labels.data.end());
    return set;
  }

  absl::StatusOr<std::string> Fingerprint(Split split) const override {
    PANDA_ASSIGN_OR_RETURN(SplitFiles files, ResolveSplit(options_, split));
    PANDA_ASSIGN_OR_RETURN(std::string images, FileStamp(files.images));
    PANDA_ASSIGN_OR_RETURN(std::string labels, FileStamp(files.labels));
    return absl::StrCat("images=", images, "\nlabels=", labels);
  }

 private:
  IdxDatasetOptions options_;
  std::vector<std::string> class_names_;
};

absl::StatusOr<std::unique_ptr<Dataset>> CreateIdxDataset(
    const google::protobuf::Any& any_options) {
  PANDA_ASSIGN_OR_RETURN(
      IdxDatasetOptions options,
      UnpackPluginOptions<IdxDatasetOptions>(any_options, kPluginName));
  PANDA_RETURN_IF_ERROR(CheckOptions(options));

  std::vector<std::string> class_names(options.class_names().begin(),
                                       options.class_names().end());
  if (class_names.empty()) {
    PANDA_ASSIGN_OR_RETURN(class_names, NumberedClassNames(options));
  }
  return std::make_unique<IdxDataset>(std::move(options),
                                      std::move(class_names));
}

}  // namespace

PANDA_REGISTER_PLUGIN(DatasetRegistry, kPluginName, CreateIdxDataset);

}  // namespace panda
