// Fuzzes ReadIdxFile (datasets/idx_file.h) on plain and gzip'd files, read
// as images (rank 3) and as labels (rank 1).
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "datasets/idx_file.h"
#include "fuzz/fuzz_support.h"

namespace panda::fuzz {
namespace {

std::string IdxBytes(int rank, std::initializer_list<uint32_t> dims) {
  std::string bytes = Bytes({0, 0, 0x08, static_cast<uint8_t>(rank)});
  uint64_t elements = 1;
  for (uint32_t dim : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      bytes.push_back(static_cast<char>((dim >> shift) & 0xff));
    }
    elements *= dim;
  }
  for (uint64_t i = 0; i < elements; ++i) {
    bytes.push_back(static_cast<char>(i * 37));
  }
  return bytes;
}

// Compresses `plain` into one gzip member.
std::string Gzip(const std::string& plain) {
  z_stream stream = {};
  if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    std::abort();
  }
  std::string out(deflateBound(&stream, plain.size()), '\0');
  stream.next_in =
      reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  stream.avail_in = static_cast<uInt>(plain.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  if (deflate(&stream, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

SeedList Seeds() {
  const std::string images = IdxBytes(3, {2, 3, 4});
  const std::string labels = IdxBytes(1, {5});
  return {{"images.idx", images},
          {"labels.idx", labels},
          {"images.idx.gz", Gzip(images)},
          {"labels.idx.gz", Gzip(labels)}};
}

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = panda::fuzz::WriteTempFile("input.idx", data, size);
  (void)panda::ReadIdxFile(path, 3);
  (void)panda::ReadIdxFile(path, 1);
  return 0;
}
