// Orthogonal rotations (include/whittle/quant/rotation.h).
#include "whittle/quant/rotation.h"

#include <Eigen/Dense>
#include <cmath>
#include <numbers>
#include <random>

namespace whittle::quant {
namespace {

bool isPrime(int64_t n) {
  if (n < 2) return false;
  for (int64_t f = 2; f * f <= n; ++f) {
    if (n % f == 0) return false;
  }
  return true;
}

// d = 2^a * m with m = 1 or m = q + 1 (q prime, q % 4 == 3): returns m, 0 when none.
int64_t paleyOrder(int64_t d) {
  if (d < 1) return 0;
  for (int64_t m = d; m >= 1; m /= 2) {
    if (m == 1 || (isPrime(m - 1) && (m - 1) % 4 == 3)) return m;
    if (m % 2 != 0) break;
  }
  return 0;
}

// Paley construction I: order q + 1, entries +-1, H H^T = (q + 1) I.
Eigen::MatrixXd paley(int64_t q) {
  std::vector<int> chi(static_cast<size_t>(q), -1);
  chi[0] = 0;
  for (int64_t x = 1; x < q; ++x) chi[static_cast<size_t>((x * x) % q)] = 1;
  const int64_t n = q + 1;
  Eigen::MatrixXd h(n, n);
  h(0, 0) = 1;
  for (int64_t j = 1; j < n; ++j) {
    h(0, j) = 1;
    h(j, 0) = -1;
  }
  for (int64_t i = 1; i < n; ++i) {
    for (int64_t j = 1; j < n; ++j) {
      h(i, j) = chi[static_cast<size_t>(((j - i) % q + q) % q)] + (i == j ? 1 : 0);
    }
  }
  return h;
}

Eigen::MatrixXd kron(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  Eigen::MatrixXd r(a.rows() * b.rows(), a.cols() * b.cols());
  for (Eigen::Index i = 0; i < a.rows(); ++i) {
    for (Eigen::Index j = 0; j < a.cols(); ++j) r.block(i * b.rows(), j * b.cols(), b.rows(), b.cols()) = a(i, j) * b;
  }
  return r;
}

// Uniform in (0, 1) from 53 bits of a 64-bit Mersenne Twister (specified output on every platform).
double uniform(std::mt19937_64& g) { return (static_cast<double>(g() >> 11) + 0.5) * 0x1.0p-53; }

std::vector<double> rowMajor(const Eigen::MatrixXd& m) {
  std::vector<double> out(static_cast<size_t>(m.size()));
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    for (Eigen::Index j = 0; j < m.cols(); ++j) out[static_cast<size_t>(i * m.cols() + j)] = m(i, j);
  }
  return out;
}

}  // namespace

bool hasHadamard(int64_t d) { return paleyOrder(d) != 0; }

Expected<std::vector<double>> orthogonalRotation(int64_t d, const std::string& kind, uint64_t seed) {
  if (d < 1) return invalidInput("rotation: the order must be positive, got " + std::to_string(d));
  std::mt19937_64 gen(seed);
  if (kind == "hadamard") {
    const int64_t m = paleyOrder(d);
    if (m == 0) {
      return invalidInput("rotation: no Hadamard matrix of order " + std::to_string(d) +
                          " from the Sylvester x Paley construction (2^a (q + 1), q prime, q % 4 == 3); use rotation=random");
    }
    Eigen::MatrixXd h = m == 1 ? Eigen::MatrixXd::Ones(1, 1) : paley(m - 1);
    const Eigen::MatrixXd h2{{1, 1}, {1, -1}};
    for (int64_t n = m; n < d; n *= 2) h = kron(h2, h);
    h /= std::sqrt(static_cast<double>(d));
    for (int64_t i = 0; i < d; ++i) {
      if (uniform(gen) < 0.5) h.row(i) *= -1;
    }
    return rowMajor(h);
  }
  if (kind == "random") {
    Eigen::MatrixXd g(d, d);
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t j = 0; j < d; ++j) {  // Box-Muller
        const double u1 = uniform(gen), u2 = uniform(gen);
        g(i, j) = std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
      }
    }
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
    Eigen::MatrixXd q = qr.householderQ();
    const Eigen::MatrixXd r = qr.matrixQR();
    for (int64_t j = 0; j < d; ++j) {
      if (r(j, j) < 0) q.col(j) *= -1;
    }
    return rowMajor(q);
  }
  return invalidInput("rotation: unknown kind '" + kind + "' (hadamard or random)");
}

}  // namespace whittle::quant

namespace whittle::quant {

namespace {
using RowMajorD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}  // namespace

void rotateColumns(std::vector<float>& w, int64_t rows, int64_t d, const std::vector<double>& q) {
  const Eigen::Map<const RowMajorD> qm(q.data(), d, d);
  Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> wm(w.data(), rows, d);
  const RowMajorD out = wm.cast<double>() * qm;
  wm = out.cast<float>();
}

std::vector<float> rotateReader(const std::vector<float>& r, int64_t d, int64_t n, const std::vector<double>& q,
                                const std::vector<double>& gamma, bool transposed) {
  const Eigen::Map<const RowMajorD> qm(q.data(), d, d);
  const Eigen::Map<const Eigen::VectorXd> g(gamma.data(), d);
  RowMajorD rm(d, n);
  using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  if (transposed) {
    rm = Eigen::Map<const RowMajorF>(r.data(), n, d).cast<double>().transpose();
  } else {
    rm = Eigen::Map<const RowMajorF>(r.data(), d, n).cast<double>();
  }
  const RowMajorD out = qm.transpose() * g.asDiagonal() * rm;
  std::vector<float> result(static_cast<size_t>(d * n));
  Eigen::Map<RowMajorF>(result.data(), d, n) = out.cast<float>();
  return result;
}

}  // namespace whittle::quant
