#pragma once
// Label files and MNIST idx files.
//
// Label files, one sample per line (blank lines and a non-numeric header line are skipped):
//   FILE<TAB>CLASS          ImageNet style (labels.tsv)
//   FILE,NCLASSES,CLASS     MLPerf Tiny y_labels.csv (the class is the last field)
//   FILE,CLASS              generic CSV
//   CLASS                   one integer per line, in sample order (test_labels.txt)

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "whittle/common/status.h"

namespace whittle::data {

/// The contents of a label file.
struct LabelFile {
  std::string path;
  /// Sample file names as written (relative to the label file's folder); empty for
  /// plain one-class-per-line files.
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  /// The class count of MLPerf y_labels.csv lines, when they give one.
  std::optional<int64_t> numClasses;

  size_t size() const { return labels.size(); }
  bool hasFiles() const { return !files.empty(); }
  /// Class of `file`, matched by the path as written or by its last component; nullopt when
  /// the file is not listed.
  std::optional<int64_t> find(const std::string& file) const;

 private:
  mutable std::unordered_map<std::string, int64_t> byName_;
  mutable std::unordered_map<std::string, int64_t> byBase_;
};

/// Reads a label file in any of the layouts above. Errors name the file and line.
Expected<LabelFile> readLabelFile(const std::string& path);

/// The header of an idx file (MNIST): element type and dims.
struct IdxHeader {
  uint8_t typeCode = 0;  ///< 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
  std::vector<int64_t> dims;
  size_t dataOffset = 0;
};

/// Reads the header of an idx file (gzip-compressed when the name ends in .gz).
Expected<IdxHeader> readIdxHeader(const std::string& path);
/// Reads a 1-dimensional uint8 idx file of labels (t10k-labels-idx1-ubyte[.gz]).
Expected<std::vector<int64_t>> readIdxLabels(const std::string& path);

}  // namespace whittle::data
