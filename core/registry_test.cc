#include "core/registry.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "config/pipeline.pb.h"
#include "core/plugin_options.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

struct Greeter {
  virtual ~Greeter() = default;
  virtual std::string Greet() const = 0;
};

struct Hello : Greeter {
  std::string Greet() const override { return "hello"; }
};

Registry<Greeter>& GreeterRegistry() {
  static auto* registry = new Registry<Greeter>("greeter");
  return *registry;
}

absl::StatusOr<std::unique_ptr<Greeter>> CreateHello(
    const google::protobuf::Any&) {
  return std::make_unique<Hello>();
}

PANDA_REGISTER_PLUGIN(GreeterRegistry, "hello", CreateHello);

TEST(RegistryTest, CreatesRegisteredPlugin) {
  auto greeter = GreeterRegistry().Create("hello", google::protobuf::Any());
  ASSERT_TRUE(greeter.ok()) << greeter.status();
  EXPECT_EQ((*greeter)->Greet(), "hello");
}

TEST(RegistryTest, UnknownNameListsRegisteredNames) {
  auto greeter = GreeterRegistry().Create("helo", google::protobuf::Any());
  ASSERT_EQ(greeter.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(greeter.status().message().find("\"helo\""), std::string::npos);
  EXPECT_NE(greeter.status().message().find("registered greeter plugins: hello"),
            std::string::npos)
      << greeter.status();
}

TEST(PluginOptionsTest, EmptyOptionsGiveDefaults) {
  auto subset = UnpackPluginOptions<SubsetConfig>(google::protobuf::Any(), "x");
  ASSERT_TRUE(subset.ok());
  EXPECT_EQ(subset->max_train_per_class(), 0);
}

TEST(PluginOptionsTest, WrongTypeNamesBothTypes) {
  google::protobuf::Any options;
  options.PackFrom(PluginConfig());
  auto subset = UnpackPluginOptions<SubsetConfig>(options, "idx");
  ASSERT_EQ(subset.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(subset.status().message().find("panda.SubsetConfig"),
            std::string::npos);
  EXPECT_NE(subset.status().message().find("panda.PluginConfig"),
            std::string::npos);
}

}  // namespace
}  // namespace panda
