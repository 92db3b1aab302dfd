// Fuzzes the MVTec AD folder scan (datasets/mvtec_ad_layout.h) on folder
// trees built from the input in a temporary folder.
//
// The input is text, one entry per line, paths relative to the data set
// root:
//   cat/train/good/         a folder (trailing slash)
//   cat/train/good/000.png  a file of a few bytes
//   cat/test/x -> good      a symbolic link to a relative target
// Lines with "." or ".." components or an absolute link target are skipped,
// so the tree stays inside the temporary folder. The category is "cat".
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "datasets/mvtec_ad_layout.h"
#include "fuzz/fuzz_support.h"

namespace panda::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr char kCategory[] = "cat";
// Bounds that keep one input fast: entries per tree and bytes per path.
constexpr int kMaxEntries = 64;
constexpr size_t kMaxPathBytes = 256;

// Whether `path` is a relative path without "." or ".." components.
bool IsInsideTree(absl::string_view path) {
  if (path.empty() || path.size() > kMaxPathBytes || path[0] == '/') {
    return false;
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "." || part == "..") return false;
  }
  return true;
}

void BuildTree(const fs::path& root, absl::string_view text) {
  int entries = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (++entries > kMaxEntries) break;
    if (line.find('\0') != absl::string_view::npos) continue;
    std::error_code error;

    const size_t arrow = line.find(" -> ");
    if (arrow != absl::string_view::npos) {
      const absl::string_view link = line.substr(0, arrow);
      const absl::string_view target = line.substr(arrow + 4);
      if (!IsInsideTree(link) || !IsInsideTree(target)) continue;
      const fs::path link_path = root / std::string(link);
      fs::create_directories(link_path.parent_path(), error);
      fs::create_symlink(std::string(target), link_path, error);
      continue;
    }

    if (!IsInsideTree(line)) continue;
    const fs::path path = root / std::string(line);
    if (line.back() == '/') {
      fs::create_directories(path, error);
      continue;
    }
    fs::create_directories(path.parent_path(), error);
    std::ofstream(path, std::ios::binary) << "image";
  }
}

SeedList Seeds() {
  return {
      {"good_and_defects.txt",
       "cat/train/good/000.png\n"
       "cat/train/good/001.png\n"
       "cat/test/good/000.png\n"
       "cat/test/crack/000.png\n"
       "cat/test/crack/sub/001.png\n"
       "cat/ground_truth/crack/000_mask.png\n"
       "cat/ground_truth/crack/sub/001_mask.png\n"},
      {"missing_mask.txt",
       "cat/train/good/000.png\n"
       "cat/test/hole/000.png\n"
       "cat/test/empty/\n"},
      {"links.txt",
       "cat/train/good/000.jpg\n"
       "cat/test/good/000.bmp\n"
       "cat/test/loop/000.png\n"
       "cat/test/loop/again -> .\n"
       "cat/test/alias -> loop\n"},
  };
}

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(panda::fuzz::TempDirectory()) / "tree";
  std::error_code error;
  fs::remove_all(root, error);
  fs::create_directories(root, error);
  panda::fuzz::BuildTree(
      root, absl::string_view(reinterpret_cast<const char*>(data), size));

  const std::string category_directory =
      (root / panda::fuzz::kCategory).string();
  (void)panda::CheckMvtecAdCategory(root.string(), panda::fuzz::kCategory);
  (void)panda::ListMvtecAdTrainFiles(category_directory);
  absl::StatusOr<std::vector<std::string>> classes =
      panda::ListMvtecAdClasses(category_directory);
  if (classes.ok()) {
    (void)panda::ListMvtecAdTestFiles(category_directory, *classes);
  }
  return 0;
}
