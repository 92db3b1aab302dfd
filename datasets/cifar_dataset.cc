// The "cifar" dataset plugin: CIFAR-10 and CIFAR-100 binary files, with the
// options of datasets/cifar_dataset_options.proto.
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
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
#include "datasets/cifar_dataset_options.pb.h"
#include "datasets/cifar_file.h"
#include "datasets/dataset.h"
#include "datasets/file_stamp.h"
#include "google/protobuf/any.pb.h"
#include "torch/types.h"

namespace panda {
namespace {

constexpr char kPluginName[] = "cifar";

// File names of a variant, and the label field that gives the classes.
struct CifarLayout {
  std::vector<std::string> train_files;
  std::vector<std::string> test_files;
  std::vector<CifarLabelField> label_fields;
  // Index into label_fields of the labels returned.
  int class_field = 0;
  std::string class_names_file;
};

CifarLayout LayoutFor(const CifarDatasetOptions& options) {
  CifarLayout layout;
  if (options.variant() == CifarDatasetOptions::CIFAR10) {
    for (int batch = 1; batch <= 5; ++batch) {
      layout.train_files.push_back(absl::StrCat("data_batch_", batch, ".bin"));
    }
    layout.test_files = {"test_batch.bin"};
    layout.label_fields = {{"label", 10}};
    layout.class_names_file = "batches.meta.txt";
    return layout;
  }

  layout.train_files = {"train.bin"};
  layout.test_files = {"test.bin"};
  layout.label_fields = {{"coarse label", 20}, {"fine label", 100}};
  if (options.label() == CifarDatasetOptions::FINE) {
    layout.class_field = 1;
    layout.class_names_file = "fine_label_names.txt";
  } else {
    layout.class_names_file = "coarse_label_names.txt";
  }
  return layout;
}

std::string JoinPath(const std::string& directory, const std::string& name) {
  if (directory.back() == '/') return directory + name;
  return absl::StrCat(directory, "/", name);
}

absl::Status CheckOptions(const CifarDatasetOptions& options) {
  if (options.directory().empty()) {
    return absl::InvalidArgumentError(
        "cifar dataset option `directory` is required: set it to the folder "
        "of the binary files, e.g. cifar-10-batches-bin or cifar-100-binary");
  }
  if (options.variant() == CifarDatasetOptions::CIFAR10 &&
      options.has_label()) {
    return absl::InvalidArgumentError(
        "cifar dataset option `label` applies only to variant CIFAR100, "
        "since CIFAR-10 has one label per image; remove it");
  }

  struct stat info;
  if (::stat(options.directory().c_str(), &info) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(
          "cifar dataset directory ", options.directory(), " does not exist"));
    }
    return absl::ErrnoToStatus(
        errno, absl::StrCat("failed to inspect cifar dataset directory ",
                            options.directory()));
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cifar dataset option `directory` is ",
                     options.directory(), ", which is not a directory"));
  }
  return absl::OkStatus();
}

class CifarDataset : public Dataset {
 public:
  CifarDataset(std::string directory, CifarLayout layout,
               std::vector<std::string> class_names)
      : directory_(std::move(directory)),
        layout_(std::move(layout)),
        class_names_(std::move(class_names)) {}

  const std::vector<std::string>& class_names() const override {
    return class_names_;
  }

  absl::StatusOr<ImageSet> Load(Split split) const override {
    PANDA_ASSIGN_OR_RETURN(
        CifarRecords records,
        ReadCifarFiles(SplitPaths(split), layout_.label_fields));

    ImageSet set;
    const std::vector<uint8_t>& labels = records.labels[layout_.class_field];
    set.labels.assign(labels.begin(), labels.end());

    // The tensor takes over the pixel buffer instead of copying it.
    auto pixels =
        std::make_unique<std::vector<uint8_t>>(std::move(records.pixels));
    uint8_t* data = pixels->data();
    std::vector<uint8_t>* owner = pixels.get();
    set.images = torch::from_blob(
        data, {records.count, kCifarImageSide, kCifarImageSide, kCifarChannels},
        [owner](void*) { delete owner; }, torch::kUInt8);
    pixels.release();
    return set;
  }

  absl::StatusOr<std::string> Fingerprint(Split split) const override {
    std::string fingerprint;
    for (const std::string& path : SplitPaths(split)) {
      PANDA_ASSIGN_OR_RETURN(std::string stamp, FileStamp(path));
      absl::StrAppend(&fingerprint, stamp, "\n");
    }
    PANDA_ASSIGN_OR_RETURN(
        std::string names,
        FileStamp(JoinPath(directory_, layout_.class_names_file)));
    absl::StrAppend(&fingerprint, names, "\nclass_field=", layout_.class_field);
    return fingerprint;
  }

 private:
  std::vector<std::string> SplitPaths(Split split) const {
    const std::vector<std::string>& names =
        split == Split::kTrain ? layout_.train_files : layout_.test_files;
    std::vector<std::string> paths;
    for (const std::string& name : names) {
      paths.push_back(JoinPath(directory_, name));
    }
    return paths;
  }

  std::string directory_;
  CifarLayout layout_;
  std::vector<std::string> class_names_;
};

absl::StatusOr<std::unique_ptr<Dataset>> CreateCifarDataset(
    const google::protobuf::Any& any_options) {
  PANDA_ASSIGN_OR_RETURN(
      CifarDatasetOptions options,
      UnpackPluginOptions<CifarDatasetOptions>(any_options, kPluginName));
  PANDA_RETURN_IF_ERROR(CheckOptions(options));

  CifarLayout layout = LayoutFor(options);
  const CifarLabelField& class_field = layout.label_fields[layout.class_field];
  PANDA_ASSIGN_OR_RETURN(std::vector<std::string> class_names,
                         ReadCifarClassNames(JoinPath(options.directory(),
                                                      layout.class_names_file),
                                             class_field.num_classes));
  return std::make_unique<CifarDataset>(options.directory(), std::move(layout),
                                        std::move(class_names));
}

}  // namespace

PANDA_REGISTER_PLUGIN(DatasetRegistry, kPluginName, CreateCifarDataset);

}  // namespace panda
