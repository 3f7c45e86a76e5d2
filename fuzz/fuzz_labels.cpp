// fuzz_labels: file bytes -> the label-file parser (data::readLabelFile: labels.tsv,
// y_labels.csv, one class per line) and the MNIST idx reader (data::readIdxHeader,
// data::readIdxLabels), plain and gzip-compressed, as the data sets read labels.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "whittle/data/labels.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace whittle;
  std::string path = fuzz::writeInput(data, size, "labels.txt");
  auto labels = data::readLabelFile(path);
  if (labels.isOk()) {
    if (labels->hasFiles() && labels->files.size() != labels->labels.size()) fuzz::fail("files and labels differ in count");
    if (labels->hasFiles()) {
      auto found = labels->find(labels->files.front());
      if (!found) fuzz::fail("a listed file is not found by its own name");
    }
    (void)labels->find("images/none.JPEG");
  } else {
    fuzz::checkNotInternal(labels.status(), "readLabelFile");
  }

  // The same bytes as an idx file; gzip streams (1f 8b) also under a .gz name.
  std::string idx = fuzz::writeInput(data, size, "labels-idx1-ubyte");
  auto header = data::readIdxHeader(idx);
  if (!header.isOk()) fuzz::checkNotInternal(header.status(), "readIdxHeader");
  auto idxLabels = data::readIdxLabels(idx);
  if (!idxLabels.isOk()) fuzz::checkNotInternal(idxLabels.status(), "readIdxLabels");
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
    std::string gz = fuzz::writeInput(data, size, "labels-idx1-ubyte.gz");
    auto gzLabels = data::readIdxLabels(gz);
    if (!gzLabels.isOk()) fuzz::checkNotInternal(gzLabels.status(), "readIdxLabels (gzip)");
  }
  return 0;
}
