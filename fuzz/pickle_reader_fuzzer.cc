// Fuzzes ParsePickle (backbones/torchvision/pickle_reader.h) on raw pickle
// bytes, and describes every value that a successful parse returns.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "backbones/torchvision/pickle_reader.h"
#include "fuzz/fuzz_support.h"

namespace panda::fuzz {
namespace {

SeedList Seeds() {
  return {
      // The data.pkl of backbones/testdata/checkpoint_plain_dict.pth, a
      // protocol 2 dict of two tensors, as torch.save writes it.
      {"state_dict.pkl",
       absl::HexStringToBytes(
           "80027d7100285808000000612e776569676874710163746f7263682e5f757469"
           "6c730a5f72656275696c645f74656e736f725f76320a71022828580700000073"
           "746f72616765710363746f7263680a466c6f617453746f726167650a71045801"
           "000000307105580300000063707571064b04747107514b004b024b028671084b"
           "024b018671098963636f6c6c656374696f6e730a4f726465726564446963740a"
           "710a2952710b74710c52710d5806000000612e62696173710e68022828680368"
           "04580100000031710f68064b02747110514b004b028571114b0185711289680a"
           "29527113747114527115752e")},
      // Python's pickle.dumps({"a": [1, 2.5, -300000, 2**40, True, None,
      // b"xy", ("t",), "sss"], "b": OrderedDict(x=1)}, protocol=4): FRAME,
      // MEMOIZE, STACK_GLOBAL, LONG1, BINFLOAT and SHORT_BINBYTES.
      {"protocol4.pkl",
       absl::HexStringToBytes(
           "80049564000000000000007d94288c0161945d94284b01474004000000000000"
           "4a206cfbff8a06000000000001884e43027879948c01749485948c0373737394"
           "658c0162948c0b636f6c6c656374696f6e73948c0b4f72646572656444696374"
           "9493942952948c0178944b0173752e")},
  };
}

void DescribeAll(const torchvision::PickleValue& value, int depth) {
  (void)torchvision::DescribePickleValue(value);
  if (depth == 0) return;
  for (const torchvision::PickleValuePtr& item : value.items) {
    DescribeAll(*item, depth - 1);
  }
  for (const auto& [key, entry] : value.entries) {
    DescribeAll(*key, depth - 1);
    DescribeAll(*entry, depth - 1);
  }
  if (value.state != nullptr) DescribeAll(*value.state, depth - 1);
}

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<panda::torchvision::PickleValuePtr> root =
      panda::torchvision::ParsePickle(
          absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!root.ok()) return 0;
  // The depth bound keeps shared and cyclic values from taking forever.
  panda::fuzz::DescribeAll(**root, /*depth=*/4);
  (void)(*root)->Find("state_dict");
  return 0;
}
