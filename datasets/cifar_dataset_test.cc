#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "datasets/cifar_dataset_options.pb.h"
#include "datasets/dataset.h"
#include "gmock/gmock.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "torch/types.h"

namespace panda {
namespace {

using ::testing::HasSubstr;
using Bytes = std::vector<uint8_t>;

constexpr int kSide = 32;
constexpr int kPlane = kSide * kSide;

// The test's pixel pattern: channel c (0 = R) of pixel (row, col) of the
// image at position `image` of its split.
uint8_t PatternPixel(int image, int row, int col, int c) {
  return static_cast<uint8_t>((image * 37 + row * 7 + col * 3 + c * 101) % 256);
}

// One record as the CIFAR authors lay it out: the label bytes, then the red,
// green and blue planes, each row-major.
Bytes Record(const Bytes& labels, int image) {
  Bytes record = labels;
  for (int c = 0; c < 3; ++c) {
    for (int row = 0; row < kSide; ++row) {
      for (int col = 0; col < kSide; ++col) {
        record.push_back(PatternPixel(image, row, col, c));
      }
    }
  }
  return record;
}

// Records for `labels` (one entry per record), the images numbered from
// `first_image`.
Bytes Records(const std::vector<Bytes>& labels, int first_image) {
  Bytes out;
  for (size_t i = 0; i < labels.size(); ++i) {
    const Bytes record = Record(labels[i], first_image + static_cast<int>(i));
    out.insert(out.end(), record.begin(), record.end());
  }
  return out;
}

std::string NumberedNames(const std::string& prefix, int count) {
  std::string text;
  for (int i = 0; i < count; ++i) text += prefix + std::to_string(i) + "\n";
  return text;
}

// Checks every pixel of `images` against PatternPixel.
void ExpectPattern(const torch::Tensor& images) {
  ASSERT_EQ(images.dim(), 4);
  ASSERT_TRUE(images.is_contiguous());
  auto pixels = images.accessor<uint8_t, 4>();
  int mismatches = 0;
  for (int i = 0; i < images.size(0); ++i) {
    for (int row = 0; row < kSide; ++row) {
      for (int col = 0; col < kSide; ++col) {
        for (int c = 0; c < 3; ++c) {
          if (pixels[i][row][col][c] != PatternPixel(i, row, col, c) &&
              ++mismatches <= 5) {
            ADD_FAILURE() << "image " << i << " pixel (" << row << ", " << col
                          << ") channel " << c << ": got "
                          << int{pixels[i][row][col][c]} << ", expected "
                          << int{PatternPixel(i, row, col, c)};
          }
        }
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

class CifarDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ =
        ::testing::TempDir() + "cifar_" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(::mkdir(directory_.c_str(), 0755), 0) << directory_;
  }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = directory_ + "/" + name;
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(file.good()) << path;
    return path;
  }

  std::string Write(const std::string& name, const Bytes& bytes) {
    return Write(name, std::string(bytes.begin(), bytes.end()));
  }

  // CIFAR-10 with 2, 1, 1, 1 and 3 records in the training batches and 2 in
  // the test batch.
  void WriteCifar10() {
    Write("data_batch_1.bin", Records({{3}, {0}}, 0));
    Write("data_batch_2.bin", Records({{9}}, 2));
    Write("data_batch_3.bin", Records({{1}}, 3));
    Write("data_batch_4.bin", Records({{1}}, 4));
    Write("data_batch_5.bin", Records({{5}, {6}, {7}}, 5));
    Write("test_batch.bin", Records({{2}, {8}}, 0));
    // The real file ends with a blank line.
    Write("batches.meta.txt", std::string("airplane\nautomobile\nbird\ncat\n"
                                          "deer\ndog\nfrog\nhorse\nship\n"
                                          "truck\n\n"));
  }

  // CIFAR-100 with 3 training and 2 test records of (coarse, fine) labels.
  void WriteCifar100() {
    Write("train.bin", Records({{0, 5}, {19, 99}, {7, 42}}, 0));
    Write("test.bin", Records({{4, 0}, {11, 17}}, 0));
    Write("coarse_label_names.txt", NumberedNames("coarse", 20));
    Write("fine_label_names.txt", NumberedNames("fine", 100));
  }

  absl::StatusOr<std::unique_ptr<Dataset>> Create(const std::string& text) {
    CifarDatasetOptions options;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options))
        << text;
    google::protobuf::Any any;
    any.PackFrom(options);
    return DatasetRegistry().Create("cifar", any);
  }

