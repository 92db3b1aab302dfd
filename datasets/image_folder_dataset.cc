// The "image_folder" dataset plugin: images in <root>/<split>/<class>/
// folders, with the options of datasets/image_folder_dataset_options.proto.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/fnv1a.h"
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "datasets/dataset.h"
#include "datasets/file_split_reader.h"
#include "datasets/file_stamp.h"
#include "datasets/image_folder_dataset_options.pb.h"
#include "datasets/image_folder_decoding.h"
#include "datasets/image_folder_listing.h"
#include "datasets/parallel_for.h"
#include "google/protobuf/any.pb.h"
#include "torch/types.h"

namespace panda {
namespace {

constexpr char kPluginName[] = "image_folder";
// Number of skipped images whose errors the warning quotes. It counts all.
constexpr size_t kSkippedPathsLogged = 3;
// Largest `image_size`, so that byte counts of a split stay far from int64
// overflow.
constexpr int kMaxImageSize = 65535;

// An image file and its class.
struct LabelledFile {
  std::string path;
  int64_t label = 0;
};

std::string JoinPath(const std::string& directory, const std::string& name) {
  if (directory.back() == '/') return directory + name;
  return absl::StrCat(directory, "/", name);
}

absl::Status CheckOptions(const ImageFolderDatasetOptions& options) {
  if (options.root().empty()) {
    return absl::InvalidArgumentError(
        "image_folder dataset option `root` is required: set it to the "
        "folder that holds the train and test folders");
  }
  if (options.train_folder().empty() || options.test_folder().empty()) {
    return absl::InvalidArgumentError(
        "image_folder dataset options `train_folder` and `test_folder` must "
        "not be empty; leave them out for \"train\" and \"test\"");
  }
  if (options.image_size() < 1 || options.image_size() > kMaxImageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image_folder dataset option `image_size` is ", options.image_size(),
        ", but it must be a number of pixels from 1 to ", kMaxImageSize,
        ", e.g. 256"));
  }
  if (options.num_decode_threads() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("image_folder dataset option `num_decode_threads` is ",
                     options.num_decode_threads(),
                     ", but it must be 0 (one per CPU core) or positive"));
  }
  if (options.max_image_pixels() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image_folder dataset option `max_image_pixels` is ",
        options.max_image_pixels(),
        ", but it must be 0 (no limit) or a positive number of pixels"));
  }

  struct stat info;
  if (::stat(options.root().c_str(), &info) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(
          "image_folder dataset root ", options.root(), " does not exist"));
    }
    return absl::ErrnoToStatus(
        errno, absl::StrCat("failed to inspect image_folder dataset root ",
                            options.root()));
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("image_folder dataset option `root` is ", options.root(),
                     ", which is not a directory"));
  }
  return absl::OkStatus();
}

// Returns the sorted union of the class folders of both splits.
absl::StatusOr<std::vector<std::string>> UnionOfClassFolders(
    const ImageFolderDatasetOptions& options) {
  std::vector<std::string> names;
  for (const std::string* folder :
       {&options.train_folder(), &options.test_folder()}) {
    PANDA_ASSIGN_OR_RETURN(std::vector<std::string> split_names,
                           ListClassFolders(JoinPath(options.root(), *folder)));
    names.insert(names.end(), split_names.begin(), split_names.end());
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

int ResolveThreadCount(int requested) {
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

class ImageFolderDataset : public Dataset {
 public:
  ImageFolderDataset(ImageFolderDatasetOptions options,
                     std::vector<std::string> class_names)
      : options_(std::move(options)), class_names_(std::move(class_names)) {}

  const std::vector<std::string>& class_names() const override {
    return class_names_;
  }

  absl::StatusOr<ImageSet> Load(Split split) const override;

  absl::StatusOr<std::unique_ptr<SplitReader>> Open(
      Split split) const override;

  absl::StatusOr<std::string> Fingerprint(Split split) const override;

 private:
  std::string SplitDirectory(Split split) const {
    return JoinPath(options_.root(), split == Split::kTrain
                                         ? options_.train_folder()
                                         : options_.test_folder());
  }

  // Lists the split's images, class by class in label order.
  absl::StatusOr<std::vector<LabelledFile>> ListSplit(Split split) const;

  ImageFolderDatasetOptions options_;
  std::vector<std::string> class_names_;
};

absl::StatusOr<std::vector<LabelledFile>> ImageFolderDataset::ListSplit(
    Split split) const {
  const std::string directory = SplitDirectory(split);
  PANDA_ASSIGN_OR_RETURN(std::vector<std::string> folders,
                         ListClassFolders(directory));

  std::vector<LabelledFile> files;
  for (const std::string& folder : folders) {
    const auto name =
        std::lower_bound(class_names_.begin(), class_names_.end(), folder);
    if (name == class_names_.end() || *name != folder) {
      return absl::FailedPreconditionError(absl::StrCat(
          "class folder ", JoinPath(directory, folder),
          " appeared after the dataset was created; create it again"));
    }
    const int64_t label = name - class_names_.begin();
    PANDA_ASSIGN_OR_RETURN(std::vector<std::string> paths,
                           ListImageFiles(JoinPath(directory, folder)));
    for (std::string& path : paths) {
      files.push_back({std::move(path), label});
    }
  }
  return files;
}

absl::StatusOr<ImageSet> ImageFolderDataset::Load(Split split) const {
  const auto start = std::chrono::steady_clock::now();
  PANDA_ASSIGN_OR_RETURN(std::vector<LabelledFile> files, ListSplit(split));
  const int64_t count = static_cast<int64_t>(files.size());
  const int64_t size = options_.image_size();
  const int64_t image_bytes = size * size * 3;

  ImageSet set;
  try {
    set.images = torch::empty({count, size, size, 3}, torch::kUInt8);
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "image_folder dataset: failed to allocate ", count, " images of ", size,
        "x", size, " pixels (", count * image_bytes, " bytes) for the ",
        SplitName(split), " split; lower `image_size`"));
  }
  uint8_t* pixels = set.images.data_ptr<uint8_t>();

  // Each image is decoded straight into its slot of the tensor.
  const int threads = ResolveThreadCount(options_.num_decode_threads());
  const bool skip_unreadable = options_.skip_unreadable();
  const int64_t max_pixels = options_.max_image_pixels();
  std::vector<absl::Status> errors(files.size());
  ParallelFor(count, threads, [&](int64_t i) {
    errors[i] = DecodeImageFile(files[i].path, static_cast<int>(size),
                                max_pixels, pixels + i * image_bytes);
    return errors[i].ok() || skip_unreadable;
  });

  // Moves the decoded images over the skipped ones, keeping their order.
  std::vector<std::string> skipped;
  int64_t num_kept = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (!errors[i].ok()) {
      if (!skip_unreadable) return errors[i];
      skipped.push_back(std::string(errors[i].message()));
      continue;
    }
    if (num_kept != i) {
      std::memmove(pixels + num_kept * image_bytes, pixels + i * image_bytes,
                   static_cast<size_t>(image_bytes));
    }
    set.labels.push_back(files[i].label);
    ++num_kept;
  }

  if (!skipped.empty()) {
    std::string examples;
    for (size_t i = 0; i < std::min(skipped.size(), kSkippedPathsLogged); ++i) {
      absl::StrAppend(&examples, "\n  ", skipped[i]);
    }
    PANDA_LOG(WARNING) << "image_folder dataset: skipped " << skipped.size()
                       << " of " << count << " images of the "
                       << SplitName(split)
                       << " split that could not be read (skip_unreadable is "
                          "set); the first "
                       << std::min(skipped.size(), kSkippedPathsLogged) << ":"
                       << examples;
    set.images = set.images.narrow(0, 0, num_kept);
  }
  if (num_kept == 0) {
    return absl::DataLossError(
        absl::StrCat("image_folder dataset: none of the ", count,
                     " images of the ", SplitName(split), " split under ",
                     SplitDirectory(split), " could be read"));
  }

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  PANDA_LOG(INFO) << "image_folder dataset: decoded " << num_kept << " "
                  << SplitName(split) << " images from "
                  << SplitDirectory(split) << " at " << size << "x" << size
                  << " in " << absl::StrFormat("%.2f", seconds) << " s on "
                  << threads << " threads";
  return set;
}

