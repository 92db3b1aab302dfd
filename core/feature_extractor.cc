#include "core/feature_extractor.h"

#include <algorithm>
#include <functional>
#include <new>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/bounded_queue.h"
#include "core/progress_bar.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda {
namespace {

// "images 3 to 5" for the batch [begin, end).
std::string ImageRange(int64_t begin, int64_t end) {
  return absl::StrCat("images ", begin, " to ", end - 1);
}

// A function returning the uint8 images [begin, end) of those being
// extracted. It is called for consecutive batches in order, from one thread
// at a time.
using ImageSource =
    std::function<absl::StatusOr<torch::Tensor>(int64_t begin, int64_t end)>;

// Gets images [begin, end) from `source`, copies them to `device` and
// preprocesses them. Turns LibTorch's exceptions into a Status, because on
// the prefetch thread an escaping exception would end the process.
absl::StatusOr<torch::Tensor> PrepareBatch(const Backbone& backbone,
                                           const ImageSource& source, int64_t begin,
                                           int64_t end, const torch::Device& device,
                                           const std::string& label) {
  try {
    absl::StatusOr<torch::Tensor> images = source(begin, end);
    if (!images.ok()) {
      return absl::Status(images.status().code(),
                          absl::StrCat(label, ": reading ", ImageRange(begin, end), ": ",
                                       images.status().message()));
    }
    return backbone.Preprocess(images->to(device));
  } catch (const c10::OutOfMemoryError& error) {
    return absl::ResourceExhaustedError(
        absl::StrCat(label, ": out of memory while preparing ", ImageRange(begin, end), ": ",
                     error.what_without_backtrace()));
  } catch (const std::bad_alloc& error) {
    return absl::ResourceExhaustedError(absl::StrCat(
        label, ": out of memory while preparing ", ImageRange(begin, end), ": ", error.what()));
  } catch (const c10::Error& error) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": preprocessing ",
                                                   ImageRange(begin, end), " failed: ",
                                                   error.what_without_backtrace()));
  }
}

// Prepares the batches of `count` images in order on its own thread, at most
// `kQueueCapacity` + 1 batches ahead of Next(). The destructor stops and
// joins the thread, also when the caller returns early or throws.
class BatchPrefetcher {
 public:
  BatchPrefetcher(const Backbone& backbone, int64_t count, const ImageSource& source,
                  int64_t batch_size, const torch::Device& device, const std::string& label)
      : label_(label), queue_(kQueueCapacity) {
    // LibTorch 1.13's OpenMP build sizes a thread's team on that thread's
    // first parallel operation, from a process-wide setting that Produce()
    // lowers to 1 while it runs. Querying the count here sizes this
    // thread's team now, so the forward pass keeps its threads.
    torch::get_num_threads();
    thread_ = std::thread([this, &backbone, count, &source, batch_size, device, &label] {
      Produce(backbone, count, source, batch_size, device, label);
    });
  }

  ~BatchPrefetcher() {
    queue_.Close();
    thread_.join();
  }

  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Returns the next batch's preprocessed input, or the error preparing it.
  absl::StatusOr<torch::Tensor> Next() {
    std::optional<absl::StatusOr<torch::Tensor>> input = queue_.Pop();
    // The producer closes the queue early only after pushing an error, and
    // the caller stops at that error.
    if (!input.has_value()) {
      return absl::InternalError(
          absl::StrCat(label_, ": the prefetch thread stopped before the last batch"));
    }
    return *std::move(input);
  }

 private:
  static constexpr size_t kQueueCapacity = 1;

  void Produce(const Backbone& backbone, int64_t count, const ImageSource& source,
               int64_t batch_size, const torch::Device& device, const std::string& label) {
    // Grad mode is thread-local in LibTorch, so the caller's guard does not
    // reach this thread.
    torch::NoGradGuard no_grad;
    // Preprocessing on one thread leaves the cores to the forward pass
    // instead of oversubscribing them with a second OpenMP team. The count
    // is also a process-wide setting, so it is restored at the end.
    const int previous_threads = torch::get_num_threads();
    torch::set_num_threads(1);

    for (int64_t begin = 0; begin < count; begin += batch_size) {
      const int64_t end = std::min(count, begin + batch_size);
      absl::StatusOr<torch::Tensor> input =
          PrepareBatch(backbone, source, begin, end, device, label);
      const bool failed = !input.ok();
      if (!queue_.Push(std::move(input)) || failed) break;
    }
    queue_.Close();
    torch::set_num_threads(previous_threads);
  }

  const std::string& label_;
  BoundedQueue<absl::StatusOr<torch::Tensor>> queue_;
  std::thread thread_;
};

// Runs the forward pass on the preprocessed batch [begin, end) and hands
// its outputs to `consume`.
absl::Status ExtractBatch(Backbone& backbone, const torch::Tensor& input, int64_t begin,
                          int64_t end, const std::string& label,
                          const std::vector<std::string>& taps, const BatchConsumer& consume) {
  absl::StatusOr<TapMap> outputs = backbone.Forward(input, taps);
  if (!outputs.ok()) {
    return absl::Status(outputs.status().code(),
                        absl::StrCat(label, ": ", ImageRange(begin, end), ": ",
                                     outputs.status().message()));
  }
  return consume(*outputs, begin, end);
}

}  // namespace

