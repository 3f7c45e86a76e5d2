#include "whittle/data/npy.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <string>

#include "data/byte_source.h"
#include "data/zip.h"
#include "whittle/common/file_util.h"

namespace whittle::data {
namespace {

using ir::DataType;

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kAlign = 64;

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// A cursor over the header dictionary, a Python literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (360, 1, 8, 8), }
class DictParser {
 public:
  DictParser(std::string_view text, const std::string& label) : text_(text), label_(label) {}

  Status error(const std::string& what) const {
    return invalidInput(label_ + ": bad .npy header: " + what + " in \"" + std::string(text_) + "\"");
  }
  void skipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool consume(char c) {
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  char peek() {
    skipSpace();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }
  Expected<std::string> string() {
    skipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) return error("expected a quoted string");
    char quote = text_[pos_++];
    size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) return error("unterminated string");
    std::string s(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  Expected<bool> boolean() {
    skipSpace();
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    return error("expected True or False");
  }
  Expected<std::vector<int64_t>> tuple() {
    if (!consume('(')) return error("expected a shape tuple");
    std::vector<int64_t> dims;
    while (!consume(')')) {
      skipSpace();
      size_t start = pos_;
      int64_t v = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        if (v > (int64_t{1} << 56)) return error("dimension too large");
        v = v * 10 + (text_[pos_++] - '0');
      }
      if (pos_ == start) return error("expected a non-negative integer dimension");
      if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 long
      dims.push_back(v);
      if (!consume(',') && peek() != ')') return error("expected ',' or ')' in the shape");
    }
    return dims;
  }
  /// Skips a value we do not interpret (only for unknown keys).
  Status skipValue() {
    skipSpace();
    int depth = 0;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\'' || c == '"') {
        WH_ASSIGN_OR_RETURN(auto ignored, string());
        (void)ignored;
        continue;
      }
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') {
        if (depth == 0) return Status::ok();
        --depth;
      }
      if (c == ',' && depth == 0) return Status::ok();
      ++pos_;
    }
    return error("unterminated value");
  }

 private:
  std::string_view text_;
  const std::string& label_;
  size_t pos_ = 0;
};

Expected<DataType> dtypeFromDescr(const std::string& descr, const std::string& label) {
  auto unsupported = [&] {
    return unimplemented(label + ": .npy dtype '" + descr +
                         "' is not supported (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1 and unicode U, little-endian)");
  };
  if (descr.size() < 3) return unsupported();
  char order = descr[0];
  char kind = descr[1];
  int size = 0;
  for (size_t i = 2; i < descr.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(descr[i])) || size > 1000) return unsupported();
    size = size * 10 + (descr[i] - '0');
  }
  if (order != '<' && order != '>' && order != '|' && order != '=') return unsupported();
  std::optional<DataType> type;
  switch (kind) {
    case 'f': type = size == 2 ? DataType::kFloat16 : size == 4 ? DataType::kFloat : size == 8 ? DataType::kDouble : type; break;
    case 'i': type = size == 1 ? DataType::kInt8 : size == 2 ? DataType::kInt16 : size == 4 ? DataType::kInt32 : size == 8 ? DataType::kInt64 : type; break;
    case 'u': type = size == 1 ? DataType::kUint8 : size == 2 ? DataType::kUint16 : size == 4 ? DataType::kUint32 : size == 8 ? DataType::kUint64 : type; break;
    case 'b': type = size == 1 ? DataType::kBool : type; break;
    default: break;
  }
  if (kind == 'U' && size > 0) type = DataType::kString;
  if (!type) return unsupported();
  if (order == '>' && (size > 1 || kind == 'U')) {
    return unimplemented(label + ": big-endian .npy data ('" + descr +
                         "') is not supported; convert it with arr.astype(arr.dtype.newbyteorder('<'))");
  }
  return *type;
}

