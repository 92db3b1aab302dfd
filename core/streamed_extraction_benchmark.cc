// Feature extraction from an image folder, MobileNetV2 at 224 px, with the
// images decoded two ways:
//
// - decode all, then extract: Dataset::Load decodes the whole split into
//   one tensor on the dataset's decode threads, then ExtractPooledFeatures
//   runs over it;
// - streamed: an ImageStream decodes batches on a background thread (with
//   the dataset's decode threads) up to 2 batches ahead of the forward
//   pass, and ExtractPooledFeatures takes them from it.
//
// Two more cases split the first one into its parts: decoding alone and
// extraction from already decoded images alone.
//
//   bazel run -c opt //core:streamed_extraction_benchmark -- \
//     --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true
//
// The data is generated once per run under a temporary folder: 160 JPEGs
// (quality 90) of 500x375 pixels and 160 PNGs of 320x240, blurred random
// content, in two class folders. Every case runs with LibTorch's default
// thread count (one per core), batches of 32, and the default preprocessing
// prefetch setting. It reports images/s of wall time; the CPU column counts
// every thread of the process.
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backbones/backbone.h"
#include "backbones/keras/keras_backbone_options.pb.h"
#include "benchmark/benchmark.h"
#include "core/feature_extractor.h"
#include "core/image_stream.h"
#include "core/logging.h"
#include "core/malloc_tuning.h"
#include "datasets/dataset.h"
#include "datasets/image_folder_dataset_options.pb.h"
#include "google/protobuf/any.pb.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr int kImagesPerFormat = 160;
constexpr int kImages = 2 * kImagesPerFormat;
constexpr int kImageSize = 224;
constexpr int64_t kBatchSize = 32;
// Relative to the runfiles folder that `bazel run` starts in.
constexpr char kWeights[] = "data/weights/mobilenet_v2.pkm";

// The generated data set; removed at exit.
struct GeneratedFolder {
  std::string root;

  GeneratedFolder() {
    char pattern[] = "/tmp/streamed_extraction_benchmark_XXXXXX";
    root = ::mkdtemp(pattern);
    cv::RNG rng(1);
    for (int i = 0; i < kImages; ++i) {
      const bool jpeg = i % 2 == 0;
      const std::string folder =
          absl::StrCat(root, "/train/", i % 4 < 2 ? "cat" : "dog");
      std::filesystem::create_directories(folder);
      cv::Mat image =
          jpeg ? cv::Mat(375, 500, CV_8UC3) : cv::Mat(240, 320, CV_8UC3);
      rng.fill(image, cv::RNG::UNIFORM, 0, 256);
      cv::GaussianBlur(image, image, cv::Size(9, 9), 3);
      const std::string path =
          absl::StrCat(folder, "/", 1000 + i, jpeg ? ".jpg" : ".png");
      cv::imwrite(path, image, {cv::IMWRITE_JPEG_QUALITY, 90});
    }
    std::filesystem::create_directories(root + "/test/cat");
    cv::imwrite(root + "/test/cat/0.png", cv::Mat(8, 8, CV_8UC3));
  }

  ~GeneratedFolder() { std::filesystem::remove_all(root); }
};

const GeneratedFolder& Folder() {
  static const GeneratedFolder folder;
  return folder;
}

std::unique_ptr<Dataset> CreateDataset(int decode_threads) {
  ImageFolderDatasetOptions options;
  options.set_root(Folder().root);
  options.set_image_size(kImageSize);
  options.set_num_decode_threads(decode_threads);
  google::protobuf::Any any;
  any.PackFrom(options);
  absl::StatusOr<std::unique_ptr<Dataset>> dataset =
      DatasetRegistry().Create("image_folder", any);
  return dataset.ok() ? *std::move(dataset) : nullptr;
}

// MobileNetV2, created once and shared by the cases.
Backbone* MobileNetV2() {
  static Backbone* backbone = []() -> Backbone* {
    KerasBackboneOptions options;
    options.set_weights_file(kWeights);
    options.set_input_size(kImageSize);
    google::protobuf::Any any;
    any.PackFrom(options);
    absl::StatusOr<std::unique_ptr<Backbone>> created =
        BackboneRegistry().Create("keras", any);
    return created.ok() ? created->release() : nullptr;
  }();
  return backbone;
}

