#include "distributed/sharding.h"

#include <algorithm>

namespace panda {

RowRange ShardRows(int64_t count, int rank, int world_size) {
  const int64_t base = count / world_size;
  const int64_t larger = count % world_size;
  RowRange range;
  range.begin = rank * base + std::min<int64_t>(rank, larger);
  range.end = range.begin + base + (rank < larger ? 1 : 0);
  return range;
}

}  // namespace panda
