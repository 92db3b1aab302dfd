// RunPipeline on a generated image folder with the "lenet" backbone and the
// "knn" scorer: the pooled-feature path, which streams the images from the
// folder and caches their features.
#include "core/pipeline_runner.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "config/pipeline.pb.h"
#include "config/results.pb.h"
#include "core/logging.h"
#include "core/pipeline_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"

namespace panda {
namespace {

using ::testing::HasSubstr;

class PipelineRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "pipeline_runner_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    ASSERT_TRUE(std::filesystem::create_directories(root_)) << root_;
    SetMinLogLevel(LogLevel::kError);

    // Class "a" is dark noise and class "b" bright noise, 6 training and 4
    // test images each.
    cv::RNG rng(9);
    for (const char* split : {"train", "test"}) {
      const int count = std::string(split) == "train" ? 6 : 4;
      for (int i = 0; i < count; ++i) {
        for (const char* name : {"a", "b"}) {
          cv::Mat image(12, 12, CV_8UC3);
          const int low = std::string(name) == "a" ? 0 : 128;
          rng.fill(image, cv::RNG::UNIFORM, low, low + 128);
          const std::string folder =
              absl::StrCat(root_, "/images/", split, "/", name);
          std::filesystem::create_directories(folder);
          const std::string path = absl::StrCat(folder, "/", i, ".png");
          ASSERT_TRUE(cv::imwrite(path, image)) << path;
          image_paths_.push_back(path);
        }
      }
    }
  }

  void TearDown() override { SetMinLogLevel(LogLevel::kInfo); }

  // A config over the generated folder; `extra` adds fields, and
  // `dataset_extra` options of the image_folder dataset.
  PipelineConfig Config(const std::string& extra,
                        const std::string& dataset_extra = "") {
    const std::string text = absl::StrCat(
        "name: \"runner_test\"\n"
        "dataset { name: \"image_folder\" options { "
        "[type.googleapis.com/panda.ImageFolderDatasetOptions] { root: \"",
        root_, "/images\" image_size: 16 num_decode_threads: 2 ", dataset_extra,
        " } } }\n"
        "backbone { name: \"lenet\" options { "
        "[type.googleapis.com/panda.LenetBackboneOptions] { seed: 3 } } }\n"
        "adapter { name: \"none\" }\n"
        "scorer { name: \"knn\" options { "
        "[type.googleapis.com/panda.KnnScorerOptions] { k: 2 } } }\n"
        "batch_size: 3\n"
        "num_threads: 1\n"
        "device: \"cpu\"\n"
        "cache_dir: \"",
        root_, "/cache\"\n", extra);
    absl::StatusOr<PipelineConfig> config =
        ParsePipelineConfig(text, "runner test config");
    EXPECT_TRUE(config.ok()) << config.status();
    return config.ok() ? *config : PipelineConfig();
  }

  // Overwrites every generated image with bytes that no decoder reads,
  // keeping its size and modification time, which the data fingerprint of
  // the feature cache covers.
  void CorruptImagesKeepingStamps() {
    for (const std::string& path : image_paths_) {
      struct stat info;
      ASSERT_EQ(::stat(path.c_str(), &info), 0) << path;
      {
        std::ofstream file(path, std::ios::binary | std::ios::trunc);
        file << std::string(static_cast<size_t>(info.st_size), 'x');
      }
      const struct timespec times[2] = {info.st_atim, info.st_mtim};
      ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
    }
  }

  std::string root_;
  std::vector<std::string> image_paths_;
};

TEST_F(PipelineRunnerTest, WarmFeatureCacheDecodesNoImage) {
  const PipelineConfig config = Config("");
  absl::StatusOr<RunResult> first = RunPipeline(config);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->extraction_size(), 2);
  for (const ExtractionStats& stats : first->extraction()) {
    EXPECT_TRUE(stats.extracted()) << stats.split();
  }
  EXPECT_EQ(first->extraction(0).images(), 12);
  EXPECT_EQ(first->extraction(1).images(), 8);

  // With every image unreadable, only a run that decodes none succeeds.
  CorruptImagesKeepingStamps();
  absl::StatusOr<RunResult> cached = RunPipeline(config);
  ASSERT_TRUE(cached.ok()) << cached.status();
  ASSERT_EQ(cached->extraction_size(), 2);
  for (const ExtractionStats& stats : cached->extraction()) {
    EXPECT_FALSE(stats.extracted()) << stats.split();
  }
  ASSERT_EQ(cached->classes_size(), first->classes_size());
  for (int c = 0; c < first->classes_size(); ++c) {
    EXPECT_EQ(cached->classes(c).roc_auc(), first->classes(c).roc_auc());
  }

  // Without the cache the same files fail at the first batch.
  PipelineConfig uncached = config;
  uncached.set_cache_dir("");
  absl::StatusOr<RunResult> failed = RunPipeline(uncached);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("train features: reading images 0 to 2: failed to "
                        "decode image " +
                        root_ + "/images/train/a/0.png"));
}

TEST_F(PipelineRunnerTest, StreamedRunMatchesLoadedRun) {
  // Random subsets for two seeds and a held-out quarter of each normal
  // class. With skip_unreadable, image_folder's reader loads the split into
  // memory first; without it, images are decoded batch by batch.
  const std::string extra =
      "subset { max_train_per_class: 4 max_test_per_class: 3 random: true }\n"
      "seeds: [0, 1]\n"
      "deployment { holdout_fraction: 0.25 }\n";
  PipelineConfig streamed_config = Config(extra);
  streamed_config.set_cache_dir("");
  PipelineConfig loaded_config = Config(extra, "skip_unreadable: true");
  loaded_config.set_cache_dir("");

  absl::StatusOr<RunResult> streamed = RunPipeline(streamed_config);
  absl::StatusOr<RunResult> loaded = RunPipeline(loaded_config);
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  ASSERT_TRUE(loaded.ok()) << loaded.status();

  // Two classes times two seeds.
  ASSERT_EQ(streamed->classes_size(), 4);
  ASSERT_EQ(loaded->classes_size(), 4);
  for (int i = 0; i < 4; ++i) {
    const ClassResult& a = streamed->classes(i);
    const ClassResult& b = loaded->classes(i);
    SCOPED_TRACE(testing::Message()
                 << "class " << a.normal_class() << ", seed " << a.seed());
    // 4 chosen training images less round(4 * 0.25) held out; 3 test
    // images of each class.
    EXPECT_EQ(a.train_images(), 3);
    EXPECT_EQ(a.test_images(), 6);
    EXPECT_EQ(a.normal_class(), b.normal_class());
    EXPECT_EQ(a.seed(), b.seed());
    EXPECT_EQ(a.roc_auc(), b.roc_auc());
    EXPECT_EQ(a.deployment_threshold(), b.deployment_threshold());
    EXPECT_EQ(a.deployment_false_positive_rate(),
              b.deployment_false_positive_rate());
  }
  // Random subsets differ between the seeds, so the seeds' scores do too.
  EXPECT_NE(streamed->classes(0).deployment_threshold(),
            streamed->classes(2).deployment_threshold());
}

}  // namespace
}  // namespace panda
