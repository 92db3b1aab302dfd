// Fuzzes ParsePipelineConfig (core/pipeline_config.h) with every plugin
// linked, so the options inside google.protobuf.Any fields are parsed as
// their own messages. A config that parses must print to text that parses
// again, both as SingleLineText (the form caches key on) and as the text
// that the app checks again after --set. The target aborts otherwise.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/statusor.h"
#include "core/pipeline_config.h"
#include "fuzz/fuzz_support.h"
#include "google/protobuf/text_format.h"

namespace panda::fuzz {
namespace {

SeedList Seeds() {
  return {{"minimal.pbtxt",
           "name: \"minimal\"\n"
           "dataset { name: \"idx\" options { "
           "[type.googleapis.com/panda.IdxDatasetOptions] { directory: "
           "\"data/mnist\" } } }\n"
           "backbone { name: \"lenet\" }\n"
           "scorer { name: \"knn\" options { "
           "[type.googleapis.com/panda.KnnScorerOptions] { k: 2 } } }\n"},
          {"hnsw.pbtxt",
           "name: \"hnsw\" seeds: [0, 1]\n"
           "dataset { name: \"cifar\" }\n"
           "backbone { name: \"torchvision_resnet\" options { "
           "[type.googleapis.com/panda.TorchvisionResnetOptions] { } } }\n"
           "adapter { name: \"none\" }\n"
           "scorer { name: \"hnsw\" }\n"
           "subset { max_train_per_class: 10 random: true }\n"
           "deployment { holdout_fraction: 0.1 false_positive_rate: 0.05 }\n"}};
}

void CheckReparses(const std::string& text, const char* form) {
  if (!panda::ParsePipelineConfig(text, "printed config").ok()) {
    std::fprintf(stderr, "a valid config printed as %s does not parse:\n%s\n",
                 form, text.c_str());
    std::abort();
  }
}

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<panda::PipelineConfig> config =
      panda::ParsePipelineConfig(text, "fuzz.pbtxt");
  if (!config.ok()) return 0;

  panda::fuzz::CheckReparses(panda::SingleLineText(*config), "one line");
  std::string printed;
  google::protobuf::TextFormat::PrintToString(*config, &printed);
  panda::fuzz::CheckReparses(printed, "text");
  return 0;
}
