#include "scorers/hnsw_index.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

std::vector<float> RandomRows(int64_t count, int64_t dim, uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> rows(count * dim);
  for (float& value : rows) value = normal(generator);
  return rows;
}

void NormaliseRows(std::vector<float>& rows, int64_t dim) {
  for (size_t start = 0; start < rows.size(); start += dim) {
    double norm = 0;
    for (int64_t c = 0; c < dim; ++c) norm += rows[start + c] * rows[start + c];
    norm = std::sqrt(norm);
    for (int64_t c = 0; c < dim; ++c) rows[start + c] /= norm;
  }
}

double ReferenceDistance(const float* x, const float* y, int64_t dim,
                         HnswSpace space) {
  double squared = 0;
  double dot = 0;
  for (int64_t c = 0; c < dim; ++c) {
    squared += (static_cast<double>(x[c]) - y[c]) * (static_cast<double>(x[c]) - y[c]);
    dot += static_cast<double>(x[c]) * y[c];
  }
  return space == HnswSpace::kInnerProduct ? 1.0 - dot : squared;
}

struct SearchResult {
  std::vector<float> distances;
  std::vector<int64_t> labels;
};

SearchResult SearchAll(const HnswIndex& index, const std::vector<float>& queries,
                       int64_t k, int64_t ef, int threads) {
  const int64_t count = static_cast<int64_t>(queries.size()) / index.dim();
  SearchResult result{std::vector<float>(count * k),
                      std::vector<int64_t>(count * k)};
  const absl::Status status =
      index.Search(queries.data(), count, k, ef, threads,
                   result.distances.data(), result.labels.data());
  EXPECT_TRUE(status.ok()) << status;
  return result;
}

// Checks each returned distance against the double-precision distance of
// its label, the ascending order, and returns recall@k against brute force.
double CheckAndMeasureRecall(const std::vector<float>& rows,
                             const std::vector<float>& queries, int64_t dim,
                             HnswSpace space, int64_t k,
                             const SearchResult& result) {
  const int64_t count = static_cast<int64_t>(rows.size()) / dim;
  const int64_t num_queries = static_cast<int64_t>(queries.size()) / dim;
  int64_t found = 0;
  for (int64_t q = 0; q < num_queries; ++q) {
    std::vector<std::pair<double, int64_t>> exact;
    for (int64_t r = 0; r < count; ++r) {
      exact.emplace_back(
          ReferenceDistance(&queries[q * dim], &rows[r * dim], dim, space), r);
    }
    std::sort(exact.begin(), exact.end());
    std::set<int64_t> truth;
    for (int64_t j = 0; j < k; ++j) truth.insert(exact[j].second);

    for (int64_t j = 0; j < k; ++j) {
      const int64_t label = result.labels[q * k + j];
      EXPECT_GE(label, 0);
      EXPECT_LT(label, count);
      if (label < 0 || label >= count) continue;
      EXPECT_NEAR(result.distances[q * k + j],
                  ReferenceDistance(&queries[q * dim], &rows[label * dim], dim,
                                    space),
                  1e-4)
          << "query " << q << ", rank " << j;
      if (j > 0) {
        EXPECT_LE(result.distances[q * k + j - 1], result.distances[q * k + j]);
      }
      found += truth.count(label);
    }
  }
  return static_cast<double>(found) / (num_queries * k);
}

TEST(HnswIndexTest, FindsTrueNeighboursWithLargeEf) {
  const int64_t dim = 12;
  const std::vector<float> rows = RandomRows(600, dim, 1);
  const std::vector<float> queries = RandomRows(50, dim, 2);
  absl::StatusOr<std::unique_ptr<HnswIndex>> index = HnswIndex::Build(
      rows.data(), 600, dim, HnswSpace::kSquaredL2, 16, 200, 1);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->size(), 600);
  EXPECT_EQ((*index)->dim(), dim);
  EXPECT_EQ((*index)->m(), 16);

  const SearchResult result = SearchAll(**index, queries, 3, 600, 1);
  EXPECT_GE(CheckAndMeasureRecall(rows, queries, dim, HnswSpace::kSquaredL2, 3,
                                  result),
            0.99);
}

