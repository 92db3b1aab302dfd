// The "mvtec_ad" dataset plugin: one category of MVTec AD with its
// ground-truth masks, with the options of
// datasets/mvtec_ad_dataset_options.proto.
#include <algorithm>
#include <chrono>
#include <cstdint>
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
#include "datasets/image_folder_decoding.h"
#include "datasets/mask_decoding.h"
#include "datasets/mvtec_ad_dataset_options.pb.h"
#include "datasets/mvtec_ad_layout.h"
#include "datasets/parallel_for.h"
#include "google/protobuf/any.pb.h"
#include "opencv2/core.hpp"
#include "torch/types.h"

namespace panda {
namespace {

constexpr char kPluginName[] = "mvtec_ad";
// Number of skipped images whose errors the warning quotes. It counts all.
constexpr size_t kSkippedPathsLogged = 3;
// Largest `image_size`, so that byte counts of a split stay far from int64
// overflow.
constexpr int kMaxImageSize = 65535;

std::string JoinPath(const std::string& directory, const std::string& name) {
  if (directory.back() == '/') return directory + name;
  return absl::StrCat(directory, "/", name);
}

absl::Status CheckOptions(const MvtecAdDatasetOptions& options) {
  if (options.root().empty()) {
    return absl::InvalidArgumentError(
        "mvtec_ad dataset option `root` is required: set it to the folder "
        "that holds the category folders (bottle, cable, ...)");
  }
  if (options.category().empty()) {
    return absl::InvalidArgumentError(
        "mvtec_ad dataset option `category` is required: set it to the name "
        "of a category folder under `root`, such as \"bottle\"");
  }
  if (options.image_size() < 1 || options.image_size() > kMaxImageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mvtec_ad dataset option `image_size` is ", options.image_size(),
        ", but it must be a number of pixels from 1 to ", kMaxImageSize,
        ", e.g. 256"));
  }
  if (options.num_decode_threads() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("mvtec_ad dataset option `num_decode_threads` is ",
                     options.num_decode_threads(),
                     ", but it must be 0 (one per CPU core) or positive"));
  }
  if (options.max_image_pixels() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mvtec_ad dataset option `max_image_pixels` is ",
        options.max_image_pixels(),
        ", but it must be 0 (no limit) or a positive number of pixels"));
  }
  return absl::OkStatus();
}

