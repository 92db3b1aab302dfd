#include "distributed/process_group.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/logging.h"
#include "core/status_macros.h"
#include "torch/csrc/distributed/c10d/ProcessGroupGloo.hpp"
#include "torch/csrc/distributed/c10d/TCPStore.hpp"
#include "torch/cuda.h"
#include "torch/torch.h"

namespace panda {

struct DistributedContext::Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

namespace {

constexpr double kMaxTimeoutSeconds = 1e6;

// The TCP store key under which rank 0 publishes its WORLD_SIZE.
constexpr char kWorldSizeKey[] = "panda/world_size";

// The value of environment variable `name`, or null when it is unset or
// empty.
const char* GetEnvironment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' ? value : nullptr;
}

absl::Status MissingVariable(const char* name, int world_size) {
  return absl::InvalidArgumentError(absl::StrCat(
      "environment variable ", name, " is not set, but WORLD_SIZE is ",
      world_size, "; torchrun and tools/launch_local.sh set it"));
}

// Parses integer variable `name` and checks it lies in [minimum, maximum].
absl::StatusOr<int> ReadInteger(const char* name, const char* value,
                                int minimum, int maximum) {
  int result = 0;
  if (!absl::SimpleAtoi(value, &result) || result < minimum ||
      result > maximum) {
    return absl::InvalidArgumentError(absl::StrCat(
        "environment variable ", name, "=\"", value,
        "\" is invalid: expected an integer from ", minimum, " to ",
        maximum));
  }
  return result;
}

// True for the addresses that only this machine reaches.
bool IsLoopback(const std::string& address) {
  return address == "localhost" || address == "::1" ||
         address.rfind("127.", 0) == 0;
}

}  // namespace

absl::StatusOr<DistributedEnvironment> ReadDistributedEnvironment() {
  DistributedEnvironment environment;
  if (const char* value = GetEnvironment("PANDA_DIST_TIMEOUT_S")) {
    double seconds = 0;
    // The upper bound keeps the milliseconds within int64.
    if (!absl::SimpleAtod(value, &seconds) || !std::isfinite(seconds) ||
        seconds <= 0 || seconds > kMaxTimeoutSeconds) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable PANDA_DIST_TIMEOUT_S=\"", value,
          "\" is invalid: expected a number of seconds above 0 and at most ",
          kMaxTimeoutSeconds));
    }
    environment.timeout = std::chrono::milliseconds(
        static_cast<int64_t>(std::ceil(seconds * 1000)));
  }

  const char* world_size = GetEnvironment("WORLD_SIZE");
  const char* rank = GetEnvironment("RANK");
  if (world_size != nullptr) {
    PANDA_ASSIGN_OR_RETURN(environment.world_size,
                           ReadInteger("WORLD_SIZE", world_size, 1, 1 << 16));
  }
  if (environment.world_size == 1) {
    // A rank other than 0 without a world would run the whole job alone
    // and write results while the real rank 0 waits for it.
    if (rank != nullptr && std::string(rank) != "0") {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable RANK=\"", rank, "\" is set, but WORLD_SIZE is ",
          world_size == nullptr ? "unset" : world_size,
          "; set WORLD_SIZE to the number of ranks, or unset RANK for a "
          "single process"));
    }
    return environment;
  }

  if (rank == nullptr) return MissingVariable("RANK", environment.world_size);
  PANDA_ASSIGN_OR_RETURN(
      environment.rank,
      ReadInteger("RANK", rank, 0, environment.world_size - 1));
  environment.local_rank = environment.rank;
  if (const char* local_rank = GetEnvironment("LOCAL_RANK")) {
    PANDA_ASSIGN_OR_RETURN(
        environment.local_rank,
        ReadInteger("LOCAL_RANK", local_rank, 0, environment.world_size - 1));
  }

  const char* address = GetEnvironment("MASTER_ADDR");
  if (address == nullptr) {
    return MissingVariable("MASTER_ADDR", environment.world_size);
  }
  environment.master_address = address;
  const char* port = GetEnvironment("MASTER_PORT");
  if (port == nullptr) {
    return MissingVariable("MASTER_PORT", environment.world_size);
  }
  PANDA_ASSIGN_OR_RETURN(environment.master_port,
                         ReadInteger("MASTER_PORT", port, 1, 65535));
  return environment;
}

