// Feature-extraction throughput of a backbone, decoding included: reads PNG
// files with OpenCV, preprocesses them with the backbone's Preprocess() and
// extracts the "pooled" feature, in batches. backbone_throughput.py is the
// same measurement in Python PyTorch, and compare_throughput.sh runs both
// side by side (see docs/BENCHMARKS_BACKBONES.md).
//
//   backbone_throughput --model=resnet50 --weights=resnet50.pth
//       --images=DIR --count=256 --batch=32 --threads=2 --mode=end_to_end
//
// Modes:
//   end_to_end  decode + preprocess + forward over the first --count PNG
//               files of --images (sorted by name); --pipeline=overlap
//               decodes and preprocesses the next batch on a second thread
//               while the forward pass runs, --pipeline=serial does not.
//   forward     the forward pass alone on one preprocessed batch, repeated
//               until --count images are done.
//   conv        GFLOP/s of one large convolution (3x3, 256 -> 256 channels,
//               56 x 56, batch 32) in LibTorch: the machine's reference.
// Every mode runs one untimed warm-up batch first and prints one line
// "RESULT key=value ...".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backbones/keras/keras_backbone.h"
#include "backbones/torchvision/torchvision_resnet_backbone.h"
#include "core/bounded_queue.h"
#include "core/malloc_tuning.h"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"
#include "torch/torch.h"

ABSL_FLAG(std::string, model, "resnet50",
          "resnet18 ... wide_resnet101_2 (torchvision_resnet backbone) or mobilenet_v2 "
          "(keras backbone)");
ABSL_FLAG(std::string, weights, "", "checkpoint (.pth) or converted Keras model (.pkm)");
ABSL_FLAG(std::string, images, "", "folder of PNG files (end_to_end mode)");
ABSL_FLAG(int, count, 256, "images to process, after the warm-up batch");
ABSL_FLAG(int, batch, 32, "images per batch");
ABSL_FLAG(int, threads, 2, "LibTorch intra-op threads");
ABSL_FLAG(std::string, mode, "end_to_end", "end_to_end, forward or conv");
ABSL_FLAG(std::string, pipeline, "overlap", "overlap or serial (end_to_end mode)");
ABSL_FLAG(bool, channels_last, true, "channels-last memory format in the ResNet forward pass");

namespace panda {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

absl::StatusOr<std::unique_ptr<Backbone>> MakeBackbone() {
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model == "mobilenet_v2") {
    KerasBackboneOptions options;
    options.set_weights_file(absl::GetFlag(FLAGS_weights));
    options.set_input_size(224);
    absl::StatusOr<std::unique_ptr<KerasBackbone>> backbone = KerasBackbone::Create(options);
    if (!backbone.ok()) return backbone.status();
    return std::unique_ptr<Backbone>(std::move(*backbone));
  }
  TorchvisionResnetOptions options;
  options.set_arch(model);
  options.set_weights_file(absl::GetFlag(FLAGS_weights));
  options.set_channels_last(absl::GetFlag(FLAGS_channels_last));
  absl::StatusOr<std::unique_ptr<TorchvisionResnetBackbone>> backbone =
      TorchvisionResnetBackbone::Create(options);
  if (!backbone.ok()) return backbone.status();
  return std::unique_ptr<Backbone>(std::move(*backbone));
}

absl::StatusOr<std::vector<std::string>> ListPngFiles(const std::string& folder, size_t count) {
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    if (entry.path().extension() == ".png") files.push_back(entry.path().string());
  }
  if (error) return absl::NotFoundError(absl::StrCat("cannot list ", folder));
  std::sort(files.begin(), files.end());
  if (files.size() < count) {
    return absl::InvalidArgumentError(absl::StrCat(folder, " has ", files.size(),
                                                   " PNG files, fewer than ", count));
  }
  files.resize(count);
  return files;
}