  std::string DirectoryOption() const {
    return "directory: \"" + directory_ + "\"\n";
  }

  std::string directory_;
};

TEST_F(CifarDatasetTest, Cifar10ReadsBatchesInOrder) {
  WriteCifar10();
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(
      (*dataset)->class_names(),
      (std::vector<std::string>{"airplane", "automobile", "bird", "cat", "deer",
                                "dog", "frog", "horse", "ship", "truck"}));

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->images.sizes(), (std::vector<int64_t>{8, 32, 32, 3}));
  EXPECT_EQ(train->images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(train->labels, (std::vector<int64_t>{3, 0, 9, 1, 1, 5, 6, 7}));
  ExpectPattern(train->images);

  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->images.sizes(), (std::vector<int64_t>{2, 32, 32, 3}));
  EXPECT_EQ(test->labels, (std::vector<int64_t>{2, 8}));
  ExpectPattern(test->images);
}

TEST_F(CifarDatasetTest, PlanesBecomeRgbChannels) {
  WriteCifar10();
  // One record, all zero but three bytes: red plane byte 0 (row 0, col 0),
  // green plane byte 33 (row 1, col 1) and blue plane byte 1023 (row 31,
  // col 31).
  Bytes record(1 + 3 * kPlane, 0);
  record[0] = 4;
  record[1 + 0] = 200;
  record[1 + kPlane + 33] = 100;
  record[1 + 2 * kPlane + 1023] = 50;
  Write("test_batch.bin", record);
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->labels, (std::vector<int64_t>{4}));
  EXPECT_EQ(test->images[0][0][0][0].item<uint8_t>(), 200);
  EXPECT_EQ(test->images[0][1][1][1].item<uint8_t>(), 100);
  EXPECT_EQ(test->images[0][31][31][2].item<uint8_t>(), 50);
  EXPECT_EQ(test->images.sum(torch::kInt64).item<int64_t>(), 350);
}

TEST_F(CifarDatasetTest, Cifar100UsesCoarseLabelsByDefault) {
  WriteCifar100();
  auto dataset = Create(DirectoryOption() + "variant: CIFAR100");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ((*dataset)->class_names().size(), 20u);
  EXPECT_EQ((*dataset)->class_names()[19], "coarse19");

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->images.sizes(), (std::vector<int64_t>{3, 32, 32, 3}));
  EXPECT_EQ(train->labels, (std::vector<int64_t>{0, 19, 7}));
  ExpectPattern(train->images);

  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->labels, (std::vector<int64_t>{4, 11}));
  ExpectPattern(test->images);
}

TEST_F(CifarDatasetTest, Cifar100FineLabels) {
  WriteCifar100();
  auto dataset = Create(DirectoryOption() + "variant: CIFAR100 label: FINE");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ((*dataset)->class_names().size(), 100u);
  EXPECT_EQ((*dataset)->class_names()[42], "fine42");

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->labels, (std::vector<int64_t>{5, 99, 42}));
  ExpectPattern(train->images);
}

TEST_F(CifarDatasetTest, TruncatedFileIsDataLoss) {
  WriteCifar10();
  Bytes records = Records({{2}, {8}}, 0);
  records.pop_back();
  const std::string path = Write("test_batch.bin", records);
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  ASSERT_EQ(test.status().code(), absl::StatusCode::kDataLoss) << test.status();
  // 2 * 3073 - 1 = 6145 bytes = 1 record and 3072 bytes.
  EXPECT_THAT(std::string(test.status().message()),
              HasSubstr(path + " has 6145 bytes"));
  EXPECT_THAT(std::string(test.status().message()),
              HasSubstr("3073-byte records: 1 records and 3072 bytes left"));
}

