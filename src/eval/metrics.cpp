#include "whittle/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "whittle/common/status.h"

namespace whittle::eval {

std::vector<float> floatValues(const ir::Tensor& tensor, int64_t count) {
  int64_t n = count < 0 ? tensor.numel() : std::min(count, tensor.numel());
  std::vector<float> out(static_cast<size_t>(n));
  if (tensor.dtype() == ir::DataType::kFloat) {
    std::copy_n(tensor.data<float>(), n, out.begin());
  } else {
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<float>(tensor.valueAsDouble(i));
  }
  return out;
}

void ErrorAccumulator::add(std::span<const float> ref, std::span<const float> test) {
  WH_CHECK(ref.size() == test.size(), "ErrorAccumulator::add: lengths differ");
  for (size_t i = 0; i < ref.size(); ++i) {
    double r = ref[i];
    double t = test[i];
    double e = t - r;
    sumRefSq_ += r * r;
    sumTestSq_ += t * t;
    sumDot_ += r * t;
    sumNoiseSq_ += e * e;
    double a = std::fabs(e);
    sumAbs_ += a;
    // NaN in either tensor makes the error NaN; keep it visible instead of hiding it in max().
    if (a > maxAbs_ || std::isnan(a)) maxAbs_ = a;
  }
  count_ += static_cast<int64_t>(ref.size());
}

double ErrorAccumulator::cosine() const {
  if (sumRefSq_ == 0 && sumTestSq_ == 0) return 1.0;
  if (sumRefSq_ == 0 || sumTestSq_ == 0) return 0.0;
  return sumDot_ / std::sqrt(sumRefSq_ * sumTestSq_);
}

double ErrorAccumulator::sqnrDb() const {
  if (sumNoiseSq_ == 0) return std::numeric_limits<double>::infinity();
  if (sumRefSq_ == 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(sumRefSq_ / sumNoiseSq_);
}

void ChannelErrorAccumulator::add(std::span<const float> ref, std::span<const float> test, int64_t channels,
                                  int64_t inner) {
  WH_CHECK(ref.size() == test.size(), "ChannelErrorAccumulator::add: lengths differ");
  WH_CHECK(channels >= 1 && inner >= 1 && ref.size() % static_cast<size_t>(channels * inner) == 0,
           "ChannelErrorAccumulator::add: length is not a multiple of the channel count times the inner size");
  if (refSq_.empty()) {
    refSq_.assign(static_cast<size_t>(channels), 0.0);
    noiseSq_.assign(static_cast<size_t>(channels), 0.0);
  }
  WH_CHECK(static_cast<int64_t>(refSq_.size()) == channels, "ChannelErrorAccumulator::add: the channel count changed");
  const auto c = static_cast<size_t>(channels);
  const auto step = static_cast<size_t>(inner);
  for (size_t i = 0; i < ref.size(); i += c * step) {
    for (size_t k = 0; k < c; ++k) {
      double r2 = 0, e2 = 0;
      for (size_t j = i + k * step, end = j + step; j < end; ++j) {
        const double r = ref[j];
        const double e = static_cast<double>(test[j]) - r;
        r2 += r * r;
        e2 += e * e;
      }
      refSq_[k] += r2;
      noiseSq_[k] += e2;
    }
  }
}

double ChannelErrorAccumulator::sqnrDb(int64_t c) const {
  const auto k = static_cast<size_t>(c);
  WH_CHECK(k < refSq_.size(), "ChannelErrorAccumulator::sqnrDb: no such channel");
  if (noiseSq_[k] == 0) return std::numeric_limits<double>::infinity();
  if (refSq_[k] == 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(refSq_[k] / noiseSq_[k]);
}

std::pair<double, int64_t> ChannelErrorAccumulator::minSqnrDb() const {
  std::pair<double, int64_t> worst{std::numeric_limits<double>::infinity(), -1};
  for (size_t k = 0; k < refSq_.size(); ++k) {
    if (refSq_[k] == 0) continue;
    double s = sqnrDb(static_cast<int64_t>(k));
    // NaN noise (a NaN in the tested tensor) counts as the worst.
    if (std::isnan(s)) s = -std::numeric_limits<double>::infinity();
    if (worst.second < 0 || s < worst.first) worst = {s, static_cast<int64_t>(k)};
  }
  return worst;
}

void ThresholdF1Accumulator::add(std::span<const float> ref, std::span<const float> test, double threshold) {
  WH_CHECK(ref.size() == test.size(), "ThresholdF1Accumulator::add: lengths differ");
  for (size_t i = 0; i < ref.size(); ++i) {
    const bool r = ref[i] > threshold;  // false for NaN
    const bool t = test[i] > threshold;
    ref_ += r;
    test_ += t;
    both_ += r && t;
  }
}

double f1Pct(int64_t both, int64_t reference, int64_t tested) {
  if (reference + tested == 0) return 100.0;
  return 200.0 * static_cast<double>(both) / static_cast<double>(reference + tested);
}

double ThresholdF1Accumulator::f1Pct() const { return eval::f1Pct(both_, ref_, test_); }

double boxIou(const float* a, const float* b) {
  const double iw = std::max(0.0, static_cast<double>(std::min(a[2], b[2])) - std::max(a[0], b[0]));
  const double ih = std::max(0.0, static_cast<double>(std::min(a[3], b[3])) - std::max(a[1], b[1]));
  const auto area = [](const float* r) {
    return std::max(0.0, static_cast<double>(r[2]) - r[0]) * std::max(0.0, static_cast<double>(r[3]) - r[1]);
  };
  const double inter = iw * ih, uni = area(a) + area(b) - inter;
  return uni > 0 ? inter / uni : 0.0;
}

int64_t matchDetections(const Detections& ref, const Detections& test, double iouThreshold) {
  WH_CHECK(ref.boxes.size() == 4 * ref.size() && test.boxes.size() == 4 * test.size(),
           "matchDetections: not four coordinates per box");
  WH_CHECK((ref.classes.empty() || ref.classes.size() == ref.size()) &&
               (test.classes.empty() || test.classes.size() == test.size()),
           "matchDetections: not one class per box");
  const auto classOf = [](const Detections& d, size_t i) { return d.classes.empty() ? int64_t{0} : d.classes[i]; };
  std::vector<size_t> order(test.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Highest score first; a NaN score last.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const float sa = test.scores[a], sb = test.scores[b];
    if (std::isnan(sb)) return !std::isnan(sa);
    return sa > sb;
  });
  std::vector<bool> used(ref.size(), false);
  int64_t matched = 0;
  for (size_t i : order) {
    double best = -1;
    size_t which = 0;
    for (size_t j = 0; j < ref.size(); ++j) {
      if (used[j] || classOf(ref, j) != classOf(test, i)) continue;
      const double iou = boxIou(&test.boxes[4 * i], &ref.boxes[4 * j]);
      if (iou > best) {
        best = iou;
        which = j;
      }
    }
    if (best >= iouThreshold) {
      used[which] = true;
      ++matched;
    }
  }
  return matched;
}

void BoxF1Accumulator::add(const Detections& ref, const Detections& test, double iouThreshold) {
  ref_ += static_cast<int64_t>(ref.size());
  test_ += static_cast<int64_t>(test.size());
  matched_ += matchDetections(ref, test, iouThreshold);
}

void RelativeErrorAccumulator::add(std::span<const float> ref, std::span<const float> test) {
  WH_CHECK(ref.size() == test.size(), "RelativeErrorAccumulator::add: lengths differ");
  for (size_t i = 0; i < ref.size(); ++i) {
    double r = ref[i];
    double t = test[i];
    if (!std::isfinite(r)) continue;
    if (!std::isfinite(t)) {
      overflow_ = true;
      continue;
    }
    maxRef_ = std::max(maxRef_, std::fabs(r));
    maxDiff_ = std::max(maxDiff_, std::fabs(t - r));
  }
  count_ += static_cast<int64_t>(ref.size());
}

double RelativeErrorAccumulator::value() const {
  if (overflow_) return std::numeric_limits<double>::infinity();
  return maxDiff_ / std::max(maxRef_, 1e-12);
}

double relativeError(const ir::Tensor& reference, const ir::Tensor& test) {
  if (reference.numel() != test.numel()) return std::numeric_limits<double>::infinity();
  RelativeErrorAccumulator acc;
  acc.add(floatValues(reference), floatValues(test));
  return acc.value();
}

std::vector<int64_t> topK(std::span<const float> scores, int k) {
  std::vector<int64_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  size_t n = std::min(idx.size(), static_cast<size_t>(std::max(k, 0)));
  auto greater = [&](int64_t a, int64_t b) {
    float sa = scores[a], sb = scores[b];
    // NaN sorts last so that it never wins.
    if (std::isnan(sa) != std::isnan(sb)) return std::isnan(sb);
    return sa > sb || (sa == sb && a < b);
  };
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n), idx.end(), greater);
  idx.resize(n);
  return idx;
}