// Decodes `files` (all of one size) into uint8 [N, H, W, C], C = 1 or 3 (RGB).
absl::StatusOr<torch::Tensor> DecodeBatch(const std::vector<std::string>& files, size_t begin,
                                          size_t end) {
  torch::Tensor batch;
  for (size_t i = begin; i < end; ++i) {
    cv::Mat image = cv::imread(files[i], cv::IMREAD_UNCHANGED);
    if (image.empty() || image.depth() != CV_8U ||
        (image.channels() != 1 && image.channels() != 3)) {
      return absl::DataLossError(absl::StrCat("cannot decode ", files[i],
                                              " as an 8-bit grey or colour PNG"));
    }
    if (image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
    if (!batch.defined()) {
      batch = torch::empty({static_cast<int64_t>(end - begin), image.rows, image.cols,
                            image.channels()},
                           torch::kByte);
    }
    if (image.rows != batch.size(1) || image.cols != batch.size(2) ||
        image.channels() != batch.size(3) || !image.isContinuous()) {
      return absl::InvalidArgumentError(absl::StrCat(files[i], " differs in size from ",
                                                     files[begin]));
    }
    std::memcpy(batch[i - begin].data_ptr(), image.data, image.total() * image.elemSize());
  }
  return batch;
}

absl::StatusOr<torch::Tensor> Prepare(Backbone& backbone, const std::vector<std::string>& files,
                                      size_t begin, size_t end) {
  absl::StatusOr<torch::Tensor> images = DecodeBatch(files, begin, end);
  if (!images.ok()) return images.status();
  return backbone.Preprocess(*images);
}

absl::Status Extract(Backbone& backbone, const torch::Tensor& input, double* checksum) {
  absl::StatusOr<TapMap> taps = backbone.Forward(input, {"pooled"});
  if (!taps.ok()) return taps.status();
  *checksum += taps->at("pooled").sum().item<double>();
  return absl::OkStatus();
}

absl::Status RunEndToEnd(Backbone& backbone) {
  const size_t batch = absl::GetFlag(FLAGS_batch);
  const size_t count = absl::GetFlag(FLAGS_count);
  const bool overlap = absl::GetFlag(FLAGS_pipeline) == "overlap";
  absl::StatusOr<std::vector<std::string>> files =
      ListPngFiles(absl::GetFlag(FLAGS_images), count + batch);
  if (!files.ok()) return files.status();

  double checksum = 0;
  {
    absl::StatusOr<torch::Tensor> warm_up = Prepare(backbone, *files, 0, batch);
    if (!warm_up.ok()) return warm_up.status();
    if (absl::Status status = Extract(backbone, *warm_up, &checksum); !status.ok()) return status;
  }

  const Clock::time_point start = Clock::now();
  if (overlap) {
    // Preprocessed batches from the decoding thread to the forward pass.
    BoundedQueue<absl::StatusOr<torch::Tensor>> queue(2);
    std::thread producer([&] {
      torch::InferenceMode inference_mode;  // Thread-local.
      // Preprocess on one thread. Debian's LibTorch parallelises with OpenMP,
      // and each thread fixes its team size on its first parallel operation.
      // The warm-up batch fixed the forward pass's team, so it keeps its
      // threads, and a second team of 2 would oversubscribe 2 cores.
      torch::set_num_threads(1);
      for (size_t begin = batch; begin < batch + count; begin += batch) {
        if (!queue.Push(Prepare(backbone, *files, begin, std::min(begin + batch, batch + count)))) {
          break;
        }
      }
    });
    absl::Status status;
    for (size_t begin = batch; begin < batch + count && status.ok(); begin += batch) {
      std::optional<absl::StatusOr<torch::Tensor>> input = queue.Pop();
      status = input->ok() ? Extract(backbone, **input, &checksum) : input->status();
    }
    // Unblocks the producer when an error ended the loop early.
    queue.Close();
    producer.join();
    if (!status.ok()) return status;
  } else {
    for (size_t begin = batch; begin < batch + count; begin += batch) {
      absl::StatusOr<torch::Tensor> input =
          Prepare(backbone, *files, begin, std::min(begin + batch, batch + count));
      if (!input.ok()) return input.status();
      if (absl::Status status = Extract(backbone, *input, &checksum); !status.ok()) return status;
    }
  }
  const double seconds = Seconds(start);
  std::printf("RESULT side=cpp model=%s mode=end_to_end pipeline=%s channels_last=%d "
              "threads=%d batch=%zu images=%zu seconds=%.3f images_per_s=%.2f checksum=%.6g\n",
              absl::GetFlag(FLAGS_model).c_str(), overlap ? "overlap" : "serial",
              absl::GetFlag(FLAGS_channels_last) ? 1 : 0, absl::GetFlag(FLAGS_threads), batch,
              count, seconds, count / seconds, checksum);
  return absl::OkStatus();
}

absl::Status RunForward(Backbone& backbone) {
  const int64_t batch = absl::GetFlag(FLAGS_batch);
  const int64_t count = absl::GetFlag(FLAGS_count);
  const torch::Tensor images =
      torch::randint(0, 256, {batch, 28, 28, 1}, torch::TensorOptions().dtype(torch::kByte));
  const torch::Tensor input = backbone.Preprocess(images);
  double checksum = 0;
  if (absl::Status status = Extract(backbone, input, &checksum); !status.ok()) return status;
  const Clock::time_point start = Clock::now();
  int64_t done = 0;
  for (; done < count; done += batch) {
    if (absl::Status status = Extract(backbone, input, &checksum); !status.ok()) return status;
  }
  const double seconds = Seconds(start);
  std::printf("RESULT side=cpp model=%s mode=forward channels_last=%d threads=%d batch=%lld "
              "images=%lld seconds=%.3f images_per_s=%.2f\n",
              absl::GetFlag(FLAGS_model).c_str(), absl::GetFlag(FLAGS_channels_last) ? 1 : 0,
              absl::GetFlag(FLAGS_threads), static_cast<long long>(batch),
              static_cast<long long>(done), seconds, done / seconds);
  return absl::OkStatus();
}

void RunConvolution() {
  const int64_t n = 32, channels = 256, side = 56;
  const double flops = 2.0 * n * channels * side * side * channels * 3 * 3;
  for (bool channels_last : {true, false}) {
    const auto format =
        channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const torch::Tensor x = torch::randn({n, channels, side, side}).contiguous(format);
    const torch::Tensor w = torch::randn({channels, channels, 3, 3}).contiguous(format);
    torch::conv2d(x, w, {}, 1, 1);
    const int repeats = 3;
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < repeats; ++i) torch::conv2d(x, w, {}, 1, 1);
    const double seconds = Seconds(start) / repeats;
    std::printf("RESULT side=cpp mode=conv channels_last=%d threads=%d shape=32x256x56x56 "
                "kernel=3x3x256 seconds=%.3f gflops_per_s=%.1f\n",
                channels_last ? 1 : 0, absl::GetFlag(FLAGS_threads), seconds,
                flops / seconds / 1e9);
  }
}

int Main() {
  torch::set_num_threads(absl::GetFlag(FLAGS_threads));
  torch::InferenceMode inference_mode;
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "conv") {
    RunConvolution();
    return 0;
  }
  absl::StatusOr<std::unique_ptr<Backbone>> backbone = MakeBackbone();
  if (!backbone.ok()) {
    std::fprintf(stderr, "%s\n", backbone.status().ToString().c_str());
    return 1;
  }
  (*backbone)->module().eval();
  absl::Status status;
  if (mode == "end_to_end") {
    status = RunEndToEnd(**backbone);
  } else if (mode == "forward") {
    status = RunForward(**backbone);
  } else {
    status = absl::InvalidArgumentError(
        absl::StrCat("--mode must be end_to_end, forward or conv, got ", mode));
  }
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  panda::RestartWithMallocTuning(argv);
  absl::ParseCommandLine(argc, argv);
  return panda::Main();
}
