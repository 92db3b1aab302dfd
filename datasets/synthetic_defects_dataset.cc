// The "synthetic_defects" dataset plugin: a texture with drawn defects and
// their masks, with the options of datasets/synthetic_defects_options.proto.
#include <algorithm>
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
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "datasets/dataset.h"
#include "datasets/file_stamp.h"
#include "datasets/image_folder_decoding.h"
#include "datasets/parallel_for.h"
#include "datasets/synthetic_defects.h"
#include "datasets/synthetic_defects_options.pb.h"
#include "google/protobuf/any.pb.h"
#include "opencv2/core.hpp"
#include "torch/types.h"

namespace panda {
namespace {

constexpr char kPluginName[] = "synthetic_defects";
// Smallest `image_size` that leaves room for a defect of 2 pixels' radius.
constexpr int kMinImageSize = 8;
// Largest `image_size`, as for the other datasets.
constexpr int kMaxImageSize = 65535;
// Changes whenever the drawing in datasets/synthetic_defects.cc changes, so
// that cached features of older images are not reused.
constexpr int kGeneratorVersion = 1;
// Random streams of the two splits.
constexpr int kTrainStream = 0;
constexpr int kTestStream = 1;

absl::Status CheckOptions(const SyntheticDefectsOptions& options) {
  if (options.texture().empty()) {
    return absl::InvalidArgumentError(
        "synthetic_defects dataset option `texture` is required: set it to "
        "an image file, such as data/textures/burlap.png");
  }
  if (options.image_size() < kMinImageSize ||
      options.image_size() > kMaxImageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "synthetic_defects dataset option `image_size` is ",
        options.image_size(), ", but it must be a number of pixels from ",
        kMinImageSize, " to ", kMaxImageSize, ", e.g. 128"));
  }
  const struct {
    const char* name;
    int32_t value;
  } counts[] = {
      {"train_images", options.train_images()},
      {"test_good_images", options.test_good_images()},
      {"test_images_per_defect", options.test_images_per_defect()},
  };
  for (const auto& count : counts) {
    if (count.value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("synthetic_defects dataset option `", count.name,
                       "` is ", count.value, ", but it must be at least 1"));
    }
  }
  return absl::OkStatus();
}

// One image to draw: its class and its index within the class.
struct SampleSpec {
  DefectKind kind = DefectKind::kNone;
  int64_t index = 0;
};

class SyntheticDefectsDataset : public Dataset {
 public:
  SyntheticDefectsDataset(SyntheticDefectsOptions options, cv::Mat texture,
                          std::string texture_stamp)
      : options_(std::move(options)),
        texture_(std::move(texture)),
        texture_stamp_(std::move(texture_stamp)) {
    for (int kind = 0; kind < kNumDefectKinds; ++kind) {
      class_names_.push_back(DefectKindName(static_cast<DefectKind>(kind)));
    }
  }

  const std::vector<std::string>& class_names() const override {
    return class_names_;
  }

  std::vector<int64_t> normal_classes() const override { return {0}; }

  absl::StatusOr<ImageSet> Load(Split split) const override;

  absl::StatusOr<std::string> Fingerprint(Split split) const override {
    return absl::StrCat(
        kPluginName, " ", SplitName(split), " split, generator version ",
        kGeneratorVersion, ", texture ", texture_stamp_,
        ", image_size=", options_.image_size(),
        ", train_images=", options_.train_images(),
        ", test_good_images=", options_.test_good_images(),
        ", test_images_per_defect=", options_.test_images_per_defect(),
        ", seed=", options_.seed());
  }

 private:
  // Lists the split's images in label order.
  std::vector<SampleSpec> ListSplit(Split split) const;

  SyntheticDefectsOptions options_;
  cv::Mat texture_;
  std::string texture_stamp_;
  std::vector<std::string> class_names_;
};