TEST(HnswIndexTest, InnerProductOnUnitRowsIsCosineDistance) {
  const int64_t dim = 10;
  std::vector<float> rows = RandomRows(400, dim, 3);
  std::vector<float> queries = RandomRows(30, dim, 4);
  NormaliseRows(rows, dim);
  NormaliseRows(queries, dim);
  absl::StatusOr<std::unique_ptr<HnswIndex>> index = HnswIndex::Build(
      rows.data(), 400, dim, HnswSpace::kInnerProduct, 16, 200, 1);
  ASSERT_TRUE(index.ok()) << index.status();
  const SearchResult result = SearchAll(**index, queries, 2, 400, 2);
  EXPECT_GE(CheckAndMeasureRecall(rows, queries, dim,
                                  HnswSpace::kInnerProduct, 2, result),
            0.99);
}

TEST(HnswIndexTest, MultiThreadedBuildHoldsEveryRow) {
  // Searching each row for itself must return it at distance 0, which shows
  // every row was inserted and linked.
  const int64_t dim = 8;
  const int64_t count = 2000;
  const std::vector<float> rows = RandomRows(count, dim, 5);
  for (int threads : {2, 4}) {
    absl::StatusOr<std::unique_ptr<HnswIndex>> index = HnswIndex::Build(
        rows.data(), count, dim, HnswSpace::kSquaredL2, 8, 100, threads);
    ASSERT_TRUE(index.ok()) << index.status();
    ASSERT_EQ((*index)->size(), count);
    const SearchResult result = SearchAll(**index, rows, 1, 100, threads);
    int64_t self_found = 0;
    for (int64_t r = 0; r < count; ++r) {
      self_found += result.labels[r] == r && result.distances[r] == 0.0f;
    }
    EXPECT_GE(self_found, count * 99 / 100) << threads << " threads";
  }
}

TEST(HnswIndexTest, MultiThreadedSearchMatchesOneThread) {
  const int64_t dim = 6;
  const std::vector<float> rows = RandomRows(500, dim, 6);
  const std::vector<float> queries = RandomRows(97, dim, 7);
  absl::StatusOr<std::unique_ptr<HnswIndex>> index = HnswIndex::Build(
      rows.data(), 500, dim, HnswSpace::kSquaredL2, 12, 100, 1);
  ASSERT_TRUE(index.ok()) << index.status();
  const SearchResult one = SearchAll(**index, queries, 4, 32, 1);
  const SearchResult three = SearchAll(**index, queries, 4, 32, 3);
  EXPECT_EQ(one.labels, three.labels);
  EXPECT_EQ(one.distances, three.distances);
}

TEST(HnswIndexTest, DuplicateRowsAreAllFound) {
  // Five copies of one row; with k = 5 a query at that row finds all five at
  // distance 0.
  const int64_t dim = 4;
  std::vector<float> rows = RandomRows(200, dim, 8);
  for (int64_t copy : {10, 50, 90, 130, 170}) {
    std::copy(rows.begin(), rows.begin() + dim, rows.begin() + copy * dim);
  }
  absl::StatusOr<std::unique_ptr<HnswIndex>> index = HnswIndex::Build(
      rows.data(), 200, dim, HnswSpace::kSquaredL2, 16, 200, 1);
  ASSERT_TRUE(index.ok()) << index.status();
  const std::vector<float> query(rows.begin(), rows.begin() + dim);
  const SearchResult result = SearchAll(**index, query, 6, 200, 1);
  EXPECT_EQ(std::set<int64_t>(result.labels.begin(), result.labels.begin() + 6),
            (std::set<int64_t>{0, 10, 50, 90, 130, 170}));
  for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(result.distances[j], 0.0f);
}