int ResolveThreadCount(int requested) {
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

// Outcome of decoding one image and its mask.
struct Decoded {
  absl::Status status;
  // Whether `skip_unreadable` may skip the image: true for files that
  // cannot be decoded, false for a mask whose size differs from its image.
  bool skippable = true;
};

// Decodes `file` into `pixels` (size x size x 3) and its mask, if any,
// into `mask` (size x size), which is left as it is for a good image.
// Either file may have at most `max_pixels` pixels (0: no limit).
Decoded DecodeFile(const MvtecAdFile& file, int size, int64_t max_pixels,
                   uint8_t* pixels, uint8_t* mask) {
  cv::Size image_size;
  absl::Status status =
      DecodeImageFile(file.image_path, size, max_pixels, pixels, &image_size);
  if (!status.ok() || file.mask_path.empty()) return {status};

  cv::Size mask_size;
  status = DecodeMaskFile(file.mask_path, size, max_pixels, mask, &mask_size);
  if (!status.ok()) return {status};

  if (mask_size != image_size) {
    return {absl::DataLossError(absl::StrCat(
                "mask ", file.mask_path, " is ", mask_size.width, "x",
                mask_size.height, " pixels, but its image ", file.image_path,
                " is ", image_size.width, "x", image_size.height)),
            /*skippable=*/false};
  }
  return {absl::OkStatus()};
}

class MvtecAdDataset : public Dataset {
 public:
  MvtecAdDataset(MvtecAdDatasetOptions options,
                 std::vector<std::string> class_names)
      : options_(std::move(options)),
        category_directory_(JoinPath(options_.root(), options_.category())),
        class_names_(std::move(class_names)) {}

  const std::vector<std::string>& class_names() const override {
    return class_names_;
  }

  std::vector<int64_t> normal_classes() const override { return {0}; }

  absl::StatusOr<ImageSet> Load(Split split) const override;

  // Reads images without their masks, which only Load() returns. Masks are
  // still decoded and checked, so that Read fails where Load() would.
  absl::StatusOr<std::unique_ptr<SplitReader>> Open(
      Split split) const override;

  absl::StatusOr<std::string> Fingerprint(Split split) const override;

 private:
  std::string SplitDirectory(Split split) const {
    return JoinPath(category_directory_, SplitName(split));
  }

  absl::StatusOr<std::vector<MvtecAdFile>> ListSplit(Split split) const {
    if (split == Split::kTrain) {
      return ListMvtecAdTrainFiles(category_directory_);
    }
    return ListMvtecAdTestFiles(category_directory_, class_names_);
  }

  MvtecAdDatasetOptions options_;
  std::string category_directory_;
  std::vector<std::string> class_names_;
};

absl::StatusOr<ImageSet> MvtecAdDataset::Load(Split split) const {
  const auto start = std::chrono::steady_clock::now();
  PANDA_ASSIGN_OR_RETURN(std::vector<MvtecAdFile> files, ListSplit(split));
  const int64_t count = static_cast<int64_t>(files.size());
  const int64_t size = options_.image_size();
  const int64_t mask_bytes = size * size;
  const int64_t image_bytes = mask_bytes * 3;

  ImageSet set;
  try {
    set.images = torch::empty({count, size, size, 3}, torch::kUInt8);
    set.masks = torch::zeros({count, size, size}, torch::kUInt8);
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "mvtec_ad dataset: failed to allocate ", count, " images and masks of ",
        size, "x", size, " pixels (", count * (image_bytes + mask_bytes),
        " bytes) for the ", SplitName(split), " split; lower `image_size`"));
  }
  uint8_t* pixels = set.images.data_ptr<uint8_t>();
  uint8_t* masks = set.masks.data_ptr<uint8_t>();

  // Each image and mask is decoded straight into its slot of the tensors.
  const int threads = ResolveThreadCount(options_.num_decode_threads());
  const bool skip_unreadable = options_.skip_unreadable();
  const int64_t max_pixels = options_.max_image_pixels();
  std::vector<Decoded> results(files.size());
  ParallelFor(count, threads, [&](int64_t i) {
    results[i] = DecodeFile(files[i], static_cast<int>(size), max_pixels,
                            pixels + i * image_bytes, masks + i * mask_bytes);
    return results[i].status.ok() || (skip_unreadable && results[i].skippable);
  });

  // Keeps the decoded images in order. The first error that may not be
  // skipped fails the load.
  std::vector<std::string> skipped;
  std::vector<int64_t> kept_indices;
  for (int64_t i = 0; i < count; ++i) {
    const Decoded& result = results[i];
    if (result.status.ok()) {
      kept_indices.push_back(i);
      continue;
    }
    if (!skip_unreadable || !result.skippable) return result.status;
    skipped.push_back(std::string(result.status.message()));
  }

  if (!skipped.empty()) {
    std::string examples;
    for (size_t i = 0; i < std::min(skipped.size(), kSkippedPathsLogged); ++i) {
      absl::StrAppend(&examples, "\n  ", skipped[i]);
    }
    PANDA_LOG(WARNING) << "mvtec_ad dataset: skipped " << skipped.size()
                       << " of " << count << " images of the "
                       << SplitName(split)
                       << " split whose image or mask could not be read "
                          "(skip_unreadable is set); the first "
                       << std::min(skipped.size(), kSkippedPathsLogged) << ":"
                       << examples;
  }
  if (kept_indices.empty()) {
    return absl::DataLossError(
        absl::StrCat("mvtec_ad dataset: none of the ", count, " images of the ",
                     SplitName(split), " split under ", SplitDirectory(split),
                     " could be read"));
  }
  if (!skipped.empty()) {
    const torch::Tensor index = torch::tensor(kept_indices, torch::kInt64);
    set.images = set.images.index_select(0, index);
    set.masks = set.masks.index_select(0, index);
  }
  for (int64_t i : kept_indices) set.labels.push_back(files[i].label);

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  PANDA_LOG(INFO) << "mvtec_ad dataset: decoded " << kept_indices.size() << " "
                  << SplitName(split) << " images from "
                  << SplitDirectory(split) << " at " << size << "x" << size
                  << " in " << absl::StrFormat("%.2f", seconds) << " s on "
                  << threads << " threads";
  return set;
}

