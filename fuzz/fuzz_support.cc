#include "fuzz/fuzz_support.h"

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace panda::fuzz {
namespace {

constexpr char kSeedFlag[] = "--write_seeds=";

void RemoveTempDirectory() {
  std::error_code error;
  std::filesystem::remove_all(TempDirectory(), error);
}

}  // namespace

const std::string& TempDirectory() {
  static const std::string* const directory = [] {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0'
                                          ? base
                                          : "/tmp") +
                          "/panda_fuzz.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror(("mkdtemp " + pattern).c_str());
      std::abort();
    }
    return new std::string(pattern);
  }();
  static const bool cleanup_registered = [] {
    std::atexit(RemoveTempDirectory);
    return true;
  }();
  (void)cleanup_registered;
  return *directory;
}

std::string WriteTempFile(const std::string& name, const uint8_t* data,
                          size_t size) {
  const std::string path = TempDirectory() + "/" + name;
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(data),
             static_cast<std::streamsize>(size));
  file.close();
  if (!file) {
    std::cerr << "fuzz: failed to write " << path << "\n";
    std::abort();
  }
  return path;
}

std::string WriteTempFile(const std::string& name, const std::string& bytes) {
  return WriteTempFile(name, reinterpret_cast<const uint8_t*>(bytes.data()),
                       bytes.size());
}

void WriteSeedsIfRequested(int* argc, char*** argv,
                           SeedList (*make_seeds)()) {
  std::string directory;
  for (int i = 1; i < *argc; ++i) {
    const char* argument = (*argv)[i];
    if (std::strncmp(argument, kSeedFlag, sizeof(kSeedFlag) - 1) == 0) {
      directory = argument + sizeof(kSeedFlag) - 1;
    }
  }
  if (directory.empty()) return;

  std::error_code error;
  std::filesystem::create_directories(directory, error);
  int status = 0;
  for (const auto& [name, bytes] : make_seeds()) {
    const std::string path = directory + "/" + name;
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    file.close();
    if (!file) {
      std::cerr << "fuzz: failed to write seed " << path << "\n";
      status = 1;
    }
  }
  std::exit(status);
}

std::string Bytes(std::initializer_list<uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

void AppendLittleEndian(uint64_t value, int size, std::string& out) {
  for (int i = 0; i < size; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

}  // namespace panda::fuzz