DistributedContext::DistributedContext() = default;
DistributedContext::~DistributedContext() = default;

absl::StatusOr<std::unique_ptr<DistributedContext>>
DistributedContext::Connect(const DistributedEnvironment& environment) {
  auto context = std::make_unique<DistributedContext>();
  context->timeout_ = environment.timeout;
  if (environment.world_size <= 1) return context;

  context->rank_ = environment.rank;
  context->world_size_ = environment.world_size;
  context->local_rank_ = environment.local_rank;
  const std::string where = absl::StrCat(
      environment.master_address, ":", environment.master_port);
  const double seconds = environment.timeout.count() / 1000.0;
  const std::string joining = absl::StrCat(
      "rank ", environment.rank, " of ", environment.world_size,
      " could not join the process group at ", where, " (timeout ", seconds,
      " s for each step, PANDA_DIST_TIMEOUT_S): ");
  try {
    auto group = std::make_unique<Group>();
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(environment.master_port);
    store_options.isServer = environment.rank == 0;
    store_options.numWorkers = environment.world_size;
    store_options.waitWorkers = true;
    store_options.timeout = environment.timeout;
    group->store = c10::make_intrusive<c10d::TCPStore>(
        environment.master_address, store_options);

    // Ranks that disagree on the world size would fail inside Gloo with a
    // message about address sizes, so they compare it with rank 0's first.
    const std::string own_size = std::to_string(environment.world_size);
    if (environment.rank == 0) {
      group->store->set(kWorldSizeKey,
                        std::vector<uint8_t>(own_size.begin(), own_size.end()));
    } else {
      const std::vector<uint8_t> bytes = group->store->get(kWorldSizeKey);
      const std::string rank0_size(bytes.begin(), bytes.end());
      if (rank0_size != own_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            joining, "WORLD_SIZE is ", own_size, " here but ", rank0_size,
            " on rank 0; start every rank with the same WORLD_SIZE"));
      }
    }

    // Each rank's Gloo endpoint: the interface GLOO_SOCKET_IFNAME names,
    // the loopback interface when rank 0 is on this machine's loopback
    // address, or the address this machine's hostname resolves to.
    auto options = c10d::ProcessGroupGloo::Options::create(environment.timeout);
    if (const char* interface = GetEnvironment("GLOO_SOCKET_IFNAME")) {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else if (IsLoopback(environment.master_address)) {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDefaultDevice());
    }
    group->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(
        group->store, environment.rank, environment.world_size, options);
    context->group_ = std::move(group);
  } catch (const c10::Error& error) {
    return absl::UnavailableError(
        absl::StrCat(joining, error.what_without_backtrace()));
  } catch (const std::exception& error) {
    return absl::UnavailableError(absl::StrCat(joining, error.what()));
  }
  if (torch::cuda::is_available()) {
    PANDA_LOG(INFO) << "CUDA is available, but this build has no NCCL backend: "
                       "collectives run on Gloo through CPU copies";
  }
  PANDA_LOG(INFO) << "rank " << context->rank_ << " of "
                  << context->world_size_ << " (local rank "
                  << context->local_rank_ << ") joined the gloo process group at "
                  << where << ", timeout " << seconds << " s";
  return context;
}

template <typename Function>
absl::Status DistributedContext::Guard(absl::string_view what,
                                       Function collective) {
  try {
    collective();
    return absl::OkStatus();
  } catch (const c10::Error& error) {
    return absl::UnavailableError(absl::StrCat(
        "distributed ", what, " failed on rank ", rank_, " of ", world_size_,
        ": ", error.what_without_backtrace(),
        "; another rank probably exited or stopped responding (timeout ",
        timeout_.count() / 1000.0, " s, PANDA_DIST_TIMEOUT_S)"));
  } catch (const std::exception& error) {
    return absl::UnavailableError(absl::StrCat(
        "distributed ", what, " failed on rank ", rank_, " of ", world_size_,
        ": ", error.what(),
        "; another rank probably exited or stopped responding (timeout ",
        timeout_.count() / 1000.0, " s, PANDA_DIST_TIMEOUT_S)"));
  }
}