void SetImageRate(benchmark::State& state) {
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kImages,
                         benchmark::Counter::kIsRate);
}

// Stops the case with `status` unless it is OK.
bool Failed(benchmark::State& state, const absl::Status& status) {
  if (status.ok()) return false;
  state.SkipWithError(std::string(status.message()).c_str());
  return true;
}

void BM_DecodeAllThenExtract(benchmark::State& state) {
  std::unique_ptr<Dataset> dataset =
      CreateDataset(static_cast<int>(state.range(0)));
  Backbone* backbone = MobileNetV2();
  if (dataset == nullptr || backbone == nullptr) {
    state.SkipWithError("failed to create the dataset or the backbone");
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<ImageSet> set = dataset->Load(Split::kTrain);
    if (Failed(state, set.status())) return;
    absl::StatusOr<torch::Tensor> features = ExtractPooledFeatures(
        *backbone, set->images, kBatchSize, torch::kCPU, "features");
    if (Failed(state, features.status())) return;
    benchmark::DoNotOptimize(features->data_ptr());
  }
  SetImageRate(state);
}

void BM_Streamed(benchmark::State& state) {
  std::unique_ptr<Dataset> dataset =
      CreateDataset(static_cast<int>(state.range(0)));
  Backbone* backbone = MobileNetV2();
  if (dataset == nullptr || backbone == nullptr) {
    state.SkipWithError("failed to create the dataset or the backbone");
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<std::unique_ptr<SplitReader>> reader =
        dataset->Open(Split::kTrain);
    if (Failed(state, reader.status())) return;
    std::vector<int64_t> indices((*reader)->size());
    for (size_t i = 0; i < indices.size(); ++i)
      indices[i] = static_cast<int64_t>(i);
    absl::StatusOr<std::unique_ptr<ImageStream>> stream =
        ImageStream::Start(**reader, std::move(indices), kBatchSize);
    if (Failed(state, stream.status())) return;
    absl::StatusOr<torch::Tensor> features =
        ExtractPooledFeatures(*backbone, **stream, torch::kCPU, "features");
    if (Failed(state, features.status())) return;
    benchmark::DoNotOptimize(features->data_ptr());
  }
  SetImageRate(state);
}

void BM_DecodeOnly(benchmark::State& state) {
  std::unique_ptr<Dataset> dataset =
      CreateDataset(static_cast<int>(state.range(0)));
  if (dataset == nullptr) {
    state.SkipWithError("failed to create the dataset");
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<ImageSet> set = dataset->Load(Split::kTrain);
    if (Failed(state, set.status())) return;
    benchmark::DoNotOptimize(set->images.data_ptr());
  }
  SetImageRate(state);
}

void BM_ExtractOnly(benchmark::State& state) {
  std::unique_ptr<Dataset> dataset = CreateDataset(0);
  Backbone* backbone = MobileNetV2();
  if (dataset == nullptr || backbone == nullptr) {
    state.SkipWithError("failed to create the dataset or the backbone");
    return;
  }
  absl::StatusOr<ImageSet> set = dataset->Load(Split::kTrain);
  if (Failed(state, set.status())) return;
  for (auto _ : state) {
    absl::StatusOr<torch::Tensor> features = ExtractPooledFeatures(
        *backbone, set->images, kBatchSize, torch::kCPU, "features");
    if (Failed(state, features.status())) return;
    benchmark::DoNotOptimize(features->data_ptr());
  }
  SetImageRate(state);
}

// Two iterations per case and repetition, because each takes seconds.
BENCHMARK(BM_DecodeAllThenExtract)
    ->ArgName("decode_threads")
    ->Arg(2)
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();
BENCHMARK(BM_Streamed)
    ->ArgName("decode_threads")
    ->Arg(1)
    ->Arg(2)
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();
BENCHMARK(BM_DecodeOnly)
    ->ArgName("decode_threads")
    ->Arg(2)
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();
BENCHMARK(BM_ExtractOnly)
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  panda::RestartWithMallocTuning(argv);
  panda::SetMinLogLevel(panda::LogLevel::kWarning);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  panda::Folder();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
