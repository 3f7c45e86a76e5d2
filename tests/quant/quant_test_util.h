#pragma once
// Shared by the quantization tests: seeded calibration data sets written as .npy files.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "support/graph_builder.h"
#include "support/temp_dir.h"
#include "whittle/data/dataset.h"
#include "whittle/data/npy.h"

namespace whittle::testing {

/// `samples` (its first axis: the samples) written to dir/calib.npy and opened as a data set
/// for `model`'s inputs.
inline std::unique_ptr<data::Dataset> calibrationSet(const ir::Model& model, const TempDir& dir, const ir::Tensor& samples) {
  std::string path = dir.file("calib.npy");
  REQUIRE(data::writeNpy(samples, path).isOk());
  data::DatasetSpec spec;
  spec.path = path;
  auto ds = data::openDataset(spec, data::inputSpecs(*model.graph));
  INFO(ds.status().message());
  REQUIRE(ds.isOk());
  return std::move(ds).value();
}

/// `samples` seeded uniform samples in [lo, hi) for the only input of `model`, written to
/// dir/calib.npy and opened as a data set for it.
inline std::unique_ptr<data::Dataset> randomCalibrationSet(const ir::Model& model, const TempDir& dir, int64_t samples,
                                                           uint64_t seed, double lo = -1.0, double hi = 1.0) {
  const ir::Value* in = nullptr;
  for (const ir::Value* v : model.graph->inputs()) {
    if (!v->isInitializer()) in = v;
  }
  REQUIRE(in != nullptr);
  std::vector<int64_t> dims = {samples};
  const auto& shape = *in->type().shape;
  for (size_t i = 1; i < shape.size(); ++i) dims.push_back(shape[i].value);
  GraphBuilder rng(seed);
  return calibrationSet(model, dir, rng.randomTensor(ir::DataType::kFloat, dims, lo, hi));
}

}  // namespace whittle::testing
