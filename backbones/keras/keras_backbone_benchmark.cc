// Measures the throughput of the "pooled" feature of a converted Keras model
// at 224 and 112 pixels, with and without channels-last memory format:
//
//   bazel build //backbones/keras:keras_backbone_benchmark
//   bazel-bin/backbones/keras/keras_backbone_benchmark WEIGHTS_FILE [THREADS] [BATCH] [BATCHES]
//
// for example with WEIGHTS_FILE data/weights/mobilenet_v2.pkm.
//
// NOTE: with glibc's default malloc, most of the time at 224 pixels went to
// page faults from freeing and reallocating large activations (measured on a
// 2-core x86 machine: 46 images/s, and 173 images/s with
// MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736
// MALLOC_TOP_PAD_=1073741824 set in the environment).
//
// Prints images per second for each setting. Preprocessing is not timed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "backbones/keras/keras_backbone.h"
#include "torch/torch.h"

namespace panda {
namespace {

int Run(const std::string& weights_file, int threads, int batch, int batches) {
  torch::set_num_threads(threads);
  torch::InferenceMode inference_mode;
  std::printf("%s, %d threads, batch %d, %d timed batches after 1 warm-up\n",
              weights_file.c_str(), threads, batch, batches);

  for (int size : {224, 112}) {
    KerasBackboneOptions options;
    options.set_weights_file(weights_file);
    options.set_input_size(size);
    absl::StatusOr<std::unique_ptr<KerasBackbone>> backbone = KerasBackbone::Create(options);
    if (!backbone.ok()) {
      std::fprintf(stderr, "%s\n", backbone.status().ToString().c_str());
      return 1;
    }
    const torch::Tensor input = (*backbone)->Preprocess(
        torch::randint(0, 256, {batch, size, size, 3}, torch::kByte));

    for (bool channels_last : {true, false}) {
      (*backbone)->graph().SetChannelsLast(channels_last);
      double seconds = 0;
      for (int i = 0; i <= batches; ++i) {
        const auto start = std::chrono::steady_clock::now();
        absl::StatusOr<TapMap> taps = (*backbone)->Forward(input, {"pooled"});
        const auto end = std::chrono::steady_clock::now();
        if (!taps.ok()) {
          std::fprintf(stderr, "%s\n", taps.status().ToString().c_str());
          return 1;
        }
        if (i > 0) seconds += std::chrono::duration<double>(end - start).count();
      }
      std::printf("input %dx%d, %-13s %8.1f images/s\n", size, size,
                  channels_last ? "channels-last" : "contiguous",
                  batch * batches / seconds);
    }
  }
  return 0;
}

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  if (argc < 2 || argc > 5) {
    std::fprintf(stderr, "usage: %s WEIGHTS_FILE [THREADS=2] [BATCH=32] [BATCHES=5]\n",
                 argv[0]);
    return 2;
  }
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int batch = argc > 3 ? std::atoi(argv[3]) : 32;
  const int batches = argc > 4 ? std::atoi(argv[4]) : 5;
  if (threads < 1 || batch < 1 || batches < 1) {
    std::fprintf(stderr, "THREADS, BATCH and BATCHES must be positive integers\n");
    return 2;
  }
  return panda::Run(argv[1], threads, batch, batches);
}
