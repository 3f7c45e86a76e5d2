// --fixed-input NAME=VALUE: inputs fed one tensor with every batch beside a data set that feeds
// the others (src/data/fixed_input.cpp, docs/datasets.md "Fixed inputs").
#include <catch2/catch.hpp>

#include "support/temp_dir.h"
#include "whittle/data/dataset.h"
#include "whittle/data/npy.h"

namespace whittle {
namespace {

using data::DatasetSpec;
using data::FixedInputSpec;
using data::InputSpec;
using ir::DataType;
using testing::TempDir;

InputSpec input(const std::string& name, DataType dtype, std::vector<ir::Dim> dims) { return {name, dtype, dims}; }

// A Silero-like voice detector's inputs: audio [batch,4], a state [2,batch,3] with the batch
// second, a scalar sample rate.
std::vector<InputSpec> vadInputs() {
  auto batch = ir::Dim::symbolic("batch");
  return {input("x", DataType::kFloat, {batch, ir::Dim::known(4)}),
          input("state", DataType::kFloat, {ir::Dim::known(2), batch, ir::Dim::known(3)}),
          input("sr", DataType::kInt64, {})};
}

ir::Tensor iota(std::vector<int64_t> dims, float base = 0) {
  ir::Tensor t(DataType::kFloat, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.mutableData<float>()[i] = base + static_cast<float>(i);
  return t;
}

DatasetSpec spec(const std::string& path, std::vector<FixedInputSpec> fixed) {
  DatasetSpec s;
  s.path = path;
  s.fixedInputs = std::move(fixed);
  return s;
}

TEST_CASE("fixed inputs: parsing NAME=VALUE", "[data][dataset]") {
  auto ok = data::parseFixedInput("sr=16000");
  REQUIRE(ok.isOk());
  CHECK(ok->input == "sr");
  CHECK(ok->value == "16000");
  auto path = data::parseFixedInput("state=dir/a=b.npy");  // the first '=' splits
  REQUIRE(path.isOk());
  CHECK(path->value == "dir/a=b.npy");
  for (const char* bad : {"sr", "=16000", "sr="}) {
    auto r = data::parseFixedInput(bad);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message() == "--fixed-input '" + std::string(bad) +
                                      "': expected NAME=VALUE (a number, e.g. sr=16000, or a .npy/.npz/.pb file)");
  }
}

TEST_CASE("fixed inputs: a .npy of audio feeds x, a number fills sr and a file gives the state", "[data][dataset]") {
  TempDir dir;
  REQUIRE(data::writeNpy(iota({5, 4}), dir.file("x.npy")).isOk());
  REQUIRE(data::writeNpy(iota({2, 1, 3}, 100), dir.file("h0.npy")).isOk());
  auto ds = data::openDataset(spec(dir.file("x.npy"), {{"sr", "16000"}, {"state", dir.file("h0.npy")}}), vadInputs());
  INFO(ds.status().message());
  REQUIRE(ds.isOk());
  CHECK((*ds)->size() == 5);
  // The state's batch axis is free in the model and 1 in the file: every batch is one sample.
  CHECK((*ds)->fixedBatch() == 1);
  REQUIRE((*ds)->slots().size() == 3);
  CHECK((*ds)->slots()[0].input == "x");
  CHECK((*ds)->slots()[1].input == "state");  // fixed slots follow the data set's own, in model order
  CHECK((*ds)->slots()[2].input == "sr");
  CHECK((*ds)->slots()[1].isFixed());
  CHECK_THAT((*ds)->describe(), Catch::Contains("fixed by --fixed-input: state [2,1,3], sr []"));
  auto b = (*ds)->get(3);
  REQUIRE(b.isOk());
  REQUIRE(b->inputs.size() == 3);
  CHECK(b->inputs[0].second.dims() == std::vector<int64_t>{1, 4});
  CHECK(b->inputs[0].second.data<float>()[0] == 12.0f);
  CHECK(b->inputs[1].second.dims() == std::vector<int64_t>{2, 1, 3});
  CHECK(b->inputs[1].second.data<float>()[5] == 105.0f);
  CHECK(b->inputs[2].second.dims().empty());
  CHECK(b->inputs[2].second.data<int64_t>()[0] == 16000);
}

TEST_CASE("fixed inputs: without a pinned state, batches stack samples and the fixed value repeats", "[data][dataset]") {
  TempDir dir;
  REQUIRE(data::writeNpy(iota({6, 4}), dir.file("x.npy")).isOk());
  std::vector<InputSpec> inputs{vadInputs()[0], vadInputs()[2]};
  auto ds = data::openDataset(spec(dir.file("x.npy"), {{"sr", "8000"}}), inputs);
  INFO(ds.status().message());
  REQUIRE(ds.isOk());
  CHECK_FALSE((*ds)->fixedBatch());
  auto b = (*ds)->read(2, 3);
  REQUIRE(b.isOk());
  CHECK(b->inputs[0].second.dims() == std::vector<int64_t>{3, 4});
  CHECK(b->inputs[1].second.data<int64_t>()[0] == 8000);
}

TEST_CASE("fixed inputs: the flag wins over a data set's array of the same name", "[data][dataset]") {
  TempDir dir;
  REQUIRE(data::writeNpy(iota({3, 4}), dir.file("x.npy")).isOk());
  // A .npz is not needed: a .npy feeding the only unfixed input shows the override as well as
  // a .npz would (the data set opens against the inputs the flag leaves).
  std::vector<InputSpec> inputs{vadInputs()[0], vadInputs()[2]};
  auto ds = data::openDataset(spec(dir.file("x.npy"), {{"sr", "22050"}}), inputs);
  REQUIRE(ds.isOk());
  CHECK((*ds)->get(0)->inputs[1].second.data<int64_t>()[0] == 22050);
}

TEST_CASE("fixed inputs: each bad value is a one-line error naming the flag and the input", "[data][dataset]") {
  TempDir dir;
  REQUIRE(data::writeNpy(iota({5, 4}), dir.file("x.npy")).isOk());
  REQUIRE(data::writeNpy(iota({2, 3}), dir.file("flat.npy")).isOk());
  REQUIRE(data::writeNpy(ir::Tensor::fromVector<int32_t>(DataType::kInt32, {}, {16000}), dir.file("sr32.npy")).isOk());
  auto error = [&](std::vector<FixedInputSpec> fixed) {
    auto ds = data::openDataset(spec(dir.file("x.npy"), std::move(fixed)), vadInputs());
    REQUIRE_FALSE(ds.isOk());
    return ds.status().message();
  };
  CHECK(error({{"rate", "16000"}}) ==
        "--fixed-input rate=16000: the model has no input named 'rate' (inputs: x, state, sr)");
  CHECK(error({{"sr", "16000"}, {"sr", "8000"}}) == "--fixed-input sr: given twice");
  CHECK(error({{"sr", "16000.5"}}) ==
        "--fixed-input sr=16000.5: not a value of the input's type, int64");
  CHECK(error({{"state", "0"}}) ==
        "--fixed-input state=0: input 'state' has shape [2,batch,3], not a static one, so a number cannot fill it; "
        "give a .npy file");
  CHECK(error({{"state", dir.file("flat.npy")}}) ==
        "--fixed-input state=" + dir.file("flat.npy") + ": input 'state' has shape [2,batch,3], the file holds [2,3]");
  CHECK(error({{"sr", dir.file("sr32.npy")}}) ==
        "--fixed-input sr=" + dir.file("sr32.npy") + ": input 'sr' is int64, the file holds int32");
  CHECK_THAT(error({{"sr", dir.file("missing.npy")}}), Catch::StartsWith("--fixed-input sr=" + dir.file("missing.npy") + ": "));
  CHECK(error({{"x", "0"}, {"state", dir.file("flat.npy")}, {"sr", "1"}}).find("--fixed-input") == 0);
  std::vector<InputSpec> scalarOnly{vadInputs()[2]};
  auto all = data::openDataset(spec(dir.file("x.npy"), {{"sr", "16000"}}), scalarOnly);
  REQUIRE_FALSE(all.isOk());
  CHECK(all.status().message() ==
        "--fixed-input fixes every model input (sr); the data set has nothing to feed (give it the inputs whose "
        "samples it holds)");
}

}  // namespace
}  // namespace whittle
