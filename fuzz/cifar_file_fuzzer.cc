// Fuzzes the CIFAR binary-version readers (datasets/cifar_file.h): the file
// read as CIFAR-10 records, as CIFAR-100 records and as a class-name list.
#include <cstddef>
#include <cstdint>
#include <string>

#include "datasets/cifar_file.h"
#include "fuzz/fuzz_support.h"

namespace panda::fuzz {
namespace {

// One record: `labels`, then 3072 pixel bytes.
std::string Record(std::initializer_list<uint8_t> labels) {
  std::string record = Bytes(labels);
  for (int i = 0; i < kCifarImageBytes; ++i) {
    record.push_back(static_cast<char>(i * 7));
  }
  return record;
}

SeedList Seeds() {
  return {{"cifar10.bin", Record({3}) + Record({9})},
          {"cifar100.bin", Record({19, 99})},
          {"batches.meta.txt",
           "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\n"
           "truck\n\n"}};
}

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = panda::fuzz::WriteTempFile("input.bin", data, size);
  const std::string paths[] = {path};
  const panda::CifarLabelField cifar10[] = {{"label", 10}};
  const panda::CifarLabelField cifar100[] = {{"coarse label", 20},
                                             {"fine label", 100}};
  (void)panda::ReadCifarFiles(paths, cifar10);
  (void)panda::ReadCifarFiles(paths, cifar100);
  (void)panda::ReadCifarClassNames(path, 10);
  return 0;
}