absl::StatusOr<std::unique_ptr<SplitReader>> ImageFolderDataset::Open(
    Split split) const {
  // Which files skip_unreadable drops, and so the labels of the rest, is
  // known only after decoding every file. That mode therefore decodes the
  // split here, as Load() does.
  if (options_.skip_unreadable()) return Dataset::Open(split);

  PANDA_ASSIGN_OR_RETURN(std::vector<LabelledFile> files, ListSplit(split));
  std::vector<int64_t> labels;
  labels.reserve(files.size());
  auto paths = std::make_shared<std::vector<std::string>>();
  paths->reserve(files.size());
  for (LabelledFile& file : files) {
    labels.push_back(file.label);
    paths->push_back(std::move(file.path));
  }
  const int size = options_.image_size();
  const int64_t max_pixels = options_.max_image_pixels();
  return std::make_unique<FileSplitReader>(
      absl::StrCat("image_folder dataset, ", SplitName(split), " split"),
      std::move(labels), size,
      ResolveThreadCount(options_.num_decode_threads()),
      [paths, size, max_pixels](int64_t index, uint8_t* rgb) {
        return DecodeImageFile((*paths)[index], size, max_pixels, rgb);
      });
}

absl::StatusOr<std::string> ImageFolderDataset::Fingerprint(Split split) const {
  PANDA_ASSIGN_OR_RETURN(std::vector<LabelledFile> files, ListSplit(split));

  // One line per file would make the fingerprint as long as the listing, so
  // the lines are hashed.
  uint64_t hash = kFnv1aOffsetBasis;
  for (const LabelledFile& file : files) {
    PANDA_ASSIGN_OR_RETURN(std::string stamp, FileStamp(file.path));
    absl::StrAppend(&stamp, " label=", file.label, "\n");
    hash = Fnv1a64(stamp.data(), stamp.size(), hash);
  }
  return absl::StrCat(SplitDirectory(split), ": ", files.size(),
                      " files, first ", files.front().path, ", last ",
                      files.back().path,
                      ", fnv1a64 of paths, sizes, "
                      "modification times and labels ",
                      absl::Hex(hash, absl::kZeroPad16));
}

absl::StatusOr<std::unique_ptr<Dataset>> CreateImageFolderDataset(
    const google::protobuf::Any& any_options) {
  PANDA_ASSIGN_OR_RETURN(
      ImageFolderDatasetOptions options,
      UnpackPluginOptions<ImageFolderDatasetOptions>(any_options, kPluginName));
  PANDA_RETURN_IF_ERROR(CheckOptions(options));
  PANDA_ASSIGN_OR_RETURN(std::vector<std::string> class_names,
                         UnionOfClassFolders(options));
  return std::make_unique<ImageFolderDataset>(std::move(options),
                                              std::move(class_names));
}

}  // namespace

PANDA_REGISTER_PLUGIN(DatasetRegistry, kPluginName, CreateImageFolderDataset);

}  // namespace panda