void ClassificationAccumulator::add(std::span<const float> original, std::span<const float> optimized, int64_t label) {
  std::vector<int64_t> a = topK(original, 5);
  std::vector<int64_t> b = topK(optimized, 5);
  ++samples_;
  if (!optimized.empty()) {
    ++pairs_;
    if (!a.empty() && !b.empty() && a[0] == b[0]) ++agree_;
  }
  if (label < 0) return;
  ++labelled_;
  if (!a.empty() && a[0] == label) ++top1Orig_;
  if (!b.empty() && b[0] == label) ++top1Opt_;
  if (std::find(a.begin(), a.end(), label) != a.end()) ++top5Orig_;
  if (std::find(b.begin(), b.end(), label) != b.end()) ++top5Opt_;
}

namespace {
double fraction(int64_t n, int64_t d) {
  return d > 0 ? static_cast<double>(n) / static_cast<double>(d) : 0.0;
}
}  // namespace

double ClassificationAccumulator::agreement() const {
  return fraction(agree_, pairs_);
}
double ClassificationAccumulator::top1Original() const {
  return fraction(top1Orig_, labelled_);
}
double ClassificationAccumulator::top5Original() const {
  return fraction(top5Orig_, labelled_);
}
double ClassificationAccumulator::top1Optimized() const {
  return fraction(top1Opt_, labelled_);
}
double ClassificationAccumulator::top5Optimized() const {
  return fraction(top5Opt_, labelled_);
}

bool PerplexityAccumulator::add(std::span<const float> logits, std::span<const int64_t> tokens, int64_t batch,
                                int64_t seq, int64_t vocab) {
  if (static_cast<int64_t>(logits.size()) < batch * seq * vocab || static_cast<int64_t>(tokens.size()) < batch * seq) return false;
  for (int64_t i = 0; i < batch * seq; ++i) {
    if (tokens[static_cast<size_t>(i)] < 0 || tokens[static_cast<size_t>(i)] >= vocab) return false;
  }
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t + 1 < seq; ++t) {
      const float* row = logits.data() + (b * seq + t) * vocab;
      double maxv = -std::numeric_limits<double>::infinity();
      for (int64_t v = 0; v < vocab; ++v) maxv = std::max(maxv, static_cast<double>(row[v]));
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - maxv);
      const int64_t next = tokens[static_cast<size_t>(b * seq + t + 1)];
      nll_ += maxv + std::log(sum) - static_cast<double>(row[next]);
      ++count_;
    }
  }
  return true;
}

double PerplexityAccumulator::perplexity() const { return count_ > 0 ? std::exp(meanNll()) : 0.0; }

}  // namespace whittle::eval