Status checkedNumel(const std::vector<int64_t>& shape, DataType dtype, const std::string& label, int64_t* numel) {
  // The bound is on the product of the non-zero dimensions (as numpy checks it), so that the
  // product of any of the dimensions (a row's size, shape[1:]) fits too: with the bound on the
  // whole product, (0, 2**40, 2**40) passes and its row size overflows.
  int64_t nonZero = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) return invalidInput(label + ": negative dimension in shape " + shapeText(shape));
    if (d == 0) {
      empty = true;
      continue;
    }
    if (nonZero > (int64_t{1} << 48) / d) return invalidInput(label + ": shape " + shapeText(shape) + " is too large");
    nonZero *= d;
  }
  (void)dtype;
  *numel = empty ? 0 : nonZero;
  return Status::ok();
}

// Reads the header of a .npy stream: the fixed prefix, then the dictionary.
Expected<NpyHeader> readHeader(ByteSource& source) {
  const std::string& label = source.label();
  if (source.size() >= 0 && source.size() < 10) {
    return invalidInput(label + ": not a .npy file (too short for the magic and header length)");
  }
  std::string prefix(10, '\0');
  WH_RETURN_IF_ERROR(source.readAt(0, prefix.data(), 10));
  if (prefix.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    return invalidInput(label + ": not a .npy file (no \\x93NUMPY magic)");
  }
  uint8_t major = static_cast<uint8_t>(prefix[6]);
  size_t headerLen = 0;
  size_t prefixLen = 0;
  if (major == 1) {
    prefixLen = 10;
    headerLen = static_cast<uint8_t>(prefix[8]) | (static_cast<size_t>(static_cast<uint8_t>(prefix[9])) << 8);
  } else if (major == 2 || major == 3) {
    prefixLen = 12;
    prefix.resize(12);
    WH_RETURN_IF_ERROR(source.readAt(0, prefix.data(), 12));
    headerLen = 0;
    for (int i = 3; i >= 0; --i) headerLen = (headerLen << 8) | static_cast<uint8_t>(prefix[8 + static_cast<size_t>(i)]);
  } else {
    return unimplemented(label + ": .npy format version " + std::to_string(major) + "." +
                         std::to_string(static_cast<uint8_t>(prefix[7])) + " is not supported (1.0, 2.0, 3.0 are)");
  }
  if (headerLen > (size_t{1} << 24)) return invalidInput(label + ": bad .npy header: length " + std::to_string(headerLen));
  if (source.size() >= 0 && static_cast<uint64_t>(source.size()) < prefixLen + headerLen) {
    return invalidInput(label + ": truncated .npy header");
  }
  std::string bytes(prefixLen + headerLen, '\0');
  WH_RETURN_IF_ERROR(source.readAt(0, bytes.data(), bytes.size()));
  return parseNpyHeader(bytes, label);
}

}  // namespace

int64_t NpyHeader::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t NpyHeader::dataBytes() const {
  if (dtype == DataType::kString) return static_cast<size_t>(numel()) * static_cast<size_t>(stringChars) * 4;
  return ir::storageBytes(dtype, numel());
}

namespace {

/// The code points of UTF-8 `s`, or nullopt where it is not valid UTF-8.
std::optional<std::u32string> utf8ToCodePoints(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    int extra = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : -1;
    if (extra < 0 || i + static_cast<size_t>(extra) >= s.size() + (extra == 0 ? 1 : 0)) return std::nullopt;
    char32_t c = extra == 0 ? b : (b & (0x3F >> extra));
    for (int k = 1; k <= extra; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((cont >> 6) != 0x2) return std::nullopt;
      c = (c << 6) | (cont & 0x3F);
    }
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return std::nullopt;
    out.push_back(c);
    i += static_cast<size_t>(extra) + 1;
  }
  return out;
}

/// UTF-8 of code point `c` appended to `out`; false for a value that is no code point.
bool appendUtf8(char32_t c, std::string& out) {
  if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return true;
}

