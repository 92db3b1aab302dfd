#include "core/bounded_queue.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace panda {
namespace {

TEST(BoundedQueueTest, PopReturnsItemsInPushOrder) {
  BoundedQueue<int> queue(3);
  EXPECT_TRUE(queue.Push(4));
  EXPECT_TRUE(queue.Push(1));
  EXPECT_TRUE(queue.Push(7));

  EXPECT_EQ(queue.Pop(), std::optional<int>(4));
  EXPECT_EQ(queue.Pop(), std::optional<int>(1));
  EXPECT_EQ(queue.Pop(), std::optional<int>(7));
}

TEST(BoundedQueueTest, ProducerThreadKeepsOrder) {
  constexpr int kCount = 1000;
  BoundedQueue<int> queue(1);
  std::thread producer([&] {
    for (int i = 0; i < kCount; ++i) {
      if (!queue.Push(i)) return;
    }
    queue.Close();
  });

  std::vector<int> received;
  while (std::optional<int> item = queue.Pop()) received.push_back(*item);
  producer.join();

  ASSERT_EQ(received.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(received[i], i);
}

TEST(BoundedQueueTest, PushWaitsWhileFull) {
  BoundedQueue<int> queue(1);
  ASSERT_TRUE(queue.Push(1));
  std::atomic<bool> second_pushed{false};
  std::thread producer([&] {
    queue.Push(2);
    second_pushed = true;
  });

  // A sleep cannot prove that Push blocks, but a Push that ignored the
  // capacity would almost always finish within it.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(second_pushed.load());
  EXPECT_EQ(queue.Pop(), std::optional<int>(1));
  producer.join();
  EXPECT_TRUE(second_pushed.load());
  EXPECT_EQ(queue.Pop(), std::optional<int>(2));
}

TEST(BoundedQueueTest, CloseReleasesBlockedPush) {
  BoundedQueue<int> queue(1);
  ASSERT_TRUE(queue.Push(1));
  bool pushed = true;
  std::thread producer([&] { pushed = queue.Push(2); });

  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Usually blocked by now.
  queue.Close();
  producer.join();
  EXPECT_FALSE(pushed);
}

TEST(BoundedQueueTest, CloseReleasesBlockedPop) {
  BoundedQueue<int> queue(2);
  std::optional<int> popped = 0;
  std::thread consumer([&] { popped = queue.Pop(); });

  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Usually blocked by now.
  queue.Close();
  consumer.join();
  EXPECT_EQ(popped, std::nullopt);
}

TEST(BoundedQueueTest, ClosedQueueDrainsThenReturnsNullopt) {
  BoundedQueue<int> queue(2);
  ASSERT_TRUE(queue.Push(5));
  ASSERT_TRUE(queue.Push(6));
  queue.Close();
  queue.Close();

  EXPECT_FALSE(queue.Push(7));
  EXPECT_EQ(queue.Pop(), std::optional<int>(5));
  EXPECT_EQ(queue.Pop(), std::optional<int>(6));
  EXPECT_EQ(queue.Pop(), std::nullopt);
}

TEST(BoundedQueueTest, HoldsMoveOnlyItems) {
  BoundedQueue<std::unique_ptr<int>> queue(1);
  ASSERT_TRUE(queue.Push(std::make_unique<int>(3)));
  std::optional<std::unique_ptr<int>> item = queue.Pop();
  ASSERT_TRUE(item.has_value());
  ASSERT_NE(*item, nullptr);
  EXPECT_EQ(**item, 3);
}

}  // namespace
}  // namespace panda
