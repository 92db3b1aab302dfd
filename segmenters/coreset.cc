#include "segmenters/coreset.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/progress_bar.h"
#include "torch/torch.h"

namespace panda {

namespace {

// Sets LibTorch's intra-op thread count for the lifetime of this object.
class ScopedTorchThreads {
 public:
  explicit ScopedTorchThreads(int threads) : previous_(torch::get_num_threads()) {
    torch::set_num_threads(threads);
  }
  ~ScopedTorchThreads() { torch::set_num_threads(previous_); }

 private:
  int previous_;
};

}  // namespace

absl::StatusOr<torch::Tensor> GreedyCoresetIndices(const torch::Tensor& bank,
                                                   int64_t count,
                                                   int64_t projection_dim,
                                                   uint64_t seed,
                                                   const std::string& label) {
  if (bank.dim() != 2 || bank.size(0) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": the patch bank must be a non-empty [N, C] matrix"));
  }
  const int64_t rows = bank.size(0);
  if (count < 1 || count > rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        label, ": cannot keep ", count, " of ", rows, " patches; keep 1 to ", rows));
  }
  if (!torch::isfinite(bank).all().item<bool>()) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": the patch bank holds NaN or infinite values"));
  }

  torch::NoGradGuard no_grad;
  torch::Generator generator = torch::make_generator<torch::CPUGeneratorImpl>(seed);
  torch::Tensor points = bank.to(torch::kFloat32);
  if (projection_dim > 0 && projection_dim < bank.size(1)) {
    // Gaussian entries scaled by 1/sqrt(d) keep expected squared distances.
    const torch::Tensor projection =
        torch::randn({bank.size(1), projection_dim}, generator, torch::kFloat32) /
        std::sqrt(static_cast<double>(projection_dim));
    points = torch::mm(points, projection.to(bank.device()));
  }
  const torch::Tensor squared_norms = points.pow(2).sum(/*dim=*/1);

  torch::Tensor picked = torch::empty({count}, torch::kInt64);
  int64_t* picked_data = picked.data_ptr<int64_t>();
  int64_t next = torch::randint(rows, {1}, generator, torch::kInt64).item<int64_t>();
  // The squared distance of each row to the nearest picked row, and a buffer
  // for the distances to the newest pick. Both are reused, because each pick
  // is one pass over memory that allocations would slow down.
  torch::Tensor nearest =
      torch::full({rows}, std::numeric_limits<float>::infinity(), points.options());
  torch::Tensor distances = torch::empty({rows}, points.options());
  ProgressBar progress(label, count, "patches");

  // Each pick is one matrix-vector product and a few element-wise passes,
  // too little work per call for LibTorch's thread pool: with 2 threads
  // instead of 1 on 2 idle cores, //benchmarks:coreset_benchmark took 2.4
  // to 4.8 times as long.
  ScopedTorchThreads single_thread(1);
  for (int64_t i = 0; i < count; ++i) {
    picked_data[i] = next;
    // |x - p|^2 = |x|^2 + |p|^2 - 2 x.p, clamped at 0 against rounding.
    torch::mv_out(distances, points, points[next]);
    distances.mul_(-2).add_(squared_norms).add_(squared_norms[next]).clamp_min_(0);
    torch::minimum_out(nearest, nearest, distances);
    // A picked row's distance is 0, so it is picked again only once every
    // row is covered, which needs count > the number of distinct rows.
    next = nearest.argmax().item<int64_t>();
    progress.Advance(1);
  }
  return picked;
}

}  // namespace panda