absl::Status DistributedContext::AllReduceSum(torch::Tensor& tensor,
                                              absl::string_view what) {
  if (!is_distributed()) return absl::OkStatus();
  // Gloo exchanges CPU tensors; a CUDA tensor travels through a CPU copy.
  std::vector<torch::Tensor> buffers = {tensor.to(torch::kCPU).contiguous()};
  PANDA_RETURN_IF_ERROR(Guard(absl::StrCat("all-reduce of ", what), [&] {
    group_->gloo->allreduce(buffers)->wait(timeout_);
  }));
  tensor.copy_(buffers[0]);
  return absl::OkStatus();
}

absl::Status DistributedContext::Broadcast(torch::Tensor& tensor, int root,
                                           absl::string_view what) {
  if (!is_distributed()) return absl::OkStatus();
  std::vector<torch::Tensor> buffers = {tensor.to(torch::kCPU).contiguous()};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  PANDA_RETURN_IF_ERROR(Guard(absl::StrCat("broadcast of ", what), [&] {
    group_->gloo->broadcast(buffers, options)->wait(timeout_);
  }));
  tensor.copy_(buffers[0]);
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> DistributedContext::AllGather(
    const torch::Tensor& tensor, absl::string_view what) {
  if (!is_distributed()) return tensor.unsqueeze(0).clone();
  std::vector<torch::Tensor> inputs = {tensor.to(torch::kCPU).contiguous()};
  std::vector<std::vector<torch::Tensor>> outputs(1);
  for (int r = 0; r < world_size_; ++r) {
    outputs[0].push_back(torch::empty_like(inputs[0]));
  }
  PANDA_RETURN_IF_ERROR(Guard(absl::StrCat("all-gather of ", what), [&] {
    group_->gloo->allgather(outputs, inputs)->wait(timeout_);
  }));
  return torch::stack(outputs[0]).to(tensor.device());
}

absl::StatusOr<torch::Tensor> DistributedContext::AllGatherRows(
    const torch::Tensor& rows, absl::string_view what) {
  if (!is_distributed()) return rows.clone();
  if (rows.dim() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "all-gather of ", what, ": expected a tensor with rows, got ",
        rows.dim(), " dimensions"));
  }

  // Gloo's all-gather moves equal shapes, so every rank pads its rows to the
  // largest count and the padding is cut off after the exchange.
  PANDA_ASSIGN_OR_RETURN(
      const torch::Tensor counts,
      AllGather(torch::tensor({rows.size(0)}, torch::kLong),
                absl::StrCat("row counts of ", what)));
  const int64_t largest = counts.max().item<int64_t>();
  std::vector<int64_t> padded_shape = rows.sizes().vec();
  padded_shape[0] = largest;
  torch::Tensor padded =
      torch::zeros(padded_shape, rows.options().device(torch::kCPU));
  padded.slice(0, 0, rows.size(0)).copy_(rows);
  PANDA_ASSIGN_OR_RETURN(const torch::Tensor gathered, AllGather(padded, what));

  std::vector<torch::Tensor> pieces;
  for (int r = 0; r < world_size_; ++r) {
    pieces.push_back(gathered[r].slice(0, 0, counts[r][0].item<int64_t>()));
  }
  return torch::cat(pieces).to(rows.device());
}

absl::Status DistributedContext::Barrier(absl::string_view what) {
  if (!is_distributed()) return absl::OkStatus();
  // A one-element all-reduce, so that the barrier fails after the same
  // timeout and with the same message as every other collective.
  torch::Tensor token = torch::zeros({1});
  return AllReduceSum(token, absl::StrCat("barrier ", what));
}

namespace {

DistributedContext*& InstalledContext() {
  static DistributedContext* installed = nullptr;
  return installed;
}

}  // namespace

DistributedContext& ProcessDistributedContext() {
  static DistributedContext* const single_process = new DistributedContext();
  DistributedContext* installed = InstalledContext();
  return installed != nullptr ? *installed : *single_process;
}

DistributedContext* SetProcessDistributedContext(DistributedContext* context) {
  DistributedContext* previous = InstalledContext();
  InstalledContext() = context;
  return previous;
}

}  // namespace panda
