// Approximate k-nearest-neighbour search on an HNSW graph (Malkov and
// Yashunin, "Efficient and robust approximate nearest neighbor search using
// Hierarchical Navigable Small World graphs", 2018), built by Debian's
// hnswlib 0.6.2:
//
//   PANDA_ASSIGN_OR_RETURN(
//       std::unique_ptr<HnswIndex> index,
//       HnswIndex::Build(rows, count, dim, HnswSpace::kSquaredL2,
//                        /*m=*/16, /*ef_construction=*/200, /*threads=*/2));
//   PANDA_RETURN_IF_ERROR(index->Search(queries, num_queries, /*k=*/2,
//                                       /*ef=*/64, /*threads=*/2, distances,
//                                       labels));
//
// hnswlib.h defines functions outside any class without `inline`, so only
// one translation unit per binary may include it: hnsw_index.cc. Everything
// else reaches hnswlib through this class.
#ifndef PANDA_SCORERS_HNSW_INDEX_H_
#define PANDA_SCORERS_HNSW_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace panda {

// Distance that the graph is built and searched with.
enum class HnswSpace {
  // |x - y|^2 (hnswlib's L2Space).
  kSquaredL2 = 0,
  // 1 - x.y (hnswlib's InnerProductSpace); the cosine distance for unit rows.
  kInnerProduct = 1,
};

class HnswIndex {
 public:
  ~HnswIndex();
  HnswIndex(const HnswIndex&) = delete;
  HnswIndex& operator=(const HnswIndex&) = delete;

  // Builds an index over float32 `rows` ([count, dim], row-major), labelling
  // row i with i. `m` is the number of links per node (2 to 10000) and
  // `ef_construction` the candidate list size during insertion (>= 1).
  // `num_threads` (>= 1) threads insert disjoint ranges of rows; the graph
  // then depends on thread timing, so only a one-thread build is
  // reproducible. Invalid arguments are InvalidArgument, a failed allocation
  // ResourceExhausted.
  static absl::StatusOr<std::unique_ptr<HnswIndex>> Build(
      const float* rows, int64_t count, int64_t dim, HnswSpace space,
      int64_t m, int64_t ef_construction, int num_threads);

  // Loads an index that Save() wrote to `path`, for vectors of `dim`
  // dimensions in `space`. hnswlib checks little of what it reads and may
  // crash on damaged input, so pass only files whose bytes were verified,
  // as ReadHnswIndexFile() does. Errors are DataLoss.
  static absl::StatusOr<std::unique_ptr<HnswIndex>> LoadVerifiedFile(
      const std::string& path, int64_t dim, HnswSpace space);

  // Writes hnswlib's serialisation of the index to `path`, not atomically:
  // WriteHnswIndexFile() wraps it in a checked file.
  absl::Status Save(const std::string& path) const;

  // Number of bytes Save() writes.
  int64_t SerializedBytes() const;

  // Finds `k` (>= 1, at most size()) approximate nearest rows of each of the
  // `count` float32 `queries` ([count, dim], row-major), exploring `ef`
  // candidates per query (raised to k if smaller). Writes [count, k]
  // ascending distances to `distances` and labels to `labels`, both
  // row-major. `num_threads` (>= 1) threads split the queries. Internal if
  // hnswlib returns fewer than k neighbours. Concurrent calls are serialised
  // because the candidate list size is a property of the whole index.
  absl::Status Search(const float* queries, int64_t count, int64_t k,
                      int64_t ef, int num_threads, float* distances,
                      int64_t* labels) const;

  int64_t size() const;
  int64_t dim() const;
  // Links per node, as built.
  int64_t m() const;

 private:
  struct Impl;
  explicit HnswIndex(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace panda

#endif  // PANDA_SCORERS_HNSW_INDEX_H_