std::vector<SampleSpec> SyntheticDefectsDataset::ListSplit(Split split) const {
  std::vector<SampleSpec> specs;
  const auto add = [&specs](DefectKind kind, int64_t count) {
    for (int64_t i = 0; i < count; ++i) specs.push_back({kind, i});
  };
  if (split == Split::kTrain) {
    add(DefectKind::kNone, options_.train_images());
    return specs;
  }
  add(DefectKind::kNone, options_.test_good_images());
  for (int kind = 1; kind < kNumDefectKinds; ++kind) {
    add(static_cast<DefectKind>(kind), options_.test_images_per_defect());
  }
  return specs;
}

absl::StatusOr<ImageSet> SyntheticDefectsDataset::Load(Split split) const {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<SampleSpec> specs = ListSplit(split);
  const int64_t count = static_cast<int64_t>(specs.size());
  const int64_t size = options_.image_size();
  const int64_t mask_bytes = size * size;
  const int64_t image_bytes = mask_bytes * 3;

  ImageSet set;
  try {
    set.images = torch::empty({count, size, size, 3}, torch::kUInt8);
    set.masks = torch::empty({count, size, size}, torch::kUInt8);
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "synthetic_defects dataset: failed to allocate ", count,
        " images and masks of ", size, "x", size, " pixels (",
        count * (image_bytes + mask_bytes), " bytes) for the ",
        SplitName(split), " split; lower `image_size` or the counts"));
  }
  uint8_t* pixels = set.images.data_ptr<uint8_t>();
  uint8_t* masks = set.masks.data_ptr<uint8_t>();

  // Every image has its own engine, so the thread count does not change
  // the result.
  const int stream = split == Split::kTrain ? kTrainStream : kTestStream;
  const int threads = std::max(1u, std::thread::hardware_concurrency());
  ParallelFor(count, threads, [&](int64_t i) {
    std::mt19937_64 engine = DefectSampleEngine(options_.seed(), stream,
                                                specs[i].kind, specs[i].index);
    const DefectSample sample = DrawDefectSample(
        texture_, static_cast<int>(size), specs[i].kind, engine);
    // DrawDefectSample returns continuous matrices of exactly these sizes.
    std::memcpy(pixels + i * image_bytes, sample.image.data, image_bytes);
    std::memcpy(masks + i * mask_bytes, sample.mask.data, mask_bytes);
    return true;
  });
  for (const SampleSpec& spec : specs) {
    set.labels.push_back(static_cast<int64_t>(spec.kind));
  }

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  PANDA_LOG(INFO) << "synthetic_defects dataset: drew " << count << " "
                  << SplitName(split) << " images of " << size << "x" << size
                  << " from " << options_.texture() << " in "
                  << absl::StrFormat("%.2f", seconds) << " s on " << threads
                  << " threads";
  return set;
}

absl::StatusOr<std::unique_ptr<Dataset>> CreateSyntheticDefectsDataset(
    const google::protobuf::Any& any_options) {
  PANDA_ASSIGN_OR_RETURN(
      SyntheticDefectsOptions options,
      UnpackPluginOptions<SyntheticDefectsOptions>(any_options, kPluginName));
  PANDA_RETURN_IF_ERROR(CheckOptions(options));

  // The stamp is taken before decoding, so that it describes bytes no
  // older than those decoded.
  absl::StatusOr<std::string> stamp = FileStamp(options.texture());
  if (!stamp.ok()) {
    return absl::Status(
        stamp.status().code(),
        absl::StrCat("synthetic_defects dataset option `texture`: ",
                     stamp.status().message()));
  }
  // The texture is one tile that the images are cut from, so it has no
  // option of its own for a pixel limit.
  absl::StatusOr<cv::Mat> texture =
      DecodeRgbImage(options.texture(), /*max_pixels=*/0);
  if (!texture.ok()) {
    return absl::Status(
        texture.status().code(),
        absl::StrCat("synthetic_defects dataset option `texture`: ",
                     texture.status().message()));
  }
  return std::make_unique<SyntheticDefectsDataset>(
      std::move(options), *std::move(texture), *std::move(stamp));
}

}  // namespace

PANDA_REGISTER_PLUGIN(DatasetRegistry, kPluginName,
                      CreateSyntheticDefectsDataset);

}  // namespace panda
