#include "core/image_stream.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace panda {
namespace {

// Reads `indices` from `reader`, turning exceptions into a Status, because
// one escaping the background thread would end the process.
absl::StatusOr<torch::Tensor> ReadBatch(const SplitReader& reader,
                                        absl::Span<const int64_t> indices) {
  try {
    return reader.Read(indices);
  } catch (const std::bad_alloc& error) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of memory while reading ", indices.size(),
                     " images: ", error.what()));
  } catch (const c10::Error& error) {
    return absl::InternalError(
        absl::StrCat("reading ", indices.size(),
                     " images failed: ", error.what_without_backtrace()));
  } catch (const std::exception& error) {
    return absl::InternalError(absl::StrCat("reading ", indices.size(),
                                            " images failed: ", error.what()));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ImageStream>> ImageStream::Start(
    const SplitReader& reader, std::vector<int64_t> indices, int64_t batch_size,
    int depth) {
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image stream: batch size must be at least 1, got ", batch_size));
  }
  if (depth < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("image stream: depth must be at least 1, got ", depth));
  }
  const absl::Status checked = CheckReadIndices(indices, reader.size());
  if (!checked.ok()) return checked;
  // The constructor is private, so std::make_unique cannot call it.
  return std::unique_ptr<ImageStream>(
      new ImageStream(reader, std::move(indices), batch_size, depth));
}

ImageStream::ImageStream(const SplitReader& reader,
                         std::vector<int64_t> indices, int64_t batch_size,
                         int depth)
    : reader_(reader),
      indices_(std::move(indices)),
      batch_size_(batch_size),
      queue_(static_cast<size_t>(depth)) {
  // Started last, so that the thread finds every member initialised.
  producer_ = std::thread([this] { Produce(); });
}

ImageStream::~ImageStream() {
  // A producer blocked in Push wakes up and stops. One in the middle of a
  // Read stops after that batch.
  queue_.Close();
  producer_.join();
}

void ImageStream::Produce() {
  const absl::Span<const int64_t> all(indices_);
  for (int64_t begin = 0; begin < size(); begin += batch_size_) {
    const int64_t end = std::min(size(), begin + batch_size_);
    absl::StatusOr<torch::Tensor> images =
        ReadBatch(reader_, all.subspan(begin, end - begin));
    const bool failed = !images.ok();
    if (!queue_.Push(std::move(images)) || failed) break;
  }
  queue_.Close();
}

absl::StatusOr<torch::Tensor> ImageStream::Next() {
  if (failed_) {
    return absl::FailedPreconditionError(
        "image stream: Next() called after a batch failed to read");
  }
  if (next_begin_ >= size()) {
    return absl::OutOfRangeError(absl::StrCat(
        "image stream: Next() called after the last of ", size(), " images"));
  }
  const int64_t end = std::min(size(), next_begin_ + batch_size_);

  std::optional<absl::StatusOr<torch::Tensor>> images = queue_.Pop();
  // The producer closes the queue early only after pushing an error, which
  // sets failed_ above, so this is a bug rather than a user error.
  if (!images.has_value()) {
    failed_ = true;
    return absl::InternalError(
        absl::StrCat("image stream: reading stopped before images ",
                     next_begin_, " to ", end - 1));
  }
  if (!images->ok()) failed_ = true;
  next_begin_ = end;
  return *std::move(images);
}

}  // namespace panda
