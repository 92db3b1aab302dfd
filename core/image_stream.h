// Reads chosen images of a split in batches on a background thread, in a
// fixed order and a few batches ahead of the consumer, so that decoding
// overlaps the consumer's work on earlier batches and only those few
// batches are in memory at once.
//
//   PANDA_ASSIGN_OR_RETURN(std::unique_ptr<ImageStream> stream,
//                          ImageStream::Start(reader, kept,
//                          /*batch_size=*/64));
//   for (int64_t b = 0; b < stream->num_batches(); ++b) {
//     PANDA_ASSIGN_OR_RETURN(torch::Tensor images, stream->Next());
//     Use(images);
//   }
#ifndef PANDA_CORE_IMAGE_STREAM_H_
#define PANDA_CORE_IMAGE_STREAM_H_

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bounded_queue.h"
#include "datasets/dataset.h"
#include "torch/types.h"

namespace panda {

class ImageStream {
 public:
  // Number of read batches that may wait for the consumer, by default. One
  // more may be in the middle of its Read.
  static constexpr int kDefaultDepth = 2;

  // Starts reading the images `indices` of `reader` in batches of
  // `batch_size`: batch b starts at indices[b * batch_size], in order.
  // `reader` must outlive the stream. A batch_size or depth below 1 is
  // InvalidArgument, and an index outside the reader's split OutOfRange.
  static absl::StatusOr<std::unique_ptr<ImageStream>> Start(
      const SplitReader& reader, std::vector<int64_t> indices,
      int64_t batch_size, int depth = kDefaultDepth);

  // Stops reading and joins the background thread. This waits for the
  // batch being read, if any, but not for the batches after it.
  ~ImageStream();

  ImageStream(const ImageStream&) = delete;
  ImageStream& operator=(const ImageStream&) = delete;

  // Number of images the stream reads.
  int64_t size() const { return static_cast<int64_t>(indices_.size()); }
  int64_t batch_size() const { return batch_size_; }
  int64_t num_batches() const {
    return (size() + batch_size_ - 1) / batch_size_;
  }

  // Returns the next batch as SplitReader::Read returns it: uint8
  // [n, H, W, C], n = batch_size except for a shorter last batch. A batch
  // that fails to read returns the reader's error, which names the file, and
  // nothing is read after it. Calling Next again after an error is
  // FailedPrecondition, and after the last batch OutOfRange. Call it from
  // one thread at a time.
  absl::StatusOr<torch::Tensor> Next();

 private:
  ImageStream(const SplitReader& reader, std::vector<int64_t> indices,
              int64_t batch_size, int depth);

  // The background thread: reads every batch in order into queue_.
  void Produce();

  const SplitReader& reader_;
  const std::vector<int64_t> indices_;
  const int64_t batch_size_;
  BoundedQueue<absl::StatusOr<torch::Tensor>> queue_;
  // Consumer side: the first image of the next batch, and whether a batch
  // has failed.
  int64_t next_begin_ = 0;
  bool failed_ = false;
  std::thread producer_;
};

}  // namespace panda

#endif  // PANDA_CORE_IMAGE_STREAM_H_