absl::StatusOr<std::unique_ptr<SplitReader>> MvtecAdDataset::Open(
    Split split) const {
  // Which files skip_unreadable drops, and so the labels of the rest, is
  // known only after decoding every file. That mode therefore decodes the
  // split here, as Load() does.
  if (options_.skip_unreadable()) return Dataset::Open(split);

  PANDA_ASSIGN_OR_RETURN(std::vector<MvtecAdFile> listed, ListSplit(split));
  std::vector<int64_t> labels;
  labels.reserve(listed.size());
  for (const MvtecAdFile& file : listed) labels.push_back(file.label);
  auto files =
      std::make_shared<const std::vector<MvtecAdFile>>(std::move(listed));
  const int size = options_.image_size();
  const int64_t max_pixels = options_.max_image_pixels();
  return std::make_unique<FileSplitReader>(
      absl::StrCat("mvtec_ad dataset, ", SplitName(split), " split"),
      std::move(labels), size,
      ResolveThreadCount(options_.num_decode_threads()),
      [files, size, max_pixels](int64_t index, uint8_t* rgb) {
        const MvtecAdFile& file = (*files)[index];
        std::vector<uint8_t> mask(
            file.mask_path.empty() ? 0 : static_cast<size_t>(size) * size);
        return DecodeFile(file, size, max_pixels, rgb, mask.data()).status;
      });
}

absl::StatusOr<std::string> MvtecAdDataset::Fingerprint(Split split) const {
  PANDA_ASSIGN_OR_RETURN(std::vector<MvtecAdFile> files, ListSplit(split));

  // One line per file would make the fingerprint as long as the listing, so
  // the lines are hashed.
  uint64_t hash = kFnv1aOffsetBasis;
  for (const MvtecAdFile& file : files) {
    PANDA_ASSIGN_OR_RETURN(std::string stamp, FileStamp(file.image_path));
    absl::StrAppend(&stamp, " label=", file.label, "\n");
    if (!file.mask_path.empty()) {
      PANDA_ASSIGN_OR_RETURN(std::string mask_stamp, FileStamp(file.mask_path));
      absl::StrAppend(&stamp, "mask ", mask_stamp, "\n");
    }
    hash = Fnv1a64(stamp.data(), stamp.size(), hash);
  }
  return absl::StrCat(SplitDirectory(split), ": ", files.size(),
                      " files, first ", files.front().image_path, ", last ",
                      files.back().image_path,
                      ", fnv1a64 of paths, sizes, modification times and "
                      "labels of images and masks ",
                      absl::Hex(hash, absl::kZeroPad16));
}

absl::StatusOr<std::unique_ptr<Dataset>> CreateMvtecAdDataset(
    const google::protobuf::Any& any_options) {
  PANDA_ASSIGN_OR_RETURN(
      MvtecAdDatasetOptions options,
      UnpackPluginOptions<MvtecAdDatasetOptions>(any_options, kPluginName));
  PANDA_RETURN_IF_ERROR(CheckOptions(options));

  PANDA_RETURN_IF_ERROR(
      CheckMvtecAdCategory(options.root(), options.category()));
  PANDA_ASSIGN_OR_RETURN(
      std::vector<std::string> class_names,
      ListMvtecAdClasses(JoinPath(options.root(), options.category())));
  return std::make_unique<MvtecAdDataset>(std::move(options),
                                          std::move(class_names));
}

}  // namespace

PANDA_REGISTER_PLUGIN(DatasetRegistry, kPluginName, CreateMvtecAdDataset);

}  // namespace panda