/// A string tensor as numpy's unicode array data: each element `chars` UTF-32LE code units,
/// padded with zeros. `chars` is set to the longest element's length (at least 1, as numpy's
/// '<U0' reads back as '<U1').
Expected<std::string> encodeStrings(const ir::Tensor& t, int64_t* chars) {
  std::vector<std::u32string> points;
  size_t longest = 1;
  for (size_t i = 0; i < t.stringValues().size(); ++i) {
    auto p = utf8ToCodePoints(t.stringValues()[i]);
    if (!p) return invalidInput("string element " + std::to_string(i) + " is not valid UTF-8");
    longest = std::max(longest, p->size());
    points.push_back(std::move(*p));
  }
  *chars = static_cast<int64_t>(longest);
  std::string out(points.size() * longest * 4, '\0');
  for (size_t i = 0; i < points.size(); ++i) {
    for (size_t k = 0; k < points[i].size(); ++k) {
      const char32_t c = points[i][k];
      for (size_t b = 0; b < 4; ++b) out[(i * longest + k) * 4 + b] = static_cast<char>((c >> (8 * b)) & 0xFF);
    }
  }
  return out;
}

/// The string tensor of numpy unicode data (`chars` UTF-32LE units per element, trailing zeros
/// dropped, as numpy drops them).
Expected<ir::Tensor> decodeStrings(const std::byte* data, const NpyHeader& header, const std::string& label) {
  std::vector<std::string> values(static_cast<size_t>(header.numel()));
  const size_t chars = static_cast<size_t>(header.stringChars);
  for (size_t i = 0; i < values.size(); ++i) {
    size_t len = chars;
    auto unit = [&](size_t k) {
      const std::byte* p = data + (i * chars + k) * 4;
      return static_cast<char32_t>(std::to_integer<uint32_t>(p[0]) | (std::to_integer<uint32_t>(p[1]) << 8) |
                                   (std::to_integer<uint32_t>(p[2]) << 16) | (std::to_integer<uint32_t>(p[3]) << 24));
    };
    while (len > 0 && unit(len - 1) == 0) --len;
    for (size_t k = 0; k < len; ++k) {
      if (!appendUtf8(unit(k), values[i])) {
        return invalidInput(label + ": element " + std::to_string(i) + " holds " + std::to_string(unit(k)) +
                            ", which is not a Unicode code point");
      }
    }
  }
  return ir::Tensor::strings(header.shape, std::move(values));
}

}  // namespace

std::string npyDescr(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat16: return "<f2";
    case DataType::kFloat: return "<f4";
    case DataType::kDouble: return "<f8";
    case DataType::kInt8: return "|i1";
    case DataType::kInt16: return "<i2";
    case DataType::kInt32: return "<i4";
    case DataType::kInt64: return "<i8";
    case DataType::kUint8: return "|u1";
    case DataType::kUint16: return "<u2";
    case DataType::kUint32: return "<u4";
    case DataType::kUint64: return "<u8";
    case DataType::kBool: return "|b1";
    default: return "";
  }
}

