#include "scorers/hnsw_index.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

// hnswlib 0.6.2 with SSE prefetches the entry after the last one of a link
// list (searchBaseLayer in hnswalg.h), which reads up to 4 bytes past the
// end of a full list's allocation. The read only feeds a prefetch, but
// AddressSanitizer reports it, so builds with AddressSanitizer turn off
// hnswlib's manual vectorisation, which drops those prefetches and computes
// distances with its scalar functions instead.
#if defined(__SANITIZE_ADDRESS__)
#define NO_MANUAL_VECTORIZATION
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_MANUAL_VECTORIZATION
#endif
#endif
#include "hnswlib/hnswlib.h"

namespace panda {
namespace {

constexpr int64_t kMaxLinks = 10000;  // hnswlib caps m here, with a warning

std::unique_ptr<hnswlib::SpaceInterface<float>> MakeSpace(HnswSpace space,
                                                          int64_t dim) {
  if (space == HnswSpace::kInnerProduct) {
    return std::make_unique<hnswlib::InnerProductSpace>(dim);
  }
  return std::make_unique<hnswlib::L2Space>(dim);
}

// Runs `work(begin, end)` on `num_threads` threads over disjoint ranges of
// [0, count) and returns the first exception's message, if any.
template <typename Work>
std::string RunInParallel(int64_t count, int num_threads, const Work& work) {
  std::mutex mutex;
  std::string first_error;
  auto guarded = [&](int64_t begin, int64_t end) {
    try {
      work(begin, end);
    } catch (const std::exception& error) {
      std::lock_guard<std::mutex> lock(mutex);
      if (first_error.empty()) first_error = error.what();
    }
  };

  const int64_t threads =
      std::clamp<int64_t>(num_threads, 1, std::max<int64_t>(1, count));
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < threads; ++t) {
    workers.emplace_back(guarded, count * t / threads,
                         count * (t + 1) / threads);
  }
  guarded(0, count / threads);
  for (std::thread& worker : workers) worker.join();
  return first_error;
}

}  // namespace

struct HnswIndex::Impl {
  int64_t dim = 0;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  // Guards the graph's ef, which each Search() sets.
  mutable std::mutex search_mutex;
};

HnswIndex::HnswIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HnswIndex::~HnswIndex() = default;