TEST_F(CifarDatasetTest, ExtraBytesAreDataLoss) {
  WriteCifar100();
  Bytes records = Records({{0, 5}, {19, 99}, {7, 42}}, 0);
  records.insert(records.end(), 5, 0);
  const std::string path = Write("train.bin", records);
  auto dataset = Create(DirectoryOption() + "variant: CIFAR100");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_EQ(train.status().code(), absl::StatusCode::kDataLoss)
      << train.status();
  // 3 * 3074 + 5 = 9227 bytes.
  EXPECT_THAT(std::string(train.status().message()),
              HasSubstr(path + " has 9227 bytes"));
  EXPECT_THAT(std::string(train.status().message()),
              HasSubstr("3074-byte records: 3 records and 5 bytes left"));
}

TEST_F(CifarDatasetTest, EmptyFileIsDataLoss) {
  WriteCifar10();
  const std::string path = Write("data_batch_4.bin", Bytes());
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_EQ(train.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(train.status().message()),
              HasSubstr(path + " is empty"));
}

TEST_F(CifarDatasetTest, Cifar10LabelOutOfRangeIsDataLoss) {
  WriteCifar10();
  const std::string path = Write("data_batch_2.bin", Records({{9}, {10}}, 0));
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_EQ(train.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(train.status().message()),
              HasSubstr(path + ": record 1 has label 10, but valid labels "
                               "are 0 to 9"));
}

TEST_F(CifarDatasetTest, Cifar100LabelsOutOfRangeAreDataLoss) {
  WriteCifar100();
  auto dataset = Create(DirectoryOption() + "variant: CIFAR100");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  const std::string path = Write("test.bin", Records({{4, 0}, {20, 17}}, 0));
  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  ASSERT_EQ(test.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(test.status().message()),
              HasSubstr(path + ": record 1 has coarse label 20, but valid "
                               "coarse labels are 0 to 19"));

  // The fine label is checked even when the coarse labels are the classes.
  Write("test.bin", Records({{4, 100}}, 0));
  test = (*dataset)->Load(Split::kTest);
  ASSERT_EQ(test.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(test.status().message()),
              HasSubstr(path + ": record 0 has fine label 100, but valid "
                               "fine labels are 0 to 99"));
}

TEST_F(CifarDatasetTest, MissingBatchIsNotFound) {
  WriteCifar10();
  const std::string path = directory_ + "/data_batch_3.bin";
  ASSERT_EQ(::unlink(path.c_str()), 0);
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_EQ(train.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(train.status().message()), HasSubstr(path));
  // The test split does not need the missing file.
  EXPECT_TRUE((*dataset)->Load(Split::kTest).ok());
}

TEST_F(CifarDatasetTest, MissingClassNamesAreNotFound) {
  WriteCifar100();
  const std::string path = directory_ + "/fine_label_names.txt";
  ASSERT_EQ(::unlink(path.c_str()), 0);
  // Coarse labels do not need the fine names.
  EXPECT_TRUE(Create(DirectoryOption() + "variant: CIFAR100").ok());

  auto dataset = Create(DirectoryOption() + "variant: CIFAR100 label: FINE");
  ASSERT_EQ(dataset.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(dataset.status().message()), HasSubstr(path));
}

TEST_F(CifarDatasetTest, WrongNumberOfClassNamesIsDataLoss) {
  WriteCifar10();
  const std::string path = Write("batches.meta.txt", NumberedNames("class", 9));
  auto dataset = Create(DirectoryOption());
  ASSERT_EQ(dataset.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(dataset.status().message()),
              HasSubstr(path + " lists 9 names, but the data set has 10"));
}

TEST_F(CifarDatasetTest, BlankLineBeforeNameIsDataLoss) {
  WriteCifar10();
  const std::string path =
      Write("batches.meta.txt", "a\nb\n\n" + NumberedNames("class", 8));
  auto dataset = Create(DirectoryOption());
  ASSERT_EQ(dataset.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(dataset.status().message()),
              HasSubstr(path + ": line 3 is blank but a name follows"));
}

