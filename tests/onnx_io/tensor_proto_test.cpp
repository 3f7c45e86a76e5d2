// TensorProto -> Tensor on hostile input: cases found by fuzz/fuzz_model_load (docs/fuzzing.md).
#include "whittle/onnx_io/tensor_proto.h"

#include <catch2/catch.hpp>
#include <onnx/onnx_pb.h>

#include <string>

namespace whittle {
namespace {

TEST_CASE("tensor proto: huge dims without data are an error, not an allocation", "[onnx_io][fuzz]") {
  // dims [2**40] with no values: the buffer (4 TiB of float) was allocated before the values
  // were counted, and the allocation aborted the process.
  for (int32_t dtype : {int32_t{onnx::TensorProto::FLOAT}, int32_t{22} /* INT4 */, int32_t{onnx::TensorProto::UINT8}}) {
    CAPTURE(dtype);
    onnx::TensorProto proto;
    proto.set_name("w");
    proto.set_data_type(dtype);
    proto.add_dims(int64_t{1} << 40);
    auto t = onnx_io::tensorFromProto(proto, {});
    REQUIRE_FALSE(t.isOk());
    CHECK(t.status().code() == StatusCode::kInvalidInput);
    CHECK(t.status().message().find("tensor 'w': has 0 ") == 0);
    CHECK(t.status().message().find("[1099511627776]") != std::string::npos);
  }
}

TEST_CASE("tensor proto: typed values of the right count still convert", "[onnx_io]") {
  onnx::TensorProto proto;
  proto.set_name("w");
  proto.set_data_type(int32_t{22} /* INT4: libonnx 1.12 has no enum for it */);
  proto.add_dims(3);
  proto.add_int32_data(0x21);  // two 4-bit values per entry, low nibble first
  proto.add_int32_data(0x03);
  auto t = onnx_io::tensorFromProto(proto, {});
  REQUIRE(t.isOk());
  CHECK(t->numel() == 3);
  CHECK(t->byteSize() == 2);
  CHECK(static_cast<uint8_t>(t->rawData()[0]) == 0x21);
}

}  // namespace
}  // namespace whittle
