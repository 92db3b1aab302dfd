// Multi-process runs on torch.distributed's C++ layer (c10d): the ranks of
// one job rendezvous through a TCP store and exchange tensors through a
// process group. Each rank is a separate `panda` process, started by
// torchrun or tools/launch_local.sh with torchrun's environment variables:
//
//   MASTER_ADDR  address of rank 0, which serves the TCP store
//   MASTER_PORT  port of the TCP store
//   WORLD_SIZE   number of ranks; unset or 1 runs a single process
//   RANK         this process's rank, 0 to WORLD_SIZE - 1
//   LOCAL_RANK   rank among the processes on this machine (default RANK)
//   PANDA_DIST_TIMEOUT_S  seconds a rendezvous or collective may wait for
//                the other ranks before it fails (default 60)
//
// NOTE: LibTorch 1.13's TCP store client waits about 1 s between attempts
// to reach rank 0. With a timeout of 1 s it failed at once when rank 0 was
// not listening yet, so timeouts of a few seconds or more are safer.
//
// Collectives return a Status instead of throwing. When a rank dies, the
// others fail at their next collective: at once when its connections close,
// or after the timeout when it stops without closing them.
//
// NOTE: Only the Gloo backend is built. Debian's LibTorch 1.13 has no CUDA
// and no NCCL, so collectives copy CUDA tensors to the CPU and back.
#ifndef PANDA_DISTRIBUTED_PROCESS_GROUP_H_
#define PANDA_DISTRIBUTED_PROCESS_GROUP_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "torch/types.h"

namespace panda {

// The torchrun variables of one rank, validated.
struct DistributedEnvironment {
  std::string master_address;
  int master_port = 0;
  int world_size = 1;
  int rank = 0;
  int local_rank = 0;
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
};

// Reads and validates the variables listed above. A WORLD_SIZE that is
// unset or 1 gives a single-process environment and ignores the others.
// A missing or malformed variable is InvalidArgument naming it and its
// value.
absl::StatusOr<DistributedEnvironment> ReadDistributedEnvironment();

// One rank's view of the job: its rank, the world size and the collectives.
// Not thread-safe: one thread issues the collectives, in the same order on
// every rank.
class DistributedContext {
 public:
  // A single process: rank 0 of 1, whose collectives copy or do nothing.
  DistributedContext();
  ~DistributedContext();

  DistributedContext(const DistributedContext&) = delete;
  DistributedContext& operator=(const DistributedContext&) = delete;

  // Joins the job that `environment` describes: rank 0 starts the TCP store
  // on MASTER_PORT, every rank connects to it and the Gloo process group
  // connects every pair of ranks. Fails with Unavailable, naming the
  // address and the timeout, when the other ranks do not arrive in time.
  static absl::StatusOr<std::unique_ptr<DistributedContext>> Connect(
      const DistributedEnvironment& environment);

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }
  bool is_distributed() const { return world_size_ > 1; }
  // "gloo", or "none" for a single process.
  std::string backend() const { return is_distributed() ? "gloo" : "none"; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Replaces `tensor` on every rank with the element-wise sum over ranks.
  // Every rank passes a tensor of the same shape and dtype. `what` names
  // the operation in errors ("gradients of step 3").
  absl::Status AllReduceSum(torch::Tensor& tensor, absl::string_view what);

  // Replaces `tensor` on every rank with rank `root`'s. Every rank passes a
  // tensor of the same shape and dtype.
  absl::Status Broadcast(torch::Tensor& tensor, int root,
                         absl::string_view what);

  // Returns every rank's `tensor`, in rank order, concatenated along a new
  // first dimension: [world_size, ...]. Every rank passes the same shape
  // and dtype.
  absl::StatusOr<torch::Tensor> AllGather(const torch::Tensor& tensor,
                                          absl::string_view what);

  // Returns every rank's `rows` [n_r, ...] concatenated in rank order:
  // [sum of n_r, ...]. The row counts may differ (zero included), the other
  // dimensions and the dtype may not.
  absl::StatusOr<torch::Tensor> AllGatherRows(const torch::Tensor& rows,
                                              absl::string_view what);

  // Waits until every rank has arrived.
  absl::Status Barrier(absl::string_view what);

 private:
  // Runs `collective`, turning LibTorch and Gloo exceptions into an
  // Unavailable error that names `what`, this rank and the timeout.
  template <typename Function>
  absl::Status Guard(absl::string_view what, Function collective);

  int rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  std::chrono::milliseconds timeout_ = std::chrono::seconds(60);
  // The TCP store and the Gloo process group; null for a single process.
  struct Group;
  std::unique_ptr<Group> group_;
};

// The process's context, which plugins (the knn scorer, the training loop)
// use because their interfaces carry none: a single-process context until
// SetProcessDistributedContext() installs another, like torch.distributed's
// default process group.
DistributedContext& ProcessDistributedContext();

// Makes `context` the process's context and returns the previous one; null
// restores the single-process context. The caller keeps `context` alive
// while it is installed.
DistributedContext* SetProcessDistributedContext(DistributedContext* context);

}  // namespace panda

#endif  // PANDA_DISTRIBUTED_PROCESS_GROUP_H_
