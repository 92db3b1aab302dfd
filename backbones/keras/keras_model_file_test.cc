#include "backbones/keras/keras_model_file.h"

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "backbones/keras/keras_test_models.h"
#include "core/fnv1a.h"
#include "gtest/gtest.h"

namespace panda::keras {
namespace {

using ::panda::keras::testing::EncodeModelFile;
using ::panda::keras::testing::ModelBuilder;
using ::panda::keras::testing::ModelToJson;
using ::panda::keras::testing::WriteTestFile;

// Byte offsets of the fixed-size fields.
constexpr size_t kVersionOffset = 8;
constexpr size_t kHeaderLengthOffset = 12;

ModelBuilder SmallModel() {
  ModelBuilder builder("small", 4, 4, 3);
  Layer* conv = builder.AddLayer("Conv2D", "conv", {"input"});
  conv->set_filters(2);
  conv->add_kernel_size(1);
  conv->add_kernel_size(1);
  builder.AddWeight("conv", "kernel", {1, 1, 3, 2});
  builder.AddWeight("conv", "bias", {2});
  return builder;
}

absl::StatusOr<ModelFile> ParseBytes(const std::string& bytes,
                                     const std::string& path) {
  std::istringstream stream(bytes);
  return ParseModelFile(stream, bytes.size(), path);
}

// Expects DataLoss with a message that names `path` and contains `expected`.
void ExpectDataLoss(const absl::StatusOr<ModelFile>& file, const std::string& path,
                    const std::string& expected) {
  ASSERT_FALSE(file.ok()) << "expected DataLoss containing \"" << expected << "\"";
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
  EXPECT_TRUE(absl::StrContains(file.status().message(), path)) << file.status();
  EXPECT_TRUE(absl::StrContains(file.status().message(), expected)) << file.status();
}

TEST(KerasModelFileTest, ReadsValidFile) {
  const ModelBuilder builder = SmallModel();
  const std::string path = WriteTestFile("valid.pkm", builder.Encode());

  const absl::StatusOr<ModelFile> file = ReadModelFile(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->path, path);
  EXPECT_EQ(file->model.name(), "small");
  ASSERT_EQ(file->model.layers_size(), 2);
  EXPECT_EQ(file->model.layers(1).class_name(), "Conv2D");
  ASSERT_EQ(file->model.weights_size(), 2);
  EXPECT_EQ(file->offsets, (std::vector<size_t>{0, 6, 8}));
  EXPECT_EQ(file->weight_index.at("conv/bias"), 1);
  EXPECT_EQ(file->data, builder.ConcatenatedValues());
  EXPECT_EQ(file->WeightData(1)[0], builder.values("conv/bias")[0]);

  const std::vector<float> values = builder.ConcatenatedValues();
  EXPECT_EQ(file->checksum, Fnv1a64(values.data(), values.size() * sizeof(float)));
}

TEST(KerasModelFileTest, MissingFileIsNotFound) {
  const std::string path = WriteTestFile("placeholder", "") + "_missing.pkm";
  const absl::StatusOr<ModelFile> file = ReadModelFile(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(file.status().message(), path)) << file.status();
}

TEST(KerasModelFileTest, DirectoryIsInvalidArgument) {
  const std::string file_path = WriteTestFile("placeholder", "");
  const std::string folder = file_path.substr(0, file_path.rfind('/'));
  const absl::StatusOr<ModelFile> file = ReadModelFile(folder);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(file.status().message(), folder)) << file.status();
}

TEST(KerasModelFileTest, TruncationAtEveryLengthIsDataLoss) {
  const std::string bytes = SmallModel().Encode();
  for (size_t length = 0; length < bytes.size(); ++length) {
    SCOPED_TRACE(absl::StrCat("truncated to ", length, " of ", bytes.size(), " bytes"));
    const std::string path =
        WriteTestFile(absl::StrCat("truncated_", length, ".pkm"), bytes.substr(0, length));
    const absl::StatusOr<ModelFile> file = ReadModelFile(path);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
    EXPECT_TRUE(absl::StrContains(file.status().message(), path)) << file.status();
  }
}

TEST(KerasModelFileTest, TruncationInDataNamesBothLengths) {
  const std::string bytes = SmallModel().Encode();
  const std::string path = "memory/short.pkm";
  ExpectDataLoss(ParseBytes(bytes.substr(0, bytes.size() - 3), path), path,
                 absl::StrCat("at least ", bytes.size(), " bytes, but it has ",
                              bytes.size() - 3));
}

TEST(KerasModelFileTest, TrailingBytesAreDataLoss) {
  const std::string path = "memory/long.pkm";
  ExpectDataLoss(ParseBytes(SmallModel().Encode() + "xyz", path), path,
                 "3 unexpected bytes follow the checksum");
}

TEST(KerasModelFileTest, WrongMagicIsDataLoss) {
  std::string bytes = SmallModel().Encode();
  bytes[0] = 'Q';
  const std::string path = "memory/magic.pkm";
  ExpectDataLoss(ParseBytes(bytes, path), path,
                 "expected magic \"PANDAKRS\", found \"QANDAKRS\"");
}

TEST(KerasModelFileTest, UnknownVersionIsDataLoss) {
  std::string bytes = SmallModel().Encode();
  bytes[kVersionOffset] = 2;
  const std::string path = "memory/version.pkm";
  ExpectDataLoss(ParseBytes(bytes, path), path,
                 "format version 2 is not supported; expected 1");
}

TEST(KerasModelFileTest, HugeHeaderLengthIsDataLossWithoutAllocating) {
  std::string bytes = SmallModel().Encode();
  for (int i = 0; i < 4; ++i) bytes[kHeaderLengthOffset + i] = '\xff';
  const std::string path = "memory/header_length.pkm";
  ExpectDataLoss(ParseBytes(bytes, path), path,
                 "header length 4294967295 exceeds the maximum");
}

TEST(KerasModelFileTest, HeaderLengthPastEndIsDataLoss) {
  std::string bytes = SmallModel().Encode();
  bytes[kHeaderLengthOffset + 2] = 1;  // adds 65536 to the header length
  const std::string path = "memory/header_past_end.pkm";
  ExpectDataLoss(ParseBytes(bytes, path), path, "file is truncated: the JSON header");
}

TEST(KerasModelFileTest, FlippedChecksumIsDataLoss) {
  std::string bytes = SmallModel().Encode();
  bytes[bytes.size() - 1] ^= 0x01;
  const std::string path = "memory/checksum.pkm";
  ExpectDataLoss(ParseBytes(bytes, path), path, "checksum mismatch");
}

TEST(KerasModelFileTest, FlippedDataByteIsDataLoss) {
  std::string bytes = SmallModel().Encode();
  bytes[bytes.size() - 8 - 5] ^= 0x40;
  const std::string path = "memory/data.pkm";
  ExpectDataLoss(ParseBytes(bytes, path), path, "checksum mismatch");
}

TEST(KerasModelFileTest, DataLengthMismatchIsDataLoss) {
  const ModelBuilder builder = SmallModel();
  std::vector<float> values = builder.ConcatenatedValues();
  values.push_back(1.0f);
  const std::string path = "memory/data_length.pkm";
  ExpectDataLoss(ParseBytes(EncodeModelFile(ModelToJson(builder.model()), values), path),
                 path, "the data section has 36 bytes, but the 2 weights in the header need 32");
}

TEST(KerasModelFileTest, MalformedJsonIsDataLoss) {
  const std::vector<std::string> headers = {
      "",
      "{",
      "[]",
      "{\"name\": 3}",
      "{\"layers\": [{\"name\": \"a\", \"kernelSize\": [\"x\"]}]}",
      "{\"nmae\": \"misspelt field\"}",
      "{\"weights\": [{\"name\": \"w\", \"shape\": [1e30]}]}",
      std::string("{\"name\": \"\xff\xfe\"}"),
      std::string(200, '['),
  };
  for (const std::string& header : headers) {
    SCOPED_TRACE(header);
    const std::string path = "memory/json.pkm";
    ExpectDataLoss(ParseBytes(EncodeModelFile(header, {}), path), path,
                   "header is not valid panda.keras.Model JSON");
  }
}

TEST(KerasModelFileTest, NegativeDimensionIsDataLoss) {
  ModelBuilder builder = SmallModel();
  builder.mutable_model().mutable_weights(1)->set_shape(0, -2);
  const std::string path = "memory/negative.pkm";
  ExpectDataLoss(ParseBytes(builder.Encode(), path), path,
                 "weight \"conv/bias\" has a negative dimension in shape [-2]");
}

TEST(KerasModelFileTest, ShapeLargerThanFileIsDataLoss) {
  ModelBuilder builder = SmallModel();
  Weight* weight = builder.mutable_model().mutable_weights(0);
  // The product overflows 64 bits, so the reader must not multiply it out.
  weight->set_shape(0, int64_t{1} << 40);
  weight->set_shape(1, int64_t{1} << 40);
  const std::string path = "memory/huge.pkm";
  ExpectDataLoss(ParseBytes(builder.Encode(), path), path,
                 "needs more data than the file holds");
}

TEST(KerasModelFileTest, DuplicateWeightNameIsDataLoss) {
  ModelBuilder builder = SmallModel();
  builder.mutable_model().mutable_weights(1)->set_name("conv/kernel");
  const std::string json = ModelToJson(builder.model());
  const std::string path = "memory/duplicate.pkm";
  ExpectDataLoss(ParseBytes(EncodeModelFile(json, SmallModel().ConcatenatedValues()), path),
                 path, "weight \"conv/kernel\" occurs twice");
}

TEST(KerasModelFileTest, RandomCorruptionNeverCrashes) {
  const std::string valid = SmallModel().Encode();
  std::mt19937 random(42);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bytes = valid;
    const int flips = 1 + trial % 4;
    for (int i = 0; i < flips; ++i) {
      bytes[std::uniform_int_distribution<size_t>(0, bytes.size() - 1)(random)] =
          static_cast<char>(byte(random));
    }
    if (trial % 3 == 0) {
      bytes.resize(std::uniform_int_distribution<size_t>(0, bytes.size())(random));
    }
    const absl::StatusOr<ModelFile> file = ParseBytes(bytes, "memory/random.pkm");
    // A change can be harmless (a flip to the same byte, or JSON whitespace),
    // so OK is allowed. Any error must be DataLoss.
    if (!file.ok()) {
      ASSERT_EQ(file.status().code(), absl::StatusCode::kDataLoss)
          << "trial " << trial << ": " << file.status();
    }
  }
  for (int trial = 0; trial < 500; ++trial) {
    std::string bytes(std::uniform_int_distribution<size_t>(0, 64)(random), '\0');
    for (char& c : bytes) c = static_cast<char>(byte(random));
    if (trial % 2 == 0 && bytes.size() >= 8) bytes.replace(0, 8, "PANDAKRS");
    const absl::StatusOr<ModelFile> file = ParseBytes(bytes, "memory/noise.pkm");
    ASSERT_FALSE(file.ok());
    ASSERT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
  }
}

}  // namespace
}  // namespace panda::keras
