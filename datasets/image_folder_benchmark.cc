// Decoding throughput of the "image_folder" dataset: Load() with 1 decode
// thread, with 2, and with one per core. A plain sequential loop of
// cv::imread, cv::cvtColor and cv::resize runs beside them as the peer: the
// same work without the plugin's listing, thread pool and tensor.
//
//   bazel run -c opt //datasets:image_folder_benchmark
//
// The data is generated once per run: 96 JPEGs (quality 90) of 500x375
// pixels, a common size among Cats-vs-Dogs photos, with blurred random
// content, in two class folders under a temporary folder. Each case loads
// the training split at 256x256 and reports images/s of wall time. The CPU
// column counts every thread of the process, so on a busy machine the CPU
// time per image still compares the cases. Ratios come from one run.
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/logging.h"
#include "core/malloc_tuning.h"
#include "datasets/dataset.h"
#include "datasets/image_folder_dataset_options.pb.h"
#include "google/protobuf/any.pb.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"

namespace panda {
namespace {

constexpr int kImages = 96;
constexpr int kImageSize = 256;

// The generated data set; removed at exit.
struct GeneratedFolder {
  std::string root;
  std::vector<std::string> train_paths;

  GeneratedFolder() {
    char pattern[] = "/tmp/image_folder_benchmark_XXXXXX";
    root = ::mkdtemp(pattern);
    cv::RNG rng(1);
    for (int i = 0; i < kImages; ++i) {
      const std::string folder =
          root + "/train/" + (i % 2 == 0 ? "cat" : "dog");
      std::filesystem::create_directories(folder);
      cv::Mat image(375, 500, CV_8UC3);
      rng.fill(image, cv::RNG::UNIFORM, 0, 256);
      cv::GaussianBlur(image, image, cv::Size(9, 9), 3);
      const std::string path = folder + "/" + std::to_string(1000 + i) + ".jpg";
      cv::imwrite(path, image, {cv::IMWRITE_JPEG_QUALITY, 90});
      train_paths.push_back(path);
    }
    std::filesystem::create_directories(root + "/test/cat");
    cv::imwrite(root + "/test/cat/0.png", cv::Mat(8, 8, CV_8UC3));
    std::sort(train_paths.begin(), train_paths.end());
  }

  ~GeneratedFolder() { std::filesystem::remove_all(root); }
};

const GeneratedFolder& Folder() {
  static const GeneratedFolder folder;
  return folder;
}

void BM_ImageFolderLoad(benchmark::State& state) {
  ImageFolderDatasetOptions options;
  options.set_root(Folder().root);
  options.set_image_size(kImageSize);
  options.set_num_decode_threads(static_cast<int>(state.range(0)));
  google::protobuf::Any any;
  any.PackFrom(options);
  auto dataset = DatasetRegistry().Create("image_folder", any);
  if (!dataset.ok()) {
    state.SkipWithError(std::string(dataset.status().message()).c_str());
    return;
  }

  for (auto _ : state) {
    absl::StatusOr<ImageSet> set = (*dataset)->Load(Split::kTrain);
    if (!set.ok()) {
      state.SkipWithError(std::string(set.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(set->images.data_ptr());
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kImages,
                         benchmark::Counter::kIsRate);
}

void BM_SequentialOpenCvLoop(benchmark::State& state) {
  const std::vector<std::string>& paths = Folder().train_paths;
  std::vector<uint8_t> out(static_cast<size_t>(paths.size()) * kImageSize *
                           kImageSize * 3);
  for (auto _ : state) {
    for (size_t i = 0; i < paths.size(); ++i) {
      const cv::Mat decoded = cv::imread(paths[i], cv::IMREAD_UNCHANGED);
      cv::Mat rgb;
      cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
      cv::Mat resized(kImageSize, kImageSize, CV_8UC3,
                      out.data() + i * kImageSize * kImageSize * 3);
      cv::resize(rgb, resized, resized.size(), 0, 0, cv::INTER_AREA);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kImages,
                         benchmark::Counter::kIsRate);
}

BENCHMARK(BM_SequentialOpenCvLoop)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();
BENCHMARK(BM_ImageFolderLoad)
    ->Arg(1)
    ->Arg(2)
    ->Arg(0)
    ->ArgName("threads")
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