TEST(HnswIndexTest, SaveAndLoadGiveSameResults) {
  const int64_t dim = 5;
  const std::vector<float> rows = RandomRows(300, dim, 9);
  const std::vector<float> queries = RandomRows(20, dim, 10);
  absl::StatusOr<std::unique_ptr<HnswIndex>> index = HnswIndex::Build(
      rows.data(), 300, dim, HnswSpace::kSquaredL2, 10, 50, 2);
  ASSERT_TRUE(index.ok()) << index.status();

  const std::string path =
      std::string(testing::TempDir()) + "/hnsw_index_test.bin";
  ASSERT_TRUE((*index)->Save(path).ok());
  EXPECT_EQ(std::filesystem::file_size(path),
            static_cast<uintmax_t>((*index)->SerializedBytes()));

  absl::StatusOr<std::unique_ptr<HnswIndex>> loaded =
      HnswIndex::LoadVerifiedFile(path, dim, HnswSpace::kSquaredL2);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->size(), 300);
  EXPECT_EQ((*loaded)->m(), 10);
  const SearchResult before = SearchAll(**index, queries, 3, 40, 1);
  const SearchResult after = SearchAll(**loaded, queries, 3, 40, 1);
  EXPECT_EQ(before.labels, after.labels);
  EXPECT_EQ(before.distances, after.distances);
  std::remove(path.c_str());
}

TEST(HnswIndexTest, LoadRejectsRecordsOfAnotherDimension) {
  const std::vector<float> rows = RandomRows(50, 8, 11);
  absl::StatusOr<std::unique_ptr<HnswIndex>> index = HnswIndex::Build(
      rows.data(), 50, 8, HnswSpace::kSquaredL2, 8, 20, 1);
  ASSERT_TRUE(index.ok()) << index.status();
  const std::string path =
      std::string(testing::TempDir()) + "/hnsw_index_dim_test.bin";
  ASSERT_TRUE((*index)->Save(path).ok());

  absl::StatusOr<std::unique_ptr<HnswIndex>> loaded =
      HnswIndex::LoadVerifiedFile(path, 4, HnswSpace::kSquaredL2);
  ASSERT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss)
      << loaded.status();
  EXPECT_THAT(std::string(loaded.status().message()),
              HasSubstr("vectors of 4 dimensions need"));
  std::remove(path.c_str());
}

TEST(HnswIndexTest, BuildRejectsInvalidArguments) {
  const std::vector<float> rows = RandomRows(10, 2, 12);
  struct Case {
    int64_t count, dim, m, ef_construction;
    int threads;
    const char* message;
  };
  const std::vector<Case> cases = {
      {0, 2, 16, 200, 1, "at least one row"},
      {10, 0, 16, 200, 1, "at least one row and one dimension"},
      {10, 2, 1, 200, 1, "m = 1 is invalid"},
      {10, 2, 10001, 200, 1, "m = 10001 is invalid"},
      {10, 2, 16, 0, 1, "ef_construction = 0 is invalid"},
      {10, 2, 16, 200, 0, "num_threads = 0"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::unique_ptr<HnswIndex>> index =
        HnswIndex::Build(rows.data(), c.count, c.dim, HnswSpace::kSquaredL2,
                         c.m, c.ef_construction, c.threads);
    ASSERT_EQ(index.status().code(), absl::StatusCode::kInvalidArgument)
        << c.message;
    EXPECT_THAT(std::string(index.status().message()), HasSubstr(c.message));
  }
}

TEST(HnswIndexTest, SearchRejectsInvalidArguments) {
  const std::vector<float> rows = RandomRows(10, 2, 13);
  absl::StatusOr<std::unique_ptr<HnswIndex>> index = HnswIndex::Build(
      rows.data(), 10, 2, HnswSpace::kSquaredL2, 4, 10, 1);
  ASSERT_TRUE(index.ok()) << index.status();
  float distance[11];
  int64_t label[11];
  EXPECT_THAT(std::string((*index)
                              ->Search(rows.data(), 1, 11, 20, 1, distance,
                                       label)
                              .message()),
              HasSubstr("k = 11 is invalid because it must be in [1, 10]"));
  EXPECT_THAT(
      std::string(
          (*index)->Search(rows.data(), 1, 1, 0, 1, distance, label).message()),
      HasSubstr("ef = 0 is invalid"));
  EXPECT_THAT(
      std::string(
          (*index)->Search(rows.data(), 1, 1, 5, 0, distance, label).message()),
      HasSubstr("num_threads = 0"));
}

}  // namespace
}  // namespace panda
