#pragma once
// What the libFuzzer harnesses share: a private scratch folder, writing an input to a file for
// the readers that take a path, and the rule that hostile input must never produce an
// internal error (StatusCode::kInternal means a broken invariant inside whittle).

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "whittle/common/status.h"

namespace whittle::fuzz {

/// A folder of this process's own under $TMPDIR (or /tmp), removed at exit.
inline const std::string& scratchDir() {
  // Never destroyed: the exit handler that removes the folder runs after static destructors.
  static const std::string* dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "whittle-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("whittle fuzz: mkdtemp");
      std::abort();
    }
    auto* path = new std::string(pattern);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratchDir(), ignored);
    });
    return path;
  }();
  return *dir;
}

/// Writes `size` bytes to `path`, replacing it.
inline void writeBytes(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) {
    std::fprintf(stderr, "whittle fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

/// Writes the fuzz input to `name` in the scratch folder and returns its path.
inline std::string writeInput(const uint8_t* data, size_t size, const std::string& name) {
  std::string path = scratchDir() + "/" + name;
  writeBytes(path, data, size);
  return path;
}

/// A model folder for the model harnesses: model/weights.bin (1024 floats 0, 1, 2, ...) and
/// model/sub/more.bin (256 bytes) for external data to resolve against, and outside.bin
/// (256 bytes) beside the folder, which a location escaping the folder would reach.
/// fuzz/make_seeds.py writes seed models whose external data points into these files.
inline const std::string& modelFolder() {
  static const std::string dir = [] {
    std::string d = scratchDir() + "/model";
    std::filesystem::create_directories(d + "/sub");
    std::vector<float> weights(1024);
    for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i);
    writeBytes(d + "/weights.bin", weights.data(), weights.size() * sizeof(float));
    std::string more(256, '\x11');
    writeBytes(d + "/sub/more.bin", more.data(), more.size());
    std::string outside(256, '\xAB');
    writeBytes(scratchDir() + "/outside.bin", outside.data(), outside.size());
    return d;
  }();
  return dir;
}

/// Aborts (a finding) when `status` reports a broken invariant rather than bad input.
inline void checkNotInternal(const Status& status, const char* where) {
  if (status.code() != StatusCode::kInternal) return;
  std::fprintf(stderr, "whittle fuzz: %s: internal error on hostile input: %s\n", where, status.message().c_str());
  std::abort();
}

/// Aborts with a message: a property the harness checks does not hold.
[[noreturn]] inline void fail(const std::string& message) {
  std::fprintf(stderr, "whittle fuzz: %s\n", message.c_str());
  std::abort();
}

}  // namespace whittle::fuzz
