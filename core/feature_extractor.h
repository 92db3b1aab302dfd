// Batched feature extraction with a progress bar.
#ifndef PANDA_CORE_FEATURE_EXTRACTOR_H_
#define PANDA_CORE_FEATURE_EXTRACTOR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "core/image_stream.h"
#include "torch/types.h"

namespace panda {

// True when the machine has a core beyond LibTorch's intra-op threads for
// the preparing thread. With none spare (2 cores, 2 threads), prefetching
// cost MobileNetV2 4% and gained the ResNets 1 to 3%, within the noise
// (docs/BENCHMARKS_BACKBONES.md), so it is off by default there.
bool HasSpareCoreForPrefetch();

struct FeatureExtractionOptions {
  // Whether a second thread prepares the next batches (slice, copy to the
  // device, Backbone::Preprocess) while the current batch's forward pass
  // runs. That thread stays at most two batches ahead and preprocesses with
  // one intra-op thread, so the forward pass keeps the caller's threads.
  // The features are the same either way, bit for bit on the CPU.
  // NOTE: LibTorch 1.13 sizes each thread's intra-op team from a
  // process-wide count, which is 1 while that thread runs. So another thread
  // whose first parallel LibTorch operation falls in that time keeps one.
  bool prefetch = HasSpareCoreForPrefetch();
};

// Runs `backbone` in eval mode without gradients over uint8 [N, H, W, C] CPU
// `images` in batches of `batch_size` on `device`, and returns the "pooled"
// features as float32 [N, D] on the CPU. `label` titles the progress bar and
// starts every error message.
//
// With options.prefetch, Backbone::Preprocess runs on another thread at the
// same time as Backbone::Forward, so it must not touch state that Forward
// changes. The backbones in this repository read only their options there.
//
// Errors: a batch_size below 1 is InvalidArgument. A LibTorch failure while
// preparing a batch is ResourceExhausted when memory ran out and
// InvalidArgument otherwise, and a Forward error keeps its code. These
// messages name the batch's images. Non-finite features (NaN or infinity)
// are an InvalidArgument error that names the first offending image.
absl::StatusOr<torch::Tensor> ExtractPooledFeatures(
    Backbone& backbone, const torch::Tensor& images, int64_t batch_size,
    const torch::Device& device, const std::string& label,
    const FeatureExtractionOptions& options = {});

// The same over the images of `stream`, in its batches, with features in
// the stream's order: float32 [stream.size(), D]. Each batch decodes on the
// stream's thread while earlier batches run through the backbone, so only a
// few batches of images are in memory at once. The features equal those of
// the variant above over the same images and batch size, bit for bit on the
// CPU. A batch that fails to read is an error with the stream's code,
// naming `label`, the batch's images and the reader's file.
absl::StatusOr<torch::Tensor> ExtractPooledFeatures(
    Backbone& backbone, ImageStream& stream, const torch::Device& device,
    const std::string& label, const FeatureExtractionOptions& options = {});

// Receives the outputs of the batch of images [begin, end).
using BatchConsumer =
    std::function<absl::Status(const TapMap& outputs, int64_t begin, int64_t end)>;

// The loop behind ExtractPooledFeatures, for other outputs: runs every batch
// through Backbone::Forward with `taps` and hands the outputs to `consume`,
// stopping at its first error. Same modes, threads and errors as above.
absl::Status ForEachFeatureBatch(Backbone& backbone, const torch::Tensor& images,
                                 int64_t batch_size, const torch::Device& device,
                                 const std::string& label,
                                 const std::vector<std::string>& taps,
                                 const BatchConsumer& consume,
                                 const FeatureExtractionOptions& options = {});

// Returns OK when every row (index 0) of `rows` is finite. Otherwise an
// InvalidArgument error starting with `label` names the first offending
// image as `begin` plus its row.
absl::Status CheckFiniteRows(const torch::Tensor& rows, int64_t begin,
                             const std::string& label);

}  // namespace panda

#endif  // PANDA_CORE_FEATURE_EXTRACTOR_H_
