// Fuzzes ApplyConfigOverride (core/config_override.h) as the app applies
// --set flags: each input line is one FIELD.PATH=VALUE assignment, applied
// in order to a config that names a plugin of every family with options,
// and the result is checked again by ParsePipelineConfig.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/config_override.h"
#include "core/pipeline_config.h"
#include "fuzz/fuzz_support.h"
#include "google/protobuf/text_format.h"

namespace panda::fuzz {
namespace {

constexpr char kBaseConfig[] = R"pb(
  name: "base"
  dataset {
    name: "idx"
    options {
      [type.googleapis.com/panda.IdxDatasetOptions] {
        directory: "data/mnist"
        class_names: [ "zero", "one" ]
      }
    }
  }
  backbone {
    name: "keras"
    options {
      [type.googleapis.com/panda.KerasBackboneOptions] {
        weights_file: "data/weights/mobilenet_v2.pkm"
        input_size: 224
      }
    }
  }
  adapter {
    name: "early_stopping"
    options {
      [type.googleapis.com/panda.EarlyStoppingOptions] {
        training { epochs: 2 }
      }
    }
  }
  scorer {
    name: "knn"
    options { [type.googleapis.com/panda.KnnScorerOptions] { k: 2 } }
  }
  subset { max_train_per_class: 1000 }
  batch_size: 64
)pb";

const panda::PipelineConfig& BaseConfig() {
  static const panda::PipelineConfig* const config = [] {
    absl::StatusOr<panda::PipelineConfig> parsed =
        panda::ParsePipelineConfig(kBaseConfig, "base config");
    if (!parsed.ok()) {
      std::fprintf(stderr, "%s\n", parsed.status().ToString().c_str());
      std::abort();
    }
    return new panda::PipelineConfig(*std::move(parsed));
  }();
  return *config;
}

SeedList Seeds() {
  return {{"scalar.txt", "batch_size=32\nname=variant_1\n"},
          {"plugin.txt",
           "scorer.knn.k=5\nbackbone.keras.input_size=96\n"
           "adapter.early_stopping.training.epochs=3\n"},
          {"strings.txt",
           "dataset.idx.directory=/tmp/data\n"
           "backbone.keras.weights_file=\"w.pkm\"\n"},
          {"nested.txt",
           "subset.max_train_per_class=100\nsubset.random=true\n"
           "deployment.holdout_fraction=0.1\n"},
          {"rename.txt", "scorer.name=hnsw\nscorer.hnsw.m=16\n"}};
}

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  panda::fuzz::BaseConfig();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  panda::PipelineConfig config = panda::fuzz::BaseConfig();
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  for (absl::string_view line : absl::StrSplit(input, '\n')) {
    if (!panda::ApplyConfigOverride(std::string(line), config).ok()) return 0;
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  (void)panda::ParsePipelineConfig(text, "base config with overrides");
  return 0;
}
