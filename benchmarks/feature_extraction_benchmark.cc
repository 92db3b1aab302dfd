// Feature extraction throughput: a backbone's forward pass on one batch of
// preprocessed input, and ExtractPooledFeatures (slicing, preprocessing,
// forward pass and the finiteness check) on 28 x 28 grey images like
// Fashion-MNIST's.
//
//   bazel run //benchmarks:feature_extraction_benchmark -- \
//       --benchmark_format=json > extraction.json
//
// The Keras cases need the converted MobileNetV2 (./setup.sh), read from
// --weights_file, relative to the folder `bazel run` starts in; without it
// they are skipped with an error and the LeNet cases still run. Each case
// reports images/s. Threads: every core, as pipelines use by default.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "backbones/backbone.h"
#include "backbones/keras/keras_backbone_options.pb.h"
#include "backbones/lenet/lenet_backbone_options.pb.h"
#include "benchmark/benchmark.h"
#include "core/feature_extractor.h"
#include "core/logging.h"
#include "core/malloc_tuning.h"
#include "google/protobuf/any.pb.h"
#include "torch/torch.h"

ABSL_FLAG(std::string, weights_file, "data/weights/mobilenet_v2.pkm",
          "converted MobileNetV2 for the Keras cases");

namespace panda {
namespace {

constexpr int64_t kBatch = 32;

// Backbones by name and input size, created once and shared by the cases.
absl::StatusOr<Backbone*> SharedBackbone(const std::string& name,
                                         int64_t input_size) {
  static std::map<std::pair<std::string, int64_t>, std::unique_ptr<Backbone>>
      backbones;
  auto& slot = backbones[{name, input_size}];
  if (slot != nullptr) return slot.get();

  google::protobuf::Any options;
  if (name == "keras") {
    KerasBackboneOptions keras;
    keras.set_weights_file(absl::GetFlag(FLAGS_weights_file));
    keras.set_input_size(static_cast<int32_t>(input_size));
    options.PackFrom(keras);
  } else {
    LenetBackboneOptions lenet;
    lenet.set_seed(0);
    options.PackFrom(lenet);
  }
  absl::StatusOr<std::unique_ptr<Backbone>> created =
      BackboneRegistry().Create(name, options);
  if (!created.ok()) return created.status();
  slot = *std::move(created);
  slot->module().eval();
  return slot.get();
}

// uint8 [count, 28, 28, 1] random grey images, the same on every call.
torch::Tensor GreyImages(int64_t count) {
  torch::manual_seed(0);
  return torch::randint(0, 256, {count, 28, 28, 1}, torch::kByte);
}

void SetImageRate(benchmark::State& state, int64_t images_per_iteration) {
  state.counters["images_per_s"] = benchmark::Counter(
      static_cast<double>(images_per_iteration * state.iterations()),
      benchmark::Counter::kIsRate);
}

// Backbone::Forward on one batch of input preprocessed beforehand.
void BM_Forward(benchmark::State& state, const std::string& name) {
  absl::StatusOr<Backbone*> backbone = SharedBackbone(name, state.range(0));
  if (!backbone.ok()) {
    state.SkipWithError(std::string(backbone.status().message()).c_str());
    return;
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor input = (*backbone)->Preprocess(GreyImages(kBatch));
  for (auto _ : state) {
    absl::StatusOr<TapMap> taps = (*backbone)->Forward(input, {"pooled"});
    if (!taps.ok()) {
      state.SkipWithError(std::string(taps.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(taps->at("pooled").data_ptr<float>());
  }
  SetImageRate(state, kBatch);
}

// ExtractPooledFeatures on four batches of uint8 images.
void BM_ExtractPooledFeatures(benchmark::State& state,
                              const std::string& name) {
  absl::StatusOr<Backbone*> backbone = SharedBackbone(name, state.range(0));
  if (!backbone.ok()) {
    state.SkipWithError(std::string(backbone.status().message()).c_str());
    return;
  }
  const torch::Tensor images = GreyImages(4 * kBatch);
  for (auto _ : state) {
    absl::StatusOr<torch::Tensor> features = ExtractPooledFeatures(
        **backbone, images, kBatch, torch::kCPU, "benchmark");
    if (!features.ok()) {
      state.SkipWithError(std::string(features.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(features->data_ptr<float>());
  }
  SetImageRate(state, images.size(0));
}

BENCHMARK_CAPTURE(BM_Forward, keras, std::string("keras"))
    ->Arg(96)
    ->Arg(224)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Forward, lenet, std::string("lenet"))
    ->Arg(28)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ExtractPooledFeatures, keras, std::string("keras"))
    ->Arg(96)
    ->Arg(224)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ExtractPooledFeatures, lenet, std::string("lenet"))
    ->Arg(28)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  panda::RestartWithMallocTuning(argv);
  benchmark::Initialize(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  // Under `bazel run`, relative paths mean the folder the user ran it from.
  if (const char* working_directory = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(working_directory) != 0) {
      std::fprintf(stderr, "cannot enter %s\n", working_directory);
      return 1;
    }
  }
  // Progress bars and INFO lines would interleave with the results.
  panda::SetMinLogLevel(panda::LogLevel::kWarning);
  torch::set_num_threads(
      std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