Expected<NpyHeader> parseNpyHeader(std::string_view bytes, const std::string& label) {
  if (bytes.size() < 10 || bytes.compare(0, kMagicSize, std::string_view(kMagic, kMagicSize)) != 0) {
    return invalidInput(label + ": not a .npy file (no \\x93NUMPY magic)");
  }
  NpyHeader header;
  header.majorVersion = static_cast<uint8_t>(bytes[6]);
  header.minorVersion = static_cast<uint8_t>(bytes[7]);
  size_t prefixLen = 0;
  size_t headerLen = 0;
  auto byteAt = [&](size_t i) { return static_cast<size_t>(static_cast<uint8_t>(bytes[i])); };
  if (header.majorVersion == 1) {
    prefixLen = 10;
    headerLen = byteAt(8) | (byteAt(9) << 8);
  } else if (header.majorVersion == 2 || header.majorVersion == 3) {
    if (bytes.size() < 12) return invalidInput(label + ": truncated .npy header");
    prefixLen = 12;
    headerLen = byteAt(8) | (byteAt(9) << 8) | (byteAt(10) << 16) | (byteAt(11) << 24);
  } else {
    return unimplemented(label + ": .npy format version " + std::to_string(header.majorVersion) + "." +
                         std::to_string(header.minorVersion) + " is not supported (1.0, 2.0, 3.0 are)");
  }
  if (bytes.size() < prefixLen + headerLen) return invalidInput(label + ": truncated .npy header");
  header.dataOffset = prefixLen + headerLen;
  std::string_view dict = bytes.substr(prefixLen, headerLen);
  while (!dict.empty() && (dict.back() == '\n' || dict.back() == ' ' || dict.back() == '\0')) dict.remove_suffix(1);

  DictParser p(dict, label);
  if (!p.consume('{')) return p.error("expected '{'");
  bool haveDescr = false, haveOrder = false, haveShape = false;
  std::string descr;
  while (!p.consume('}')) {
    WH_ASSIGN_OR_RETURN(std::string key, p.string());
    if (!p.consume(':')) return p.error("expected ':' after '" + key + "'");
    if (key == "descr") {
      if (p.peek() == '[') {
        return unimplemented(label + ": structured .npy dtypes (record arrays) are not supported");
      }
      WH_ASSIGN_OR_RETURN(descr, p.string());
      haveDescr = true;
    } else if (key == "fortran_order") {
      WH_ASSIGN_OR_RETURN(header.fortranOrder, p.boolean());
      haveOrder = true;
    } else if (key == "shape") {
      WH_ASSIGN_OR_RETURN(header.shape, p.tuple());
      haveShape = true;
    } else {
      WH_RETURN_IF_ERROR(p.skipValue());
    }
    if (!p.consume(',') && p.peek() != '}') return p.error("expected ',' or '}'");
  }
  if (!haveDescr || !haveOrder || !haveShape) {
    return p.error(std::string("missing key '") + (!haveDescr ? "descr" : !haveOrder ? "fortran_order" : "shape") + "'");
  }
  WH_ASSIGN_OR_RETURN(header.dtype, dtypeFromDescr(descr, label));
  if (header.dtype == DataType::kString) header.stringChars = std::stoll(descr.substr(2));
  int64_t numel = 0;
  WH_RETURN_IF_ERROR(checkedNumel(header.shape, header.dtype, label, &numel));
  // A Fortran-order array of rank <= 1 has the same bytes as a C-order one.
  int64_t nonTrivial = std::count_if(header.shape.begin(), header.shape.end(), [](int64_t d) { return d != 1; });
  if (header.fortranOrder && nonTrivial > 1) {
    return unimplemented(label + ": Fortran-order .npy arrays are not supported; save a C-order copy with "
                                 "np.save(path, np.ascontiguousarray(arr))");
  }
  return header;
}

Expected<std::string> encodeNpyHeader(DataType dtype, const std::vector<int64_t>& shape, int64_t stringChars) {
  std::string descr = dtype == DataType::kString ? "<U" + std::to_string(std::max<int64_t>(stringChars, 1)) : npyDescr(dtype);
  if (descr.empty()) {
    return unimplemented("tensors of type " + std::string(ir::dataTypeName(dtype)) + " have no .npy equivalent");
  }
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shapeText(shape) + ", }";
  size_t prefixLen = 10;
  size_t total = prefixLen + dict.size() + 1;
  size_t padded = (total + kAlign - 1) / kAlign * kAlign;
  if (padded - prefixLen > 65535) {
    prefixLen = 12;
    total = prefixLen + dict.size() + 1;
    padded = (total + kAlign - 1) / kAlign * kAlign;
  }
  size_t headerLen = padded - prefixLen;
  std::string out(kMagic, kMagicSize);
  out += static_cast<char>(prefixLen == 10 ? 1 : 2);
  out += '\0';
  for (size_t i = 0; i < prefixLen - 8; ++i) out += static_cast<char>((headerLen >> (8 * i)) & 0xFF);
  out += dict;
  out.append(headerLen - dict.size() - 1, ' ');
  out += '\n';
  return out;
}

