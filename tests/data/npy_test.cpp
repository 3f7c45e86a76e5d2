#include "whittle/data/npy.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include "data/data_test_util.h"
#include "support/python.h"
#include "support/temp_dir.h"

namespace whittle {
namespace {

using data::NpyArrayReader;
using ir::DataType;
using testing::TempDir;

const DataType kAllTypes[] = {DataType::kFloat16, DataType::kFloat,  DataType::kDouble, DataType::kInt8,
                              DataType::kInt16,   DataType::kInt32,  DataType::kInt64,  DataType::kUint8,
                              DataType::kUint16,  DataType::kUint32, DataType::kUint64, DataType::kBool};

// A tensor whose bytes are a pattern valid for every type (bools 0/1).
ir::Tensor patterned(DataType dtype, std::vector<int64_t> dims) {
  ir::Tensor t(dtype, std::move(dims));
  std::byte* p = t.mutableRawData();
  for (size_t i = 0; i < t.byteSize(); ++i) {
    p[i] = static_cast<std::byte>(dtype == DataType::kBool ? (i % 3 == 0) : (i * 37 + 11) & 0xFF);
  }
  return t;
}

// The bytes of a .npy file with the given header dictionary and payload.
std::string npyBytes(const std::string& dict, const std::string& payload, int major = 1) {
  std::string header = dict;
  size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  size_t len = header.size();
  for (size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>((len >> (8 * i)) & 0xFF);
  return out + header + payload;
}

TEST_CASE("npy: every dtype round-trips through a file", "[data][npy]") {
  TempDir dir;
  for (DataType dtype : kAllTypes) {
    for (std::vector<int64_t> dims : {std::vector<int64_t>{2, 3, 5}, std::vector<int64_t>{7}, std::vector<int64_t>{},
                                      std::vector<int64_t>{0, 4}}) {
      CAPTURE(ir::dataTypeName(dtype), dims);
      ir::Tensor t = patterned(dtype, dims);
      std::string path = dir.file("t.npy");
      REQUIRE(data::writeNpy(t, path).isOk());
      auto back = data::readNpy(path);
      REQUIRE(back.isOk());
      CHECK(back->bitwiseEqual(t));
      // Version 1.0 header, data aligned to 64 bytes.
      std::string bytes = testing::readBytes(path);
      CHECK(bytes[6] == 1);
      auto header = data::parseNpyHeader(bytes, path);
      REQUIRE(header.isOk());
      CHECK(header->dataOffset % 64 == 0);
      CHECK(header->shape == dims);
      CHECK(bytes.size() == header->dataOffset + t.byteSize());
    }
  }
}

TEST_CASE("npy: header text matches numpy's", "[data][npy]") {
  auto h = data::encodeNpyHeader(DataType::kFloat, {360, 1, 8, 8});
  REQUIRE(h.isOk());
  CHECK(h->size() == 128);
  CHECK(h->substr(10, 67) == "{'descr': '<f4', 'fortran_order': False, 'shape': (360, 1, 8, 8), }");
  CHECK(h->back() == '\n');
  auto one = data::encodeNpyHeader(DataType::kBool, {3});
  REQUIRE(one.isOk());
  CHECK(one->find("'descr': '|b1'") != std::string::npos);
  CHECK(one->find("'shape': (3,)") != std::string::npos);
  auto scalar = data::encodeNpyHeader(DataType::kInt64, {});
  REQUIRE(scalar.isOk());
  CHECK(scalar->find("'shape': ()") != std::string::npos);
  CHECK_FALSE(data::encodeNpyHeader(DataType::kBFloat16, {2}).isOk());
  auto strings = data::encodeNpyHeader(DataType::kString, {2}, 7);
  REQUIRE(strings.isOk());
  CHECK(strings->find("'descr': '<U7'") != std::string::npos);
}

TEST_CASE("npy: version 2.0 and 3.0 headers and odd spacing parse", "[data][npy]") {
  TempDir dir;
  float values[3] = {1.5f, -2.0f, 3.25f};
  std::string payload(reinterpret_cast<const char*>(values), sizeof(values));
  for (int major : {1, 2, 3}) {
    std::string path = dir.file("v" + std::to_string(major) + ".npy");
    testing::writeBytes(path, npyBytes("{\"shape\":(3,),'fortran_order':False,  'descr':'<f4'}", payload, major));
    auto t = data::readNpy(path);
    REQUIRE(t.isOk());
    CHECK(t->dims() == std::vector<int64_t>{3});
    CHECK(t->data<float>()[2] == 3.25f);
  }
  // Python 2 longs and '=' byte order.
  std::string path = dir.file("long.npy");
  testing::writeBytes(path, npyBytes("{'descr': '=f4', 'fortran_order': False, 'shape': (3L,), }", payload));
  CHECK(data::readNpy(path).isOk());
}

TEST_CASE("npy: bad headers are errors that name the file", "[data][npy]") {
  TempDir dir;
  std::string four(16, '\0');
  auto expectError = [&](const std::string& bytes, const std::string& needle) {
    std::string path = dir.file("bad.npy");
    testing::writeBytes(path, bytes);
    auto t = data::readNpy(path);
    REQUIRE_FALSE(t.isOk());
    CAPTURE(t.status().message());
    CHECK(t.status().message().find(path) != std::string::npos);
    CHECK(t.status().message().find(needle) != std::string::npos);
    CHECK(exitCodeFor(t.status()) == 2);
  };
  expectError("not numpy at all", "magic");
  expectError("\x93NU", "too short");
  expectError(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", four).substr(0, 40), "truncated");
  expectError(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", four), "truncated");
  expectError(npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", std::string(24, '\0')), "Fortran");
  expectError(npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", four), "big-endian");
  expectError(npyBytes("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", four), "truncated");
  expectError(npyBytes("{'descr': '>U3', 'fortran_order': False, 'shape': (2,), }", four), "big-endian");
  expectError(npyBytes("{'descr': '<S3', 'fortran_order': False, 'shape': (2,), }", four), "'<S3'");
  expectError(npyBytes("{'descr': '<U1', 'fortran_order': False, 'shape': (1,), }", std::string("\0\xd8\0\0", 4)),
              "not a Unicode code point");
  expectError(npyBytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", four), "structured");
  expectError(npyBytes("{'descr': '<f4', 'shape': (2,), }", four), "fortran_order");
  expectError(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", four), "shape");
  expectError(npyBytes("{'descr': '<f4' 'fortran_order': False}", four), "bad .npy header");
  std::string v9 = npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", four);
  v9[6] = 9;
  expectError(v9, "version 9.0");
  // A missing file is kNotFound, naming it.
  auto missing = data::readNpy(dir.file("missing.npy"));
  REQUIRE_FALSE(missing.isOk());
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(missing.status().message().find("missing.npy") != std::string::npos);
}

TEST_CASE("npy: a Fortran-order array of rank 1 reads as C order", "[data][npy]") {
  TempDir dir;
  float v[2] = {1, 2};
  std::string path = dir.file("f1.npy");
  testing::writeBytes(path, npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
                                     std::string(reinterpret_cast<const char*>(v), 8)));
  CHECK(data::readNpy(path).isOk());
}

TEST_CASE("npy: row reader reads slices along axis 0", "[data][npy]") {
  TempDir dir;
  ir::Tensor t = patterned(DataType::kInt16, {10, 3, 2});
  std::string path = dir.file("rows.npy");
  REQUIRE(data::writeNpy(t, path).isOk());
  auto reader = NpyArrayReader::open(path);
  REQUIRE(reader.isOk());
  CHECK((*reader)->rows() == 10);
  CHECK((*reader)->rowBytes() == 12);
  std::vector<std::byte> rows(3 * 12);
  REQUIRE((*reader)->readRows(4, 3, rows.data()).isOk());
  CHECK(std::memcmp(rows.data(), t.rawData() + 4 * 12, rows.size()) == 0);
  auto past = (*reader)->readRows(8, 3, rows.data());
  REQUIRE_FALSE(past.isOk());
  CHECK(past.message().find("out of range") != std::string::npos);
}

TEST_CASE("npy: an empty shape with huge other dimensions is too large (found by fuzz_npy)", "[data][npy][fuzz]") {
  // numel is 0, but the row size 2**40 * 2**40 overflowed int64 in rowBytes() (UBSan).
  std::string header =
      npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1099511627776, 1099511627776), }", "");
  auto parsed = data::parseNpyHeader(header, "x.npy");
  REQUIRE_FALSE(parsed.isOk());
  CHECK(parsed.status().message() == "x.npy: shape (0, 1099511627776, 1099511627776) is too large");
  // Empty arrays with ordinary dimensions still read.
  auto empty = data::parseNpyHeader(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3, 4), }", ""), "e.npy");
  REQUIRE(empty.isOk());
  CHECK(empty->numel() == 0);
}

TEST_CASE("npy: files written by numpy read back, and numpy reads ours", "[data][npy]") {
  TempDir dir;
  if (!testing::makeFixtures(dir.path())) return;
  for (const char* code : {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}) {
    CAPTURE(code);
    auto t = data::readNpy(dir.file(std::string("dtype_") + code + ".npy"));
    REQUIRE(t.isOk());
    CHECK(t->dims() == std::vector<int64_t>{2, 3, 4});
    for (int64_t i = 0; i < 24; ++i) {
      double expected = (i * 3) % 7;
      if (std::string(code) == "b1") expected = expected != 0;
      CHECK(t->valueAsDouble(i) == expected);
    }
    // Write it back; numpy must read the same values.
    REQUIRE(data::writeNpy(*t, dir.file(std::string("ours_") + code + ".npy")).isOk());
  }
  std::string out;
  int rc = testing::shell("cd " + testing::shellQuote(dir.path()) + " && " + testing::python() +
                              " -c \"import numpy as np\n"
                              "for c in ['f2','f4','f8','i1','i2','i4','i8','u1','u2','u4','u8','b1']:\n"
                              "  a=np.load('ours_'+c+'.npy'); b=np.load('dtype_'+c+'.npy')\n"
                              "  assert a.dtype==b.dtype and a.shape==b.shape and (a==b).all(), c\n"
                              "print('ok')\"",
                          &out);
  INFO(out);
  CHECK(rc == 0);
  for (const char* name : {"v2.npy", "v3.npy"}) {
    auto v = data::readNpy(dir.file(name));
    REQUIRE(v.isOk());
    auto x = data::readNpy(dir.file("x.npy"));
    REQUIRE(x.isOk());
    CHECK(v->bitwiseEqual(*x));
  }
  auto fortran = data::readNpy(dir.file("fortran.npy"));
  REQUIRE_FALSE(fortran.isOk());
  CHECK(fortran.status().message().find("Fortran") != std::string::npos);
  CHECK_FALSE(data::readNpy(dir.file("bigendian.npy")).isOk());
  auto unicode = data::readNpy(dir.file("unicode.npy"));  // np.array(["ab", "cd"]): '<U2'
  REQUIRE(unicode.isOk());
  CHECK(unicode->dtype() == DataType::kString);
  CHECK(unicode->stringValues() == std::vector<std::string>{"ab", "cd"});
}

TEST_CASE("npy: string tensors are numpy unicode arrays both ways", "[data][npy]") {
  TempDir dir;
  // UTF-8 in the tensor, UTF-32 in the file, '<U' + the longest length; "" and non-ASCII kept.
  ir::Tensor t = ir::Tensor::strings({2, 2}, {"monday", "", "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x98\x80!"});
  std::string path = dir.file("s.npy");
  REQUIRE(data::writeNpy(t, path).isOk());
  auto header = data::parseNpyHeader(testing::readBytes(path), path);
  REQUIRE(header.isOk());
  CHECK(header->dtype == DataType::kString);
  CHECK(header->stringChars == 6);
  auto back = data::readNpy(path);
  REQUIRE(back.isOk());
  CHECK(back->bitwiseEqual(t));
  // Rows of a string array are not raw bytes: reading by rows says so.
  auto reader = NpyArrayReader::open(path);
  REQUIRE(reader.isOk());
  std::vector<std::byte> row((*reader)->rowBytes());
  auto rows = (*reader)->readRows(0, 1, row.data());
  REQUIRE_FALSE(rows.isOk());
  CHECK(rows.message().find("read whole") != std::string::npos);
  // Invalid UTF-8 in a tensor is an error naming the element, and nothing is written.
  ir::Tensor bad = ir::Tensor::strings({2}, {"ok", "\xff"});
  auto written = data::writeNpy(bad, dir.file("bad.npy"));
  REQUIRE_FALSE(written.isOk());
  CHECK(written.message().find("element 1") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("bad.npy")));
  // numpy reads ours as the same strings.
  if (!testing::requirePython("numpy", "to read the string .npy back")) return;
  std::string out;
  int rc = testing::shell(testing::python() + " -c \"import numpy as np, sys\n"
                              "a=np.load(sys.argv[1])\n"
                              "assert a.dtype == np.dtype('<U6') and a.tolist() == [['monday', ''], ['\u00e9t\u00e9', '\U0001F600!']], a\n"
                              "print('ok')\" " + testing::shellQuote(path),
                          &out);
  INFO(out);
  CHECK(rc == 0);
}

}  // namespace
}  // namespace whittle
