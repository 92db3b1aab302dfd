#include "datasets/parallel_for.h"

#include <atomic>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace panda {
namespace {

TEST(ParallelForTest, RunsEveryIndexOnce) {
  for (int threads : {0, 1, 3, 64}) {
    std::vector<std::atomic<int>> calls(1000);
    ParallelFor(1000, threads, [&](int64_t i) {
      ++calls[i];
      return true;
    });
    for (int64_t i = 0; i < 1000; ++i) {
      ASSERT_EQ(calls[i].load(), 1)
          << "index " << i << ", " << threads << " threads";
    }
  }
}

TEST(ParallelForTest, ZeroCountCallsNothing) {
  std::atomic<int> calls{0};
  ParallelFor(0, 4, [&](int64_t) {
    ++calls;
    return true;
  });
  EXPECT_EQ(calls.load(), 0);
}

TEST(ParallelForTest, StopLeavesLowerIndicesDone) {
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::atomic<int>> calls(500);
    ParallelFor(500, 4, [&](int64_t i) {
      ++calls[i];
      return i != 100;
    });
    for (int64_t i = 0; i <= 100; ++i) {
      ASSERT_EQ(calls[i].load(), 1) << "index " << i << ", trial " << trial;
    }
  }
}

TEST(ParallelForTest, OneThreadStopsRightAway) {
  std::vector<int> calls(500);
  ParallelFor(500, 1, [&](int64_t i) {
    ++calls[i];
    return i != 100;
  });
  for (int64_t i = 0; i < 500; ++i) {
    EXPECT_EQ(calls[i], i <= 100 ? 1 : 0) << "index " << i;
  }
}

}  // namespace
}  // namespace panda