TEST_F(CifarDatasetTest, WindowsLineEndingsAreStripped) {
  WriteCifar100();
  std::string names;
  for (int i = 0; i < 20; ++i) names += "coarse" + std::to_string(i) + "\r\n";
  Write("coarse_label_names.txt", names);
  auto dataset = Create(DirectoryOption() + "variant: CIFAR100");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ((*dataset)->class_names()[3], "coarse3");
}

TEST_F(CifarDatasetTest, BadOptionsAreRejected) {
  auto no_directory = Create("");
  EXPECT_EQ(no_directory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_directory.status().message()),
              HasSubstr("`directory` is required"));

  auto label_for_cifar10 = Create(DirectoryOption() + "label: FINE");
  EXPECT_EQ(label_for_cifar10.status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(label_for_cifar10.status().message()),
              HasSubstr("`label` applies only to variant CIFAR100"));

  const std::string missing = directory_ + "/absent";
  auto missing_directory = Create("directory: \"" + missing + "\"");
  EXPECT_EQ(missing_directory.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing_directory.status().message()),
              HasSubstr(missing));

  const std::string file = Write("plain_file", std::string("x"));
  auto not_directory = Create("directory: \"" + file + "\"");
  EXPECT_EQ(not_directory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(not_directory.status().message()),
              HasSubstr("not a directory"));
}

TEST_F(CifarDatasetTest, FingerprintTracksEveryFile) {
  WriteCifar10();
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<std::string> before = (*dataset)->Fingerprint(Split::kTrain);
  ASSERT_TRUE(before.ok()) << before.status();
  for (int batch = 1; batch <= 5; ++batch) {
    EXPECT_THAT(*before, HasSubstr(directory_ + "/data_batch_" +
                                   std::to_string(batch) + ".bin size="));
  }
  // Batch 5 contains 3 records of 3073 bytes.
  EXPECT_THAT(*before, HasSubstr("data_batch_5.bin size=9219 mtime="));
  EXPECT_THAT(*before, HasSubstr(directory_ + "/batches.meta.txt size="));

  const std::string batch = directory_ + "/data_batch_4.bin";
  const struct timeval times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimes(batch.c_str(), times), 0);
  absl::StatusOr<std::string> touched = (*dataset)->Fingerprint(Split::kTrain);
  ASSERT_TRUE(touched.ok()) << touched.status();
  EXPECT_NE(*touched, *before);

  absl::StatusOr<std::string> test = (*dataset)->Fingerprint(Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_THAT(*test, HasSubstr("test_batch.bin size=6146 mtime="));
}

// Outlier exposure reads a second dataset next to the first: two instances
// must not share state.
TEST_F(CifarDatasetTest, TwoInstancesLoadIndependently) {
  WriteCifar10();
  const std::string cifar10_directory = directory_;
  directory_ += "/cifar100";
  ASSERT_EQ(::mkdir(directory_.c_str(), 0755), 0);
  WriteCifar100();

  auto cifar10 = Create("directory: \"" + cifar10_directory + "\"");
  auto cifar100 = Create(DirectoryOption() + "variant: CIFAR100");
  ASSERT_TRUE(cifar10.ok()) << cifar10.status();
  ASSERT_TRUE(cifar100.ok()) << cifar100.status();

  absl::StatusOr<ImageSet> first = (*cifar100)->Load(Split::kTrain);
  absl::StatusOr<ImageSet> second = (*cifar10)->Load(Split::kTrain);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->labels, (std::vector<int64_t>{0, 19, 7}));
  EXPECT_EQ(second->labels, (std::vector<int64_t>{3, 0, 9, 1, 1, 5, 6, 7}));
  EXPECT_EQ((*cifar10)->class_names().size(), 10u);
  EXPECT_EQ((*cifar100)->class_names().size(), 20u);
}

}  // namespace
}  // namespace panda
