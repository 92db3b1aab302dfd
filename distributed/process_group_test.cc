// The environment parsing, a rendezvous that times out and the
// single-process collectives. Collectives between processes are tested by
// distributed_test.sh.
#include "distributed/process_group.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

class EnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR",
                             "MASTER_PORT", "PANDA_DIST_TIMEOUT_S"}) {
      unsetenv(name);
    }
  }

  void SetTwoRanks() {
    setenv("WORLD_SIZE", "2", 1);
    setenv("RANK", "1", 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    setenv("MASTER_PORT", "29500", 1);
  }
};

TEST_F(EnvironmentTest, UnsetWorldSizeIsSingleProcess) {
  const absl::StatusOr<DistributedEnvironment> environment =
      ReadDistributedEnvironment();
  ASSERT_TRUE(environment.ok()) << environment.status();
  EXPECT_EQ(environment->world_size, 1);
  EXPECT_EQ(environment->rank, 0);
  EXPECT_EQ(environment->timeout.count(), 60000);
}

TEST_F(EnvironmentTest, ReadsTorchrunVariables) {
  SetTwoRanks();
  setenv("LOCAL_RANK", "0", 1);
  setenv("PANDA_DIST_TIMEOUT_S", "2.5", 1);
  const absl::StatusOr<DistributedEnvironment> environment =
      ReadDistributedEnvironment();
  ASSERT_TRUE(environment.ok()) << environment.status();
  EXPECT_EQ(environment->world_size, 2);
  EXPECT_EQ(environment->rank, 1);
  EXPECT_EQ(environment->local_rank, 0);
  EXPECT_EQ(environment->master_address, "127.0.0.1");
  EXPECT_EQ(environment->master_port, 29500);
  EXPECT_EQ(environment->timeout.count(), 2500);
}

TEST_F(EnvironmentTest, LocalRankDefaultsToRank) {
  SetTwoRanks();
  const absl::StatusOr<DistributedEnvironment> environment =
      ReadDistributedEnvironment();
  ASSERT_TRUE(environment.ok()) << environment.status();
  EXPECT_EQ(environment->local_rank, 1);
}

TEST_F(EnvironmentTest, RankOutsideWorldIsNamed) {
  SetTwoRanks();
  setenv("RANK", "2", 1);
  const absl::Status status = ReadDistributedEnvironment().status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("RANK=\"2\""), absl::string_view::npos)
      << status;
}

TEST_F(EnvironmentTest, MissingMasterAddressIsNamed) {
  SetTwoRanks();
  unsetenv("MASTER_ADDR");
  const absl::Status status = ReadDistributedEnvironment().status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("MASTER_ADDR"), absl::string_view::npos)
      << status;
}

TEST_F(EnvironmentTest, BadPortIsNamed) {
  SetTwoRanks();
  setenv("MASTER_PORT", "70000", 1);
  const absl::Status status = ReadDistributedEnvironment().status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("MASTER_PORT=\"70000\""),
            absl::string_view::npos)
      << status;
}

TEST_F(EnvironmentTest, BadTimeoutIsNamed) {
  setenv("PANDA_DIST_TIMEOUT_S", "-1", 1);
  const absl::Status status = ReadDistributedEnvironment().status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("PANDA_DIST_TIMEOUT_S"),
            absl::string_view::npos)
      << status;
}

// Returns a loopback port that was free a moment ago, or 0.
int FreeLoopbackPort() {
  const int socket_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (socket_fd < 0) return 0;
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(socket_fd, reinterpret_cast<sockaddr*>(&address), length) == 0 &&
      getsockname(socket_fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(socket_fd);
  return port;
}

TEST(ConnectTest, AbsentRankZeroTimesOut) {
  const int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  DistributedEnvironment environment;
  environment.world_size = 2;
  environment.rank = 1;
  environment.master_address = "127.0.0.1";
  environment.master_port = port;
  environment.timeout = std::chrono::seconds(3);

  const auto start = std::chrono::steady_clock::now();
  const absl::Status status = DistributedContext::Connect(environment).status();
  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("rank 1 of 2"), absl::string_view::npos)
      << status;
  EXPECT_NE(status.message().find("127.0.0.1:" + std::to_string(port)),
            absl::string_view::npos)
      << status;
  EXPECT_NE(status.message().find("PANDA_DIST_TIMEOUT_S"),
            absl::string_view::npos)
      << status;
  // The store retries its connection until the timeout; 30 s leaves room
  // for a loaded machine.
  EXPECT_GT(seconds, 1) << status;
  EXPECT_LT(seconds, 30) << status;
}

TEST(SingleProcessContextTest, CollectivesKeepTheTensor) {
  DistributedContext context;
  EXPECT_FALSE(context.is_distributed());
  torch::Tensor values = torch::tensor({1.0f, 2.0f});
  ASSERT_TRUE(context.AllReduceSum(values, "test").ok());
  EXPECT_TRUE(values.equal(torch::tensor({1.0f, 2.0f})));
  ASSERT_TRUE(context.Broadcast(values, 0, "test").ok());
  EXPECT_TRUE(values.equal(torch::tensor({1.0f, 2.0f})));

  const absl::StatusOr<torch::Tensor> gathered = context.AllGather(values, "test");
  ASSERT_TRUE(gathered.ok()) << gathered.status();
  EXPECT_EQ(gathered->sizes(), (std::vector<int64_t>{1, 2}));

  const torch::Tensor rows = torch::ones({3, 2});
  const absl::StatusOr<torch::Tensor> all_rows = context.AllGatherRows(rows, "test");
  ASSERT_TRUE(all_rows.ok()) << all_rows.status();
  EXPECT_TRUE(all_rows->equal(rows));
}

TEST(ProcessContextTest, InstallsAndRestores) {
  DistributedContext context;
  DistributedContext& before = ProcessDistributedContext();
  EXPECT_NE(&before, &context);
  EXPECT_EQ(SetProcessDistributedContext(&context), nullptr);
  EXPECT_EQ(&ProcessDistributedContext(), &context);
  EXPECT_EQ(SetProcessDistributedContext(nullptr), &context);
  EXPECT_EQ(&ProcessDistributedContext(), &before);
}

}  // namespace
}  // namespace panda
