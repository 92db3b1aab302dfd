#include "distributed/sharding.h"

#include "gtest/gtest.h"

namespace panda {
namespace {

TEST(ShardRowsTest, SplitsTenRowsOverFourRanks) {
  // 10 = 3 + 3 + 2 + 2: the first 10 % 4 = 2 ranks take one row more.
  const int64_t begins[] = {0, 3, 6, 8};
  const int64_t ends[] = {3, 6, 8, 10};
  for (int rank = 0; rank < 4; ++rank) {
    const RowRange range = ShardRows(10, rank, 4);
    EXPECT_EQ(range.begin, begins[rank]) << "rank " << rank;
    EXPECT_EQ(range.end, ends[rank]) << "rank " << rank;
  }
}

TEST(ShardRowsTest, FewerRowsThanRanksLeavesEmptyShards) {
  EXPECT_EQ(ShardRows(2, 0, 4).size(), 1);
  EXPECT_EQ(ShardRows(2, 1, 4).size(), 1);
  EXPECT_EQ(ShardRows(2, 2, 4).size(), 0);
  EXPECT_EQ(ShardRows(2, 3, 4).begin, 2);
  EXPECT_EQ(ShardRows(2, 3, 4).size(), 0);
}

TEST(ShardRowsTest, CoversEveryRowOnce) {
  for (int world = 1; world <= 5; ++world) {
    for (int64_t count = 0; count <= 13; ++count) {
      int64_t next = 0;
      for (int rank = 0; rank < world; ++rank) {
        const RowRange range = ShardRows(count, rank, world);
        EXPECT_EQ(range.begin, next) << count << " rows, rank " << rank;
        EXPECT_GE(range.size(), count / world);
        EXPECT_LE(range.size(), count / world + 1);
        next = range.end;
      }
      EXPECT_EQ(next, count) << count << " rows over " << world << " ranks";
    }
  }
}

TEST(ShardRowsTest, OneRankOwnsEverything) {
  EXPECT_EQ(ShardRows(7, 0, 1).begin, 0);
  EXPECT_EQ(ShardRows(7, 0, 1).end, 7);
}

}  // namespace
}  // namespace panda
