#include "core/run_summary.h"

#include <cmath>

#include "gtest/gtest.h"

namespace panda {
namespace {

void AddRow(RunResult& result, int normal_class, int seed, double roc_auc) {
  ClassResult* row = result.add_classes();
  row->set_normal_class(normal_class);
  row->set_class_name(normal_class == 0 ? "zero" : "one");
  row->set_seed(seed);
  row->set_roc_auc(roc_auc);
  row->set_average_precision(roc_auc / 2);
  row->set_f1_max(roc_auc / 4);
}

TEST(RunSummaryTest, MeansAndSpreadAcrossSeeds) {
  // Class 0 scores 0.8 and 0.6 under seeds 1 and 2; class 1 scores 1.0 and
  // 0.8. Per-class means: 0.7 and 0.9, so the run mean is 0.8. Per-seed
  // means: 0.9 and 0.7, whose sample standard deviation is
  // sqrt(((0.1)^2 + (0.1)^2) / 1) = 0.141421.
  RunResult result;
  AddRow(result, 0, 1, 0.8);
  AddRow(result, 0, 2, 0.6);
  AddRow(result, 1, 1, 1.0);
  AddRow(result, 1, 2, 0.8);
  SummarizeRun(result);

  ASSERT_EQ(result.summaries_size(), 2);
  EXPECT_NEAR(result.summaries(0).roc_auc_mean(), 0.7, 1e-12);
  EXPECT_NEAR(result.summaries(0).roc_auc_std(), std::sqrt(0.02), 1e-12);
  EXPECT_EQ(result.summaries(0).class_name(), "zero");
  EXPECT_NEAR(result.summaries(1).roc_auc_mean(), 0.9, 1e-12);
  EXPECT_NEAR(result.summaries(1).average_precision_mean(), 0.45, 1e-12);
  EXPECT_NEAR(result.summaries(1).f1_max_mean(), 0.225, 1e-12);

  ASSERT_EQ(result.seeds_size(), 2);
  EXPECT_EQ(result.seeds(0).seed(), 1);
  EXPECT_NEAR(result.seeds(0).mean_roc_auc(), 0.9, 1e-12);
  EXPECT_NEAR(result.seeds(1).mean_roc_auc(), 0.7, 1e-12);

  EXPECT_NEAR(result.mean_roc_auc(), 0.8, 1e-12);
  EXPECT_NEAR(result.mean_roc_auc_std(), 0.1414213562, 1e-9);
  EXPECT_NEAR(result.mean_average_precision(), 0.4, 1e-12);
}

TEST(RunSummaryTest, OneSeedHasZeroSpread) {
  RunResult result;
  AddRow(result, 0, 0, 0.75);
  SummarizeRun(result);
  EXPECT_EQ(result.summaries(0).roc_auc_std(), 0);
  EXPECT_EQ(result.mean_roc_auc_std(), 0);
  EXPECT_NEAR(result.mean_roc_auc(), 0.75, 1e-12);
}

TEST(RunSummaryTest, PixelMetricsOnlyForSegmentationRuns) {
  RunResult plain;
  AddRow(plain, 0, 0, 0.75);
  SummarizeRun(plain);
  EXPECT_FALSE(plain.has_mean_pixel_roc_auc());
  EXPECT_FALSE(plain.summaries(0).has_aupro_mean());

  // One class under two seeds: pixel ROC-AUC 0.9 and 0.8, AUPRO 0.6 and 0.4.
  RunResult segmented;
  AddRow(segmented, 0, 0, 0.75);
  AddRow(segmented, 0, 1, 0.70);
  segmented.mutable_classes(0)->mutable_segmentation()->set_pixel_roc_auc(0.9);
  segmented.mutable_classes(0)->mutable_segmentation()->set_aupro(0.6);
  segmented.mutable_classes(1)->mutable_segmentation()->set_pixel_roc_auc(0.8);
  segmented.mutable_classes(1)->mutable_segmentation()->set_aupro(0.4);
  SummarizeRun(segmented);
  EXPECT_NEAR(segmented.summaries(0).pixel_roc_auc_mean(), 0.85, 1e-12);
  EXPECT_NEAR(segmented.summaries(0).aupro_mean(), 0.5, 1e-12);
  EXPECT_NEAR(segmented.mean_pixel_roc_auc(), 0.85, 1e-12);
  EXPECT_NEAR(segmented.mean_aupro(), 0.5, 1e-12);
}

}  // namespace
}  // namespace panda