Expected<std::string> encodeNpy(const ir::Tensor& tensor) {
  if (tensor.dtype() == DataType::kString) {
    int64_t chars = 0;
    WH_ASSIGN_OR_RETURN(std::string data, encodeStrings(tensor, &chars));
    WH_ASSIGN_OR_RETURN(std::string out, encodeNpyHeader(tensor.dtype(), tensor.dims(), chars));
    return out + data;
  }
  WH_ASSIGN_OR_RETURN(std::string out, encodeNpyHeader(tensor.dtype(), tensor.dims()));
  size_t bytes = ir::storageBytes(tensor.dtype(), tensor.numel());
  if (bytes > 0) out.append(reinterpret_cast<const char*>(tensor.rawData()), bytes);
  return out;
}

Status writeNpy(const ir::Tensor& tensor, const std::string& path) {
  if (tensor.dtype() == DataType::kString) {
    auto bytes = encodeNpy(tensor);
    if (!bytes.isOk()) return bytes.status().withContext(path);
    AtomicFileWriter writer(path);
    WH_RETURN_IF_ERROR(writer.open());
    WH_RETURN_IF_ERROR(writer.write(bytes->data(), bytes->size()));
    return writer.commit();
  }
  auto header = encodeNpyHeader(tensor.dtype(), tensor.dims());
  if (!header.isOk()) return header.status().withContext(path);
  AtomicFileWriter writer(path);
  WH_RETURN_IF_ERROR(writer.open());
  WH_RETURN_IF_ERROR(writer.write(header->data(), header->size()));
  size_t bytes = ir::storageBytes(tensor.dtype(), tensor.numel());
  if (bytes > 0) WH_RETURN_IF_ERROR(writer.write(tensor.rawData(), bytes));
  return writer.commit();
}

// ---- NpyArrayReader ----

struct NpyArrayReader::Source {
  std::unique_ptr<ByteSource> bytes;
};

NpyArrayReader::NpyArrayReader() = default;
NpyArrayReader::~NpyArrayReader() = default;

namespace {

Expected<std::unique_ptr<NpyArrayReader>> finishOpen(std::unique_ptr<NpyArrayReader> reader, ByteSource& source,
                                                      NpyHeader* header) {
  WH_ASSIGN_OR_RETURN(*header, readHeader(source));
  if (source.size() >= 0) {
    uint64_t have = static_cast<uint64_t>(source.size()) - header->dataOffset;
    if (have < header->dataBytes()) {
      return invalidInput(source.label() + ": truncated: the header says " + shapeText(header->shape) + " " +
                          std::string(ir::dataTypeName(header->dtype)) + " (" + std::to_string(header->dataBytes()) +
                          " bytes) but the file holds " + std::to_string(have) + " bytes of data");
    }
  }
  return reader;
}

}  // namespace

Expected<std::unique_ptr<NpyArrayReader>> NpyArrayReader::open(const std::string& path) {
  WH_ASSIGN_OR_RETURN(auto handle, FileHandle::open(path));
  uint64_t size = handle->size();
  std::unique_ptr<NpyArrayReader> reader(new NpyArrayReader());
  reader->source_ = std::make_unique<Source>();
  reader->source_->bytes = fileRangeSource(std::move(handle), 0, size, path);
  reader->label_ = path;
  ByteSource& source = *reader->source_->bytes;
  NpyHeader* header = &reader->header_;
  return finishOpen(std::move(reader), source, header);
}

int64_t NpyArrayReader::rows() const { return header_.shape.empty() ? 0 : header_.shape[0]; }

size_t NpyArrayReader::rowBytes() const {
  int64_t n = 1;
  for (size_t i = 1; i < header_.shape.size(); ++i) n *= header_.shape[i];
  if (header_.dtype == DataType::kString) return static_cast<size_t>(n * header_.stringChars * 4);
  return ir::storageBytes(header_.dtype, n);
}

Status NpyArrayReader::readRows(int64_t first, int64_t count, std::byte* dst) {
  if (header_.shape.empty()) return invalidInput(label_ + ": a 0-dimensional array has no rows");
  if (header_.dtype == DataType::kString) {
    return unimplemented(label_ + ": a unicode (string) array is read whole, not by rows");
  }
  if (first < 0 || count < 0 || first + count > rows()) {
    return invalidInput(label_ + ": rows [" + std::to_string(first) + ", " + std::to_string(first + count) +
                        ") out of range (the array has " + std::to_string(rows()) + ")");
  }
  size_t row = rowBytes();
  if (count == 0 || row == 0) return Status::ok();
  return source_->bytes->readAt(header_.dataOffset + static_cast<uint64_t>(first) * row, dst,
                                static_cast<size_t>(count) * row);
}

