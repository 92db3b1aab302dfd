#include "benchmarks/regression/speed_checks.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backbones/backbone.h"
#include "core/device.h"
#include "core/feature_extractor.h"
#include "core/status_macros.h"
#include "datasets/dataset.h"
#include "scorers/exact_knn.h"
#include "torch/torch.h"

namespace panda {
namespace {

absl::StatusOr<double> TimeOnce(const std::function<absl::Status()>& work) {
  const auto start = std::chrono::steady_clock::now();
  PANDA_RETURN_IF_ERROR(work());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

std::string Shape(int64_t rows, int64_t columns) {
  return absl::StrCat("[", rows, ", ", columns, "]");
}

}  // namespace

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  if (values.size() % 2 == 1) return values[middle];
  return (values[middle - 1] + values[middle]) / 2;
}

absl::StatusOr<SpeedMeasurement> TimeSideBySide(
    const std::function<absl::Status()>& measured,
    const std::function<absl::Status()>& reference, int repeats) {
  if (repeats < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("repeats must be at least 1, got ", repeats));
  }
  PANDA_RETURN_IF_ERROR(reference());
  PANDA_RETURN_IF_ERROR(measured());

  SpeedMeasurement result;
  for (int round = 0; round < repeats; ++round) {
    const bool reference_first = round % 2 == 0;
    double reference_seconds = 0;
    double measured_seconds = 0;
    if (reference_first) {
      PANDA_ASSIGN_OR_RETURN(reference_seconds, TimeOnce(reference));
    }
    PANDA_ASSIGN_OR_RETURN(measured_seconds, TimeOnce(measured));
    if (!reference_first) {
      PANDA_ASSIGN_OR_RETURN(reference_seconds, TimeOnce(reference));
    }
    result.timings.add_samples(measured_seconds);
    result.timings.add_reference_samples(reference_seconds);
  }

  const auto& samples = result.timings.samples();
  const auto& reference_samples = result.timings.reference_samples();
  result.timings.set_seconds(
      Median(std::vector<double>(samples.begin(), samples.end())));
  result.timings.set_reference_seconds(Median(
      std::vector<double>(reference_samples.begin(), reference_samples.end())));
  result.metrics.set_relative_speed(result.timings.reference_seconds() /
                                    result.timings.seconds());
  return result;
}

absl::StatusOr<SpeedMeasurement> MeasureKnnSearchSpeed(
    const KnnSearchSpeed& options, int repeats) {
  PANDA_ASSIGN_OR_RETURN(const torch::Device device, ResolveDevice("auto"));
  const int64_t budget = int64_t{options.memory_budget_mb()} << 20;
  torch::manual_seed(0);
  const torch::Tensor queries =
      torch::randn({options.queries(), options.dims()}).to(device);
  const torch::Tensor bank_rows =
      torch::randn({options.bank_rows(), options.dims()}).to(device);
  PANDA_ASSIGN_OR_RETURN(const KnnBank bank,
                         PrepareKnnBank(bank_rows, KnnMetric::kSquaredL2,
                                        KnnPrecision::kFloat32, budget));

  // Reading one element back waits for the device's queued work, so both
  // sides are timed to completion on CUDA as well.
  const auto search = [&]() -> absl::Status {
    PANDA_ASSIGN_OR_RETURN(KnnResult nearest,
                           SearchKnn(queries, bank, options.k(), budget));
    nearest.distances.view(-1)[0].item<float>();
    return absl::OkStatus();
  };
  const auto product = [&]() -> absl::Status {
    torch::mm(queries, bank_rows.t()).view(-1)[0].item<float>();
    return absl::OkStatus();
  };
  PANDA_ASSIGN_OR_RETURN(SpeedMeasurement result,
                         TimeSideBySide(search, product, repeats));
  result.timings.set_measured_work(
      absl::StrCat("SearchKnn of ", Shape(options.queries(), options.dims()),
                   " queries in ", Shape(options.bank_rows(), options.dims()),
                   " bank rows, k = ", options.k()));
  result.timings.set_reference_work(
      absl::StrCat("torch::mm ", Shape(options.queries(), options.dims()),
                   " x ", Shape(options.dims(), options.bank_rows())));
  result.timings.set_device(device.is_cuda() ? "cuda" : "cpu");
  return result;
}

absl::StatusOr<SpeedMeasurement> MeasureFeatureExtractionSpeed(
    const PipelineConfig& config, int images, int repeats) {
  PANDA_ASSIGN_OR_RETURN(const torch::Device device,
                         ResolveDevice(config.device()));
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<Dataset> dataset,
                         DatasetRegistry().Create(config.dataset().name(),
                                                  config.dataset().options()));
  PANDA_ASSIGN_OR_RETURN(
      std::unique_ptr<Backbone> backbone,
      BackboneRegistry().Create(config.backbone().name(),
                                config.backbone().options()));
  PANDA_ASSIGN_OR_RETURN(ImageSet test, dataset->Load(Split::kTest));
  if (images > test.images.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "speed.feature_extraction.images: ", images, " requested, but the ",
        "test split of ", config.dataset().name(), " has only ",
        test.images.size(0), " images"));
  }
  const int64_t count = images;
  const torch::Tensor pixels = test.images.slice(0, 0, count).contiguous();
  const int64_t batch_size = config.batch_size();

  // The reference's input: every batch preprocessed before the timing.
  backbone->module().eval();
  backbone->module().to(device);
  std::vector<torch::Tensor> inputs;
  {
    torch::NoGradGuard no_grad;
    for (int64_t begin = 0; begin < count; begin += batch_size) {
      const int64_t end = std::min(count, begin + batch_size);
      inputs.push_back(
          backbone->Preprocess(pixels.slice(0, begin, end).to(device)));
    }
  }

  const auto extract = [&]() -> absl::Status {
    return ExtractPooledFeatures(*backbone, pixels, batch_size, device,
                                 "feature extraction speed")
        .status();
  };
  // Forward as ExtractPooledFeatures runs it, features copied to the CPU,
  // without slicing, preprocessing or the check for non-finite values.
  const auto forward = [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    for (const torch::Tensor& input : inputs) {
      PANDA_ASSIGN_OR_RETURN(TapMap taps, backbone->Forward(input, {"pooled"}));
      taps.at("pooled").to(torch::kCPU, torch::kFloat32);
    }
    return absl::OkStatus();
  };
  PANDA_ASSIGN_OR_RETURN(SpeedMeasurement result,
                         TimeSideBySide(extract, forward, repeats));

  const std::string what = absl::StrCat(
      count, " ", config.dataset().name(), " test images, ",
      config.backbone().name(), " backbone, batches of ", batch_size);
  result.timings.set_measured_work(
      absl::StrCat("ExtractPooledFeatures of ", what));
  result.timings.set_reference_work(absl::StrCat(
      "Backbone::Forward on the same input, preprocessed beforehand"));
  result.timings.set_device(device.is_cuda() ? "cuda" : "cpu");
  return result;
}

}  // namespace panda
