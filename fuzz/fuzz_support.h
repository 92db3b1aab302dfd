// Helpers shared by the fuzz targets: files for parsers that take a path,
// and the --write_seeds flag with which each target writes its own seed
// corpus.
#ifndef PANDA_FUZZ_FUZZ_SUPPORT_H_
#define PANDA_FUZZ_FUZZ_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace panda::fuzz {

// A folder private to this process, created under $TMPDIR (or /tmp) on first
// use and removed at a normal exit. A crash leaves it behind.
const std::string& TempDirectory();

// Writes `size` bytes at `data` to the file `name` in TempDirectory(),
// replacing what was there, and returns its path.
std::string WriteTempFile(const std::string& name, const uint8_t* data,
                          size_t size);
std::string WriteTempFile(const std::string& name, const std::string& bytes);

// Seed inputs: a file name and its bytes.
using SeedList = std::vector<std::pair<std::string, std::string>>;

// Call from LLVMFuzzerInitialize. With the flag --write_seeds=DIR among the
// arguments, writes every seed of `make_seeds()` to DIR (creating it) and
// exits: status 0 on success, 1 if a file cannot be written. Without the
// flag, returns at once. libFuzzer ignores flags that start with "--".
void WriteSeedsIfRequested(int* argc, char*** argv,
                           SeedList (*make_seeds)());

// Returns `bytes` as a string, for building seeds.
std::string Bytes(std::initializer_list<uint8_t> bytes);

// Appends `value` to `out` in little-endian byte order, `size` bytes.
void AppendLittleEndian(uint64_t value, int size, std::string& out);

}  // namespace panda::fuzz

#endif  // PANDA_FUZZ_FUZZ_SUPPORT_H_