absl::StatusOr<std::unique_ptr<HnswIndex>> HnswIndex::Build(
    const float* rows, int64_t count, int64_t dim, HnswSpace space, int64_t m,
    int64_t ef_construction, int num_threads) {
  if (count < 1 || dim < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "an HNSW index needs at least one row and one dimension, but got ",
        count, " rows of ", dim, " dimensions"));
  }
  // hnswlib numbers nodes with unsigned int.
  if (count >= std::numeric_limits<unsigned int>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("an HNSW index holds fewer than 2^32 - 1 rows, but got ",
                     count));
  }
  if (m < 2 || m > kMaxLinks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "m = ", m, " is invalid because m must be in [2, ", kMaxLinks, "]"));
  }
  if (ef_construction < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ef_construction = ", ef_construction,
                     " is invalid because it must be at least 1"));
  }
  if (num_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads = ", num_threads, " must be at least 1"));
  }

  auto impl = std::make_unique<Impl>();
  impl->dim = dim;
  impl->space = MakeSpace(space, dim);
  try {
    impl->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        impl->space.get(), static_cast<size_t>(count), static_cast<size_t>(m),
        static_cast<size_t>(ef_construction));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "out of memory allocating an HNSW index of ", count, " rows"));
  } catch (const std::exception& error) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "could not allocate an HNSW index of ", count, " rows: ", error.what()));
  }

  hnswlib::HierarchicalNSW<float>& graph = *impl->graph;
  auto insert = [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      graph.addPoint(rows + row * dim, static_cast<hnswlib::labeltype>(row));
    }
  };
  // The first row becomes the entry point alone, as hnswlib's own Python
  // bindings do, before the threads insert the rest concurrently.
  std::string error = RunInParallel(1, 1, insert);
  if (error.empty()) {
    error = RunInParallel(count - 1, num_threads, [&](int64_t begin,
                                                      int64_t end) {
      insert(begin + 1, end + 1);
    });
  }
  if (!error.empty()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("building the HNSW index failed: ", error));
  }
  return std::unique_ptr<HnswIndex>(new HnswIndex(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<HnswIndex>> HnswIndex::LoadVerifiedFile(
    const std::string& path, int64_t dim, HnswSpace space) {
  auto impl = std::make_unique<Impl>();
  impl->dim = dim;
  impl->space = MakeSpace(space, dim);
  try {
    impl->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        impl->space.get(), path);
  } catch (const std::exception& error) {
    return absl::DataLossError(
        absl::StrCat("hnswlib could not load ", path, ": ", error.what()));
  }

  // The stored record layout must match vectors of `dim` floats.
  const hnswlib::HierarchicalNSW<float>& graph = *impl->graph;
  const size_t expected_record = graph.size_links_level0_ +
                                 impl->space->get_data_size() +
                                 sizeof(hnswlib::labeltype);
  if (graph.size_data_per_element_ != expected_record) {
    return absl::DataLossError(absl::StrCat(
        "HNSW index ", path, " stores records of ",
        graph.size_data_per_element_, " bytes, but vectors of ", dim,
        " dimensions need ", expected_record));
  }
  if (graph.cur_element_count == 0 ||
      graph.enterpoint_node_ >= graph.cur_element_count) {
    return absl::DataLossError(
        absl::StrCat("HNSW index ", path, " has no valid entry point"));
  }
  return std::unique_ptr<HnswIndex>(new HnswIndex(std::move(impl)));
}

absl::Status HnswIndex::Save(const std::string& path) const {
  try {
    impl_->graph->saveIndex(path);
  } catch (const std::exception& error) {
    return absl::InternalError(
        absl::StrCat("failed to write HNSW index ", path, ": ", error.what()));
  }
  // saveIndex() checks no stream state, so a full disk shows only as a short
  // file.
  std::error_code error;
  const uintmax_t written = std::filesystem::file_size(path, error);
  if (error || written != static_cast<uintmax_t>(SerializedBytes())) {
    return absl::InternalError(absl::StrCat(
        "failed to write HNSW index ", path, ": expected ", SerializedBytes(),
        " bytes, found ", error ? 0 : written,
        error ? absl::StrCat(" (", error.message(), ")") : ""));
  }
  return absl::OkStatus();
}

int64_t HnswIndex::SerializedBytes() const {
  const hnswlib::HierarchicalNSW<float>& graph = *impl_->graph;
  // The fields saveIndex() writes first, in its order.
  int64_t bytes = sizeof(graph.offsetLevel0_) + sizeof(graph.max_elements_) +
                  sizeof(graph.cur_element_count) +
                  sizeof(graph.size_data_per_element_) +
                  sizeof(graph.label_offset_) + sizeof(graph.offsetData_) +
                  sizeof(graph.maxlevel_) + sizeof(graph.enterpoint_node_) +
                  sizeof(graph.maxM_) + sizeof(graph.maxM0_) +
                  sizeof(graph.M_) + sizeof(graph.mult_) +
                  sizeof(graph.ef_construction_);
  bytes += static_cast<int64_t>(graph.cur_element_count *
                                graph.size_data_per_element_);
  for (size_t i = 0; i < graph.cur_element_count; ++i) {
    bytes += sizeof(unsigned int);
    if (graph.element_levels_[i] > 0) {
      bytes += static_cast<int64_t>(graph.size_links_per_element_) *
               graph.element_levels_[i];
    }
  }
  return bytes;
}

absl::Status HnswIndex::Search(const float* queries, int64_t count, int64_t k,
                               int64_t ef, int num_threads, float* distances,
                               int64_t* labels) const {
  if (k < 1 || k > size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k = ", k, " is invalid because it must be in [1, ", size(), "]"));
  }
  if (ef < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ef = ", ef, " is invalid because it must be at least 1"));
  }
  if (num_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads = ", num_threads, " must be at least 1"));
  }

  std::lock_guard<std::mutex> lock(impl_->search_mutex);
  hnswlib::HierarchicalNSW<float>& graph = *impl_->graph;
  graph.setEf(static_cast<size_t>(std::max(ef, k)));
  std::mutex short_mutex;
  int64_t short_query = -1;
  size_t short_count = 0;
  const std::string error =
      RunInParallel(count, num_threads, [&](int64_t begin, int64_t end) {
        for (int64_t q = begin; q < end; ++q) {
          auto nearest = graph.searchKnn(queries + q * impl_->dim,
                                         static_cast<size_t>(k));
          if (nearest.size() != static_cast<size_t>(k)) {
            std::lock_guard<std::mutex> guard(short_mutex);
            if (short_query < 0) {
              short_query = q;
              short_count = nearest.size();
            }
            continue;
          }
          // The queue pops the farthest first.
          for (int64_t j = k - 1; j >= 0; --j) {
            distances[q * k + j] = nearest.top().first;
            labels[q * k + j] = static_cast<int64_t>(nearest.top().second);
            nearest.pop();
          }
        }
      });
  if (!error.empty()) {
    return absl::InternalError(absl::StrCat("HNSW search failed: ", error));
  }
  if (short_query >= 0) {
    return absl::InternalError(absl::StrCat(
        "HNSW search found ", short_count, " of ", k,
        " neighbours for query ", short_query,
        "; a larger ef or m may reach more of the graph"));
  }
  return absl::OkStatus();
}

int64_t HnswIndex::size() const {
  return static_cast<int64_t>(impl_->graph->cur_element_count);
}

int64_t HnswIndex::dim() const { return impl_->dim; }

int64_t HnswIndex::m() const {
  return static_cast<int64_t>(impl_->graph->M_);
}

}  // namespace panda