Expected<ir::Tensor> NpyArrayReader::readAll() {
  size_t bytes = header_.dataBytes();
  auto buffer = ir::Buffer::allocateUninitialized(bytes);
  if (bytes > 0) WH_RETURN_IF_ERROR(source_->bytes->readAt(header_.dataOffset, buffer->mutableData(), bytes));
  if (header_.dtype == DataType::kString) return decodeStrings(buffer->data(), header_, label_);
  return ir::Tensor(header_.dtype, header_.shape, std::move(buffer));
}

Expected<ir::Tensor> readNpy(const std::string& path) {
  WH_ASSIGN_OR_RETURN(auto reader, NpyArrayReader::open(path));
  return reader->readAll();
}

// ---- NpzArchive ----

struct NpzArchive::Impl {
  ZipArchive zip;
  std::map<std::string, size_t, std::less<>> entryOf;
};

NpzArchive::NpzArchive() = default;
NpzArchive::~NpzArchive() = default;
NpzArchive::NpzArchive(NpzArchive&&) noexcept = default;
NpzArchive& NpzArchive::operator=(NpzArchive&&) noexcept = default;

Expected<NpzArchive> NpzArchive::open(const std::string& path) {
  WH_ASSIGN_OR_RETURN(ZipArchive zip, ZipArchive::open(path));
  NpzArchive archive;
  archive.impl_ = std::make_unique<Impl>();
  for (size_t i = 0; i < zip.entries().size(); ++i) {
    const std::string& name = zip.entries()[i].name;
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".npy") != 0) continue;  // folders, other files
    std::string key = name.substr(0, name.size() - 4);
    if (archive.impl_->entryOf.emplace(key, i).second) archive.names_.push_back(key);
  }
  archive.impl_->zip = std::move(zip);
  return archive;
}

const std::string& NpzArchive::path() const { return impl_->zip.path(); }

bool NpzArchive::contains(std::string_view name) const { return impl_->entryOf.find(name) != impl_->entryOf.end(); }

Expected<std::unique_ptr<NpyArrayReader>> NpzArchive::openArray(std::string_view name) const {
  auto it = impl_->entryOf.find(name);
  if (it == impl_->entryOf.end()) {
    std::string have;
    for (const auto& n : names_) have += (have.empty() ? "" : ", ") + n;
    return notFound(path() + ": no array named '" + std::string(name) + "' (it has: " + (have.empty() ? "none" : have) + ")");
  }
  WH_ASSIGN_OR_RETURN(auto source, impl_->zip.openEntry(impl_->zip.entries()[it->second]));
  std::unique_ptr<NpyArrayReader> reader(new NpyArrayReader());
  reader->label_ = source->label();
  reader->source_ = std::make_unique<NpyArrayReader::Source>();
  reader->source_->bytes = std::move(source);
  ByteSource& bytes = *reader->source_->bytes;
  NpyHeader* header = &reader->header_;
  return finishOpen(std::move(reader), bytes, header);
}

Expected<ir::Tensor> NpzArchive::read(std::string_view name) const {
  WH_ASSIGN_OR_RETURN(auto reader, openArray(name));
  return reader->readAll();
}

Expected<std::vector<std::pair<std::string, ir::Tensor>>> readNpz(const std::string& path) {
  WH_ASSIGN_OR_RETURN(NpzArchive archive, NpzArchive::open(path));
  std::vector<std::pair<std::string, ir::Tensor>> out;
  for (const std::string& name : archive.names()) {
    WH_ASSIGN_OR_RETURN(ir::Tensor t, archive.read(name));
    out.emplace_back(name, std::move(t));
  }
  return out;
}

}  // namespace whittle::data
