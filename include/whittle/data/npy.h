#pragma once
// NumPy .npy arrays (format versions 1.0, 2.0 and 3.0; little-endian; C order) and .npz
// archives of them (numpy's savez and savez_compressed: zip entries stored or deflated).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/tensor.h"

namespace whittle::data {

/// The header of a .npy array.
struct NpyHeader {
  ir::DataType dtype = ir::DataType::kUndefined;
  std::vector<int64_t> shape;
  bool fortranOrder = false;
  int majorVersion = 1;
  int minorVersion = 0;
  /// Bytes from the start of the file to the first element.
  size_t dataOffset = 0;
  /// Characters per element of a numpy unicode array ('<U' + this, UTF-32): dtype kString.
  int64_t stringChars = 0;

  int64_t numel() const;
  size_t dataBytes() const;
};

/// The numpy type string for `dtype` ("<f4", "|u1", "|b1"), or "" when .npy has none
/// (bfloat16, float8, 4-bit types; strings are "<U" + their longest length, encodeNpyHeader).
std::string npyDescr(ir::DataType dtype);

/// Parses the magic, version and header dictionary at the start of `bytes`, which must hold
/// the whole header. Fortran order, big-endian and structured dtypes are errors that name
/// `label`.
Expected<NpyHeader> parseNpyHeader(std::string_view bytes, const std::string& label);

/// The header bytes for an array: version 1.0, or 2.0 when the dictionary does not fit in
/// 65535 bytes; padded with spaces so that the data starts at a multiple of 64. A string array
/// (dtype kString) is numpy's unicode '<U' + `stringChars`.
Expected<std::string> encodeNpyHeader(ir::DataType dtype, const std::vector<int64_t>& shape, int64_t stringChars = 0);

/// Reads a whole .npy file into a tensor (64-byte aligned).
Expected<ir::Tensor> readNpy(const std::string& path);
/// Writes a tensor as a .npy file (version 1.0 header), atomically.
Status writeNpy(const ir::Tensor& tensor, const std::string& path);
/// The bytes of a .npy file holding `tensor`.
Expected<std::string> encodeNpy(const ir::Tensor& tensor);

/// Reads rows (slices along axis 0) of a .npy array stored in a file or in a .npz entry,
/// without loading the rest of it. Deflated .npz entries are decompressed forward; reading
/// rows in order costs one pass.
class NpyArrayReader {
 public:
  ~NpyArrayReader();
  NpyArrayReader(const NpyArrayReader&) = delete;
  NpyArrayReader& operator=(const NpyArrayReader&) = delete;

  /// Opens a .npy file and reads its header.
  static Expected<std::unique_ptr<NpyArrayReader>> open(const std::string& path);

  const NpyHeader& header() const { return header_; }
  /// "x.npy", or "x.npz:name.npy" for an archive member.
  const std::string& label() const { return label_; }
  /// shape[0]; a rank-0 array has no rows and is an error to read by rows.
  int64_t rows() const;
  /// Bytes of one row: the product of shape[1:] times the element size.
  size_t rowBytes() const;
  /// Copies rows [first, first + count) into `dst`, which holds count * rowBytes() bytes
  /// (numeric arrays; a string array is read whole, readAll).
  Status readRows(int64_t first, int64_t count, std::byte* dst);
  /// The whole array as a tensor.
  Expected<ir::Tensor> readAll();

 private:
  friend class NpzArchive;
  NpyArrayReader();
  struct Source;
  std::unique_ptr<Source> source_;
  NpyHeader header_;
  std::string label_;
};

/// An open .npz archive. Arrays are read on demand, one at a time.
class NpzArchive {
 public:
  ~NpzArchive();
  NpzArchive(NpzArchive&&) noexcept;
  NpzArchive& operator=(NpzArchive&&) noexcept;

  /// Reads the archive's directory; errors name the file.
  static Expected<NpzArchive> open(const std::string& path);

  const std::string& path() const;
  /// Array names in archive order, without the ".npy" suffix ("arr_0", "input").
  const std::vector<std::string>& names() const { return names_; }
  bool contains(std::string_view name) const;
  /// A row reader over the array `name`; an unknown name is kNotFound listing the names.
  Expected<std::unique_ptr<NpyArrayReader>> openArray(std::string_view name) const;
  /// The whole array `name`.
  Expected<ir::Tensor> read(std::string_view name) const;

 private:
  NpzArchive();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> names_;
};

/// Reads every array of a .npz file, in archive order.
Expected<std::vector<std::pair<std::string, ir::Tensor>>> readNpz(const std::string& path);

}  // namespace whittle::data
