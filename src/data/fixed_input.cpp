// --fixed-input NAME=VALUE: a model input fed the same tensor with every batch, beside a data
// set that feeds the other inputs (a voice-activity model's sample rate, a recurrent model's
// initial state). docs/datasets.md, "Fixed inputs".
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "dataset_internal.h"

namespace whittle::data {

Expected<FixedInputSpec> parseFixedInput(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return invalidInput("--fixed-input '" + std::string(text) +
                        "': expected NAME=VALUE (a number, e.g. sr=16000, or a .npy/.npz/.pb file)");
  }
  return FixedInputSpec{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

namespace detail {
namespace {

/// `text` as a number when all of it is one (decimal integer or floating point).
std::optional<double> parseNumber(const std::string& text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

template <typename T>
void fill(ir::Tensor& t, T value) {
  T* p = t.mutableData<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
}

/// A tensor of `dtype` and `dims` whose every element is `v`; an error when `v` does not fit
/// the type exactly (16000.5 for an int64 input, 300 for uint8).
Expected<ir::Tensor> filledTensor(ir::DataType dtype, std::vector<int64_t> dims, double v, const std::string& what) {
  ir::Tensor t(dtype, std::move(dims));
  auto integral = [&](double lo, double hi) -> Status {
    if (std::trunc(v) != v || v < lo || v > hi) {
      return invalidInput(what + ": not a value of the input's type, " + std::string(ir::dataTypeName(dtype)));
    }
    return Status::ok();
  };
  switch (dtype) {
    case ir::DataType::kFloat: fill(t, static_cast<float>(v)); break;
    case ir::DataType::kDouble: fill(t, v); break;
    case ir::DataType::kFloat16: fill(t, ir::floatToHalf(static_cast<float>(v))); break;
    case ir::DataType::kBFloat16: fill(t, ir::floatToBfloat16(static_cast<float>(v))); break;
    case ir::DataType::kInt64:
      WH_RETURN_IF_ERROR(integral(-9.2233720368547758e18, 9.2233720368547748e18));
      fill(t, static_cast<int64_t>(v));
      break;
    case ir::DataType::kInt32:
      WH_RETURN_IF_ERROR(integral(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
      fill(t, static_cast<int32_t>(v));
      break;
    case ir::DataType::kInt16:
      WH_RETURN_IF_ERROR(integral(std::numeric_limits<int16_t>::min(), std::numeric_limits<int16_t>::max()));
      fill(t, static_cast<int16_t>(v));
      break;
    case ir::DataType::kInt8:
      WH_RETURN_IF_ERROR(integral(std::numeric_limits<int8_t>::min(), std::numeric_limits<int8_t>::max()));
      fill(t, static_cast<int8_t>(v));
      break;
    case ir::DataType::kUint8:
      WH_RETURN_IF_ERROR(integral(0, std::numeric_limits<uint8_t>::max()));
      fill(t, static_cast<uint8_t>(v));
      break;
    case ir::DataType::kUint16:
      WH_RETURN_IF_ERROR(integral(0, std::numeric_limits<uint16_t>::max()));
      fill(t, static_cast<uint16_t>(v));
      break;
    case ir::DataType::kUint32:
      WH_RETURN_IF_ERROR(integral(0, std::numeric_limits<uint32_t>::max()));
      fill(t, static_cast<uint32_t>(v));
      break;
    case ir::DataType::kBool:
      if (v != 0 && v != 1) return invalidInput(what + ": a bool input takes 0 or 1");
      fill(t, static_cast<uint8_t>(v));
      break;
    default:
      return invalidInput(what + ": a number cannot fill a " + std::string(ir::dataTypeName(dtype)) +
                          " input; give a file");
  }
  return t;
}

/// The tensor that `spec.value` names as a file: a .npy or .pb, or the .npz array named after
/// the input (or its only array).
Expected<ir::Tensor> tensorFromFile(const FixedInputSpec& spec, const std::string& what) {
  auto read = readTensorsFromFile(spec.value);
  if (!read.isOk()) return read.status().withContext(what);
  std::vector<NamedTensor>& tensors = *read;
  if (tensors.size() == 1) return std::move(tensors.front().second);
  std::string names;
  for (auto& [name, tensor] : tensors) {
    if (name == spec.input) return std::move(tensor);
    names += (names.empty() ? "" : ", ") + name;
  }
  return invalidInput(what + ": " + spec.value + " holds " + std::to_string(tensors.size()) +
                      " arrays and none is named '" + spec.input + "' (arrays: " + names + ")");
}

}  // namespace

Expected<SampleSlot> fixedInputSlot(const FixedInputSpec& spec, const InputSpec& input) {
  const std::string what = "--fixed-input " + spec.input + "=" + spec.value;
  ir::Tensor tensor;
  if (std::optional<double> number = parseNumber(spec.value)) {
    if (!input.dims) {
      return invalidInput(what + ": the model does not declare the rank of input '" + input.name +
                          "', so a number cannot say its shape; give a .npy file");
    }
    std::vector<int64_t> dims;
    for (const ir::Dim& d : *input.dims) {
      if (!d.isKnown()) {
        return invalidInput(what + ": input '" + input.name + "' has shape " + dimsText(*input.dims) +
                            ", not a static one, so a number cannot fill it; give a .npy file");
      }
      dims.push_back(d.value);
    }
    if (input.dtype == ir::DataType::kUndefined) {
      return invalidInput(what + ": the model does not declare the element type of input '" + input.name +
                          "'; give a .npy file");
    }
    WH_ASSIGN_OR_RETURN(tensor, filledTensor(input.dtype, std::move(dims), *number, what));
  } else {
    WH_ASSIGN_OR_RETURN(tensor, tensorFromFile(spec, what));
    if (input.dtype != ir::DataType::kUndefined && tensor.dtype() != input.dtype) {
      return invalidInput(what + ": input '" + input.name + "' is " + std::string(ir::dataTypeName(input.dtype)) +
                          ", the file holds " + std::string(ir::dataTypeName(tensor.dtype())));
    }
    if (input.dims) {
      const std::vector<ir::Dim>& want = *input.dims;
      bool fits = want.size() == tensor.dims().size();
      for (size_t i = 0; fits && i < want.size(); ++i) {
        if (want[i].isKnown() && want[i].value != tensor.dims()[i]) fits = false;
      }
      if (!fits) {
        return invalidInput(what + ": input '" + input.name + "' has shape " + dimsText(want) + ", the file holds " +
                            dimsText(tensor.dims()));
      }
    }
  }
  SampleSlot slot;
  slot.input = input.name;
  slot.dtype = tensor.dtype();
  slot.sampleDims = tensor.dims();
  slot.sampleBytes = tensor.byteSize();
  slot.batchAxis = -1;
  slot.fixed = std::move(tensor);
  return slot;
}

Status splitFixedInputs(const std::vector<FixedInputSpec>& fixedInputs, const std::vector<InputSpec>& modelInputs,
                        std::vector<InputSpec>& fed, std::vector<SampleSlot>& fixedSlots) {
  fed.clear();
  fixedSlots.clear();
  std::string names;
  for (const InputSpec& in : modelInputs) names += (names.empty() ? "" : ", ") + in.name;
  for (size_t i = 0; i < fixedInputs.size(); ++i) {
    const FixedInputSpec& f = fixedInputs[i];
    for (size_t j = 0; j < i; ++j) {
      if (fixedInputs[j].input == f.input) return invalidInput("--fixed-input " + f.input + ": given twice");
    }
    bool known = false;
    for (const InputSpec& in : modelInputs) known = known || in.name == f.input;
    if (!known) {
      return notFound("--fixed-input " + f.input + "=" + f.value + ": the model has no input named '" + f.input +
                      "' (inputs: " + names + ")");
    }
  }
  for (const InputSpec& in : modelInputs) {
    const FixedInputSpec* fixed = nullptr;
    for (const FixedInputSpec& f : fixedInputs) {
      if (f.input == in.name) fixed = &f;
    }
    if (fixed == nullptr) {
      fed.push_back(in);
      continue;
    }
    WH_ASSIGN_OR_RETURN(SampleSlot slot, fixedInputSlot(*fixed, in));
    fixedSlots.push_back(std::move(slot));
  }
  if (fed.empty() && !modelInputs.empty()) {
    return invalidInput("--fixed-input fixes every model input (" + names +
                        "); the data set has nothing to feed (give it the inputs whose samples it holds)");
  }
  return Status::ok();
}

}  // namespace detail
}  // namespace whittle::data
