#include "whittle/data/labels.h"

#include <algorithm>
#include <charconv>

#include "data/byte_source.h"
#include "whittle/common/file_util.h"

namespace whittle::data {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<int64_t> parseInt(std::string_view s) {
  s = trim(s);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = line.find(sep, start);
    out.push_back(trim(line.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start)));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string baseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::optional<int64_t> LabelFile::find(const std::string& file) const {
  if (byName_.empty() && !files.empty()) {
    for (size_t i = 0; i < files.size(); ++i) {
      byName_.emplace(files[i], labels[i]);
      byBase_.emplace(baseName(files[i]), labels[i]);
    }
  }
  if (auto it = byName_.find(file); it != byName_.end()) return it->second;
  if (auto it = byBase_.find(baseName(file)); it != byBase_.end()) return it->second;
  return std::nullopt;
}

Expected<LabelFile> readLabelFile(const std::string& path) {
  WH_ASSIGN_OR_RETURN(std::string text, readFile(path));
  LabelFile out;
  out.path = path;
  std::string_view rest = text;
  int64_t lineNo = 0;
  bool sawData = false;
  bool withFiles = false;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++lineNo;
    if (line.empty() || line.front() == '#') continue;
    char sep = line.find('\t') != std::string_view::npos ? '\t' : line.find(',') != std::string_view::npos ? ',' : '\0';
    std::vector<std::string_view> fields = sep != '\0' ? split(line, sep) : std::vector<std::string_view>{line};
    auto where = [&] { return path + ":" + std::to_string(lineNo) + ": "; };
    std::optional<int64_t> label = parseInt(fields.back());
    if (!label) {
      if (!sawData) continue;  // a header line such as "file,label"
      return invalidInput(where() + "'" + std::string(fields.back()) + "' is not an integer class");
    }
    bool thisWithFiles = fields.size() >= 2;
    if (sawData && thisWithFiles != withFiles) {
      return invalidInput(where() + "mixes lines with and without a file name");
    }
    if (fields.size() > 3) return invalidInput(where() + "expected FILE<TAB>CLASS, FILE,NCLASSES,CLASS or CLASS");
    withFiles = thisWithFiles;
    sawData = true;
    if (withFiles) {
      if (fields[0].empty()) return invalidInput(where() + "empty file name");
      out.files.emplace_back(fields[0]);
    }
    if (fields.size() == 3) {
      std::optional<int64_t> n = parseInt(fields[1]);
      if (!n || *n <= 0) return invalidInput(where() + "'" + std::string(fields[1]) + "' is not a class count");
      if (*label < 0 || *label >= *n) {
        return invalidInput(where() + "class " + std::to_string(*label) + " is outside [0, " + std::to_string(*n) + ")");
      }
      out.numClasses = *n;
    }
    out.labels.push_back(*label);
  }
  if (out.labels.empty()) return invalidInput(path + ": no labels in the file");
  return out;
}

Expected<IdxHeader> readIdxHeader(const std::string& path) {
  WH_ASSIGN_OR_RETURN(auto source, openByteSource(path));
  unsigned char magic[4];
  WH_RETURN_IF_ERROR(source->readAt(0, magic, 4));
  if (magic[0] != 0 || magic[1] != 0) return invalidInput(path + ": not an idx file (bad magic)");
  IdxHeader header;
  header.typeCode = magic[2];
  switch (header.typeCode) {
    case 0x08: case 0x09: case 0x0B: case 0x0C: case 0x0D: case 0x0E: break;
    default: return invalidInput(path + ": not an idx file (unknown element type 0x" + std::to_string(magic[2]) + ")");
  }
  int rank = magic[3];
  if (rank == 0) return invalidInput(path + ": idx file with no dimensions");
  std::vector<unsigned char> dims(static_cast<size_t>(rank) * 4);
  WH_RETURN_IF_ERROR(source->readAt(4, dims.data(), dims.size()));
  for (int i = 0; i < rank; ++i) {
    const unsigned char* d = &dims[static_cast<size_t>(i) * 4];
    header.dims.push_back((int64_t{d[0]} << 24) | (d[1] << 16) | (d[2] << 8) | d[3]);
  }
  header.dataOffset = 4 + dims.size();
  return header;
}

Expected<std::vector<int64_t>> readIdxLabels(const std::string& path) {
  WH_ASSIGN_OR_RETURN(IdxHeader header, readIdxHeader(path));
  if (header.typeCode != 0x08 || header.dims.size() != 1) {
    return invalidInput(path + ": expected a 1-dimensional uint8 idx file of labels (magic 0x801)");
  }
  WH_ASSIGN_OR_RETURN(auto source, openByteSource(path));
  // The count comes from the file: check it against the file's size before allocating, and
  // read gzip streams (whose size is unknown) a chunk at a time, so that a bad header is a
  // truncation error rather than an allocation of up to 4 GB.
  const uint64_t count = static_cast<uint64_t>(header.dims[0]);
  if (source->size() >= 0) {
    const uint64_t size = static_cast<uint64_t>(source->size());
    const uint64_t have = size > header.dataOffset ? size - header.dataOffset : 0;
    if (count > have) {
      return invalidInput(path + ": truncated: the header says " + std::to_string(count) + " labels, the file holds " +
                          std::to_string(have));
    }
  }
  constexpr uint64_t kChunk = 1 << 16;
  std::vector<int64_t> labels;
  labels.reserve(static_cast<size_t>(std::min(count, kChunk)));
  std::vector<uint8_t> chunk;
  for (uint64_t done = 0; done < count;) {
    chunk.resize(static_cast<size_t>(std::min(count - done, kChunk)));
    WH_RETURN_IF_ERROR(source->readAt(header.dataOffset + done, chunk.data(), chunk.size()));
    labels.insert(labels.end(), chunk.begin(), chunk.end());
    done += chunk.size();
  }
  return labels;
}

}  // namespace whittle::data