bool HasSpareCoreForPrefetch() {
  return static_cast<int>(std::thread::hardware_concurrency()) > torch::get_num_threads();
}

absl::Status CheckFiniteRows(const torch::Tensor& rows, int64_t begin,
                             const std::string& label) {
  const torch::Tensor finite = torch::isfinite(rows.flatten(1)).all(/*dim=*/1);
  if (finite.all().item<bool>()) return absl::OkStatus();
  const int64_t first = begin + torch::nonzero(finite.logical_not())[0][0].item<int64_t>();
  return absl::InvalidArgumentError(absl::StrCat(
      label, ": the backbone produced NaN or infinite features for image ", first,
      "; the weights or the adaptation have diverged"));
}

namespace {

// The loop behind both ForEachFeatureBatch and ExtractPooledFeatures: runs
// the `count` images that `source` returns through the backbone in batches.
absl::Status ForEachSourceBatch(Backbone& backbone, int64_t count, const ImageSource& source,
                                int64_t batch_size, const torch::Device& device,
                                const std::string& label,
                                const std::vector<std::string>& taps,
                                const BatchConsumer& consume,
                                const FeatureExtractionOptions& options) {
  if (batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": batch size must be at least 1, got ", batch_size));
  }

  torch::NoGradGuard no_grad;
  backbone.module().eval();
  backbone.module().to(device);
  ProgressBar progress(label, count, "images");

  std::optional<BatchPrefetcher> prefetcher;
  if (options.prefetch) prefetcher.emplace(backbone, count, source, batch_size, device, label);

  for (int64_t begin = 0; begin < count; begin += batch_size) {
    const int64_t end = std::min(count, begin + batch_size);
    PANDA_ASSIGN_OR_RETURN(torch::Tensor input,
                           prefetcher.has_value()
                               ? prefetcher->Next()
                               : PrepareBatch(backbone, source, begin, end, device, label));
    PANDA_RETURN_IF_ERROR(ExtractBatch(backbone, input, begin, end, label, taps, consume));
    progress.Advance(end - begin);
  }
  return absl::OkStatus();
}

// Copies the "pooled" outputs of each batch into rows of `features`,
// float32 [count, D] on the CPU.
BatchConsumer PooledFeatureConsumer(torch::Tensor& features, const std::string& label) {
  return [&features, &label](const TapMap& outputs, int64_t begin, int64_t end) {
    torch::Tensor pooled = outputs.at("pooled").to(torch::kCPU, torch::kFloat32);
    PANDA_RETURN_IF_ERROR(CheckFiniteRows(pooled, begin, label));
    features.slice(0, begin, end).copy_(pooled);
    return absl::OkStatus();
  };
}

}  // namespace

absl::Status ForEachFeatureBatch(Backbone& backbone, const torch::Tensor& images,
                                 int64_t batch_size, const torch::Device& device,
                                 const std::string& label,
                                 const std::vector<std::string>& taps,
                                 const BatchConsumer& consume,
                                 const FeatureExtractionOptions& options) {
  const ImageSource slices = [&images](int64_t begin, int64_t end) {
    return absl::StatusOr<torch::Tensor>(images.slice(0, begin, end));
  };
  return ForEachSourceBatch(backbone, images.size(0), slices, batch_size, device, label, taps,
                            consume, options);
}

absl::StatusOr<torch::Tensor> ExtractPooledFeatures(Backbone& backbone,
                                                    const torch::Tensor& images,
                                                    int64_t batch_size,
                                                    const torch::Device& device,
                                                    const std::string& label,
                                                    const FeatureExtractionOptions& options) {
  torch::Tensor features = torch::empty({images.size(0), backbone.feature_dim()}, torch::kFloat32);
  PANDA_RETURN_IF_ERROR(ForEachFeatureBatch(backbone, images, batch_size, device, label,
                                            {"pooled"}, PooledFeatureConsumer(features, label),
                                            options));
  return features;
}

absl::StatusOr<torch::Tensor> ExtractPooledFeatures(Backbone& backbone, ImageStream& stream,
                                                    const torch::Device& device,
                                                    const std::string& label,
                                                    const FeatureExtractionOptions& options) {
  const ImageSource next_batch = [&stream](int64_t begin,
                                           int64_t end) -> absl::StatusOr<torch::Tensor> {
    PANDA_ASSIGN_OR_RETURN(torch::Tensor images, stream.Next());
    if (images.dim() < 1 || images.size(0) != end - begin) {
      return absl::InternalError(absl::StrCat("the image stream returned ",
                                              images.dim() < 1 ? 0 : images.size(0),
                                              " images for a batch of ", end - begin));
    }
    return images;
  };
  torch::Tensor features = torch::empty({stream.size(), backbone.feature_dim()}, torch::kFloat32);
  PANDA_RETURN_IF_ERROR(ForEachSourceBatch(backbone, stream.size(), next_batch,
                                           stream.batch_size(), device, label, {"pooled"},
                                           PooledFeatureConsumer(features, label), options));
  return features;
}

}  // namespace panda
