#pragma once
// The bundled demo model (models/demo_cnn.onnx) and its data, as tests name them.

#include <string>

namespace whittle::testing {

inline const std::string kDemoModel = std::string(WHITTLE_SOURCE_DIR) + "/models/demo_cnn.onnx";
/// float32 [100,1,8,8] from the training split.
inline const std::string kDemoCalib = std::string(WHITTLE_SOURCE_DIR) + "/models/demo_data/calib_images.npy";
/// float32 [360,1,8,8], the held-out test split.
inline const std::string kDemoTestImages = std::string(WHITTLE_SOURCE_DIR) + "/models/demo_data/test_images.npy";

}  // namespace whittle::testing
