// The rows of a sequence that each rank of a process group owns.
#ifndef PANDA_DISTRIBUTED_SHARDING_H_
#define PANDA_DISTRIBUTED_SHARDING_H_

#include <cstdint>

namespace panda {

// Rows [begin, end) of a sequence.
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;

  int64_t size() const { return end - begin; }
};

// Returns the contiguous block of `count` rows that `rank` of `world_size`
// owns. Blocks follow rank order and cover every row once. Their sizes
// differ by at most one, and the first count % world_size ranks get the
// larger ones, so a rank's block depends on the three arguments only. A rank
// owns no rows when count < world_size. Expects 0 <= rank < world_size and
// count >= 0.
RowRange ShardRows(int64_t count, int rank, int world_size);

}  // namespace panda

#endif  // PANDA_DISTRIBUTED_SHARDING_H_
