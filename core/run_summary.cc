#include "core/run_summary.h"

#include <cmath>
#include <map>
#include <vector>

namespace panda {
namespace {

double Mean(const std::vector<double>& values) {
  double sum = 0;
  for (double value : values) sum += value;
  return values.empty() ? 0 : sum / values.size();
}

// Sample standard deviation (n - 1 in the denominator); 0 for fewer than 2.
double SampleStd(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const double mean = Mean(values);
  double squares = 0;
  for (double value : values) squares += (value - mean) * (value - mean);
  return std::sqrt(squares / (values.size() - 1));
}

}  // namespace

void SummarizeRun(RunResult& result) {
  struct PerClass {
    std::string name;
    std::vector<double> roc_auc, average_precision, f1_max, pixel_roc_auc, aupro;
  };
  std::map<int, PerClass> classes;
  std::map<int, std::vector<double>> seeds;
  std::vector<double> pixel_roc_aucs, aupros;
  for (const ClassResult& row : result.classes()) {
    if (row.has_segmentation()) {
      pixel_roc_aucs.push_back(row.segmentation().pixel_roc_auc());
      aupros.push_back(row.segmentation().aupro());
      classes[row.normal_class()].pixel_roc_auc.push_back(row.segmentation().pixel_roc_auc());
      classes[row.normal_class()].aupro.push_back(row.segmentation().aupro());
    }
    PerClass& entry = classes[row.normal_class()];
    entry.name = row.class_name();
    entry.roc_auc.push_back(row.roc_auc());
    entry.average_precision.push_back(row.average_precision());
    entry.f1_max.push_back(row.f1_max());
    seeds[row.seed()].push_back(row.roc_auc());
  }

  result.clear_summaries();
  std::vector<double> class_means, average_precisions, f1_maxima;
  for (const auto& [normal_class, entry] : classes) {
    ClassSummary* summary = result.add_summaries();
    summary->set_normal_class(normal_class);
    summary->set_class_name(entry.name);
    summary->set_roc_auc_mean(Mean(entry.roc_auc));
    summary->set_roc_auc_std(SampleStd(entry.roc_auc));
    summary->set_average_precision_mean(Mean(entry.average_precision));
    summary->set_f1_max_mean(Mean(entry.f1_max));
    if (!entry.pixel_roc_auc.empty()) {
      summary->set_pixel_roc_auc_mean(Mean(entry.pixel_roc_auc));
      summary->set_aupro_mean(Mean(entry.aupro));
    }
    class_means.push_back(summary->roc_auc_mean());
    average_precisions.push_back(summary->average_precision_mean());
    f1_maxima.push_back(summary->f1_max_mean());
  }

  result.clear_seeds();
  std::vector<double> seed_means;
  for (const auto& [seed, values] : seeds) {
    SeedSummary* summary = result.add_seeds();
    summary->set_seed(seed);
    summary->set_mean_roc_auc(Mean(values));
    seed_means.push_back(summary->mean_roc_auc());
  }

  result.set_mean_roc_auc(Mean(class_means));
  result.set_mean_roc_auc_std(SampleStd(seed_means));
  result.set_mean_average_precision(Mean(average_precisions));
  result.set_mean_f1_max(Mean(f1_maxima));
  if (!pixel_roc_aucs.empty()) {
    result.set_mean_pixel_roc_auc(Mean(pixel_roc_aucs));
    result.set_mean_aupro(Mean(aupros));
  }
}

}  // namespace panda
