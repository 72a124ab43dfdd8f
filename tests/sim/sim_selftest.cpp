// Runs one self-test of the CPU SIMT emulator in a given scheduling order and
// checks it against the host:
//   sim_selftest CASE [forward|reverse|random] [SEED]
//   sim_selftest bench
// Prints one line; exit status 0: correct result, 1: wrong result, 2: the
// launch raised SimError and the emulator then ran a correct kernel, 3: it
// raised SimError and the next launch failed, 64: bad usage.
// Built and driven by tests/test_sim.py.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sim_kernels.cuh"

namespace {

namespace sim = fastlstm::sim;
using namespace simtest;

// Host-only: an exception escaping a kernel must fail the launch, not the process.
__global__ void throwing_kernel(int* out) {
  if (threadIdx.x == 5) throw std::runtime_error("planted failure");
  __syncthreads();
  out[threadIdx.x] = 1;
}

// Small integers, so that float sums are exact in any order.
float small_value(size_t i) { return float(int(i * 7 % 13) - 6); }

struct Check {
  bool ok = true;
  std::string first_failure;
  void expect(bool condition, const std::string& what) {
    if (!condition && ok) first_failure = what;
    ok = ok && condition;
  }
};

template <bool kAllBarriers>
Check run_block_sum() {
  constexpr int kBlocks = 4, kThreads = 256;
  std::vector<float> in(kBlocks * kThreads), out(kBlocks, -1.0f);
  for (size_t i = 0; i < in.size(); ++i) in[i] = small_value(i);
  sim::launch(dim3(kBlocks), dim3(kThreads), 0, block_sum<kAllBarriers>, in.data(), out.data());
  Check check;
  for (int b = 0; b < kBlocks; ++b) {
    float expected = 0;
    for (int t = 0; t < kThreads; ++t) expected += in[b * kThreads + t];
    check.expect(out[b] == expected, "block " + std::to_string(b) + ": " + std::to_string(out[b]) +
                                         " != " + std::to_string(expected));
  }
  return check;
}

Check run_shuffle_reduction() {
  constexpr unsigned kBlocks = 3, kThreads = 84;  // two full warps and one of 20 lanes
  std::vector<float> f(kBlocks * kThreads);
  std::vector<int> n(f.size());
  std::vector<double> out(8 * f.size(), -1);
  for (size_t i = 0; i < f.size(); ++i) {
    f[i] = small_value(i);
    n[i] = int(i * 31 % 101) - 50;
  }
  sim::launch(dim3(kBlocks), dim3(kThreads), 0, shuffle_reduction, f.data(), n.data(), out.data());
  Check check;
  for (unsigned i = 0; i < f.size(); ++i) {
    const unsigned t = i % kThreads, lane = t % 32, first = i - lane;
    const unsigned lanes = std::min(32u, kThreads - (t - lane));
    auto sum_n = [&](unsigned from, unsigned count) {
      int s = 0;
      for (unsigned l = from; l < from + count; ++l) s += n[first + l];
      return s;
    };
    const double* o = &out[8 * i];
    const std::string at = "thread " + std::to_string(i) + " output ";
    if (lanes == 32) {
      if (lane == 0) {
        float s = 0;
        for (unsigned l = 0; l < 32; ++l) s += f[first + l];
        check.expect(o[0] == s, at + "0 (float __shfl_down_sync sum)");
      }
      check.expect(o[1] == sum_n(0, 32), at + "1 (int __shfl_xor_sync sum)");
      check.expect(o[2] == sum_n(lane & ~7u, 8), at + "2 (width 8 sum)");
      check.expect(o[3] == ((lane & ~7u) | ((lane + 3) & 7)), at + "3 (width 8 rotation)");
      check.expect(o[4] == (lane % 16 + 5 < 16 ? lane + 5 : lane), at + "4 (width 16 down)");
      check.expect(o[5] == (lane % 16 >= 3 ? lane - 3 : lane), at + "5 (width 16 up)");
    } else {
      float scan = 0;
      for (unsigned l = 0; l <= lane; ++l) scan += f[first + l];
      check.expect(o[0] == scan, at + "0 (partial warp __shfl_up_sync scan)");
      check.expect(o[1] == n[first + lanes - 1], at + "1 (partial warp broadcast)");
      check.expect(o[2] == sum_n(lane & ~3u, 4), at + "2 (partial warp width 4 sum)");
    }
    check.expect(o[6] == double(f[first + 1]) * 1e-3 + n[first + 1], at + "6 (double broadcast)");
    check.expect(o[7] == 1, at + "7 (unsigned long long shuffle)");
  }
  return check;
}

Check run_tiled_matmul() {
  constexpr int m = 37, k = 29, n = 53;
  std::vector<float> a(m * k), b(k * n), c(m * n, -1.0f);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(int(i * 5 % 7) - 3);
  for (size_t i = 0; i < b.size(); ++i) b[i] = float(int(i * 3 % 7) - 3);
  const dim3 grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile), block(kTile, kTile);
  sim::launch(grid, block, 0, tiled_matmul, a.data(), b.data(), c.data(), m, n, k);
  Check check;
  for (int r = 0; r < m; ++r)
    for (int col = 0; col < n; ++col) {
      float expected = 0;
      for (int x = 0; x < k; ++x) expected += a[r * k + x] * b[x * n + col];
      check.expect(c[r * n + col] == expected,
                   "C[" + std::to_string(r) + "][" + std::to_string(col) + "]");
    }
  return check;
}

Check run_grid_sync_loop() {
  constexpr unsigned kBlocks = 6, kThreads = 64, kCells = kBlocks * kThreads;
  constexpr int kSteps = 25;  // odd: the result ends in b
  std::vector<unsigned> a(kCells), b(kCells, 0), expected(kCells);
  for (unsigned i = 0; i < kCells; ++i) a[i] = i * 2654435761u;
  expected = a;
  for (int step = 0; step < kSteps; ++step) {
    std::vector<unsigned> next(kCells);
    for (unsigned i = 0; i < kCells; ++i)
      next[i] = expected[(i + kCells - 1) % kCells] + 2 * expected[i] + expected[(i + 1) % kCells];
    expected = next;
  }
  sim::launch_cooperative(dim3(kBlocks), dim3(kThreads), 0, ring_stencil, a.data(), b.data(),
                          kSteps);
  Check check;
  for (unsigned i = 0; i < kCells; ++i)
    check.expect(b[i] == expected[i], "cell " + std::to_string(i));
  return check;
}

// The pipeline of flag_pipeline over 4 blocks of 64 threads, 5 steps, in a
// cooperative launch (or, with cooperative false, a plain one).
Check run_flag_pipeline(simtest::Handoff handoff, bool cooperative = true) {
  constexpr unsigned kBlocks = 4, kThreads = 64, kSteps = 5, kCells = kBlocks * kThreads;
  std::vector<int> values(kSteps * kCells, -1), flags(kBlocks, 0);
  if (cooperative) {
    sim::launch_cooperative(dim3(kBlocks), dim3(kThreads), 0, simtest::flag_pipeline,
                            values.data(), flags.data(), int(kSteps), handoff);
  } else {
    sim::launch(dim3(kBlocks), dim3(kThreads), 0, simtest::flag_pipeline, values.data(),
                flags.data(), int(kSteps), handoff);
  }
  Check check;
  for (unsigned s = 0; s < kSteps; ++s)
    for (unsigned t = 0; t < kThreads; ++t) {
      int expected = int(7 * s + t);
      for (unsigned b = 0; b < kBlocks; ++b) {
        if (b > 0) expected = 3 * expected + 1;
        check.expect(values[s * kCells + b * kThreads + t] == expected,
                     "step " + std::to_string(s) + " block " + std::to_string(b) + " thread " +
                         std::to_string(t));
      }
    }
  return check;
}

Check run_dynamic_shared() {
  constexpr unsigned kBlocks = 3, kThreads = 96;
  std::vector<float> in(kBlocks * kThreads), out(in.size(), -1.0f);
  std::vector<int> poisoned(kBlocks, 0);
  for (size_t i = 0; i < in.size(); ++i) in[i] = small_value(i);
  sim::launch(dim3(kBlocks), dim3(kThreads), (2 * kThreads + 1) * sizeof(float), dynamic_mirror,
              in.data(), out.data(), poisoned.data());
  Check check;
  for (unsigned i = 0; i < in.size(); ++i) {
    const unsigned block = i / kThreads, t = i % kThreads;
    check.expect(out[i] == 3 * in[block * kThreads + kThreads - 1 - t], "out " + std::to_string(i));
  }
  for (unsigned block = 0; block < kBlocks; ++block)
    check.expect(poisoned[block] == 1,
                 "unwritten shared memory of block " + std::to_string(block) + " is not NaN");
  return check;
}

Check run_votes() {
  constexpr unsigned kBlocks = 2, kThreads = 70;  // two full warps and one of 6 lanes
  std::vector<int> in(kBlocks * kThreads);
  std::vector<unsigned> out(4 * in.size(), 12345);
  for (size_t i = 0; i < in.size(); ++i) in[i] = int(i * i % 17);
  for (unsigned i = 64; i < 70; ++i) in[i] = 3 * int(i);  // one all-true warp
  sim::launch(dim3(kBlocks), dim3(kThreads), 0, votes, in.data(), out.data());
  Check check;
  for (unsigned i = 0; i < in.size(); ++i) {
    const unsigned t = i % kThreads, lane = t % 32, first = i - lane;
    const unsigned lanes = std::min(32u, kThreads - (t - lane));
    const unsigned mask = lanes == 32 ? ~0u : (1u << lanes) - 1;
    unsigned ballot = 0;
    for (unsigned l = 0; l < lanes; ++l) ballot |= unsigned(in[first + l] % 3 == 0) << l;
    const std::string at = "thread " + std::to_string(i);
    check.expect(out[4 * i] == ballot, at + " ballot");
    check.expect(out[4 * i + 1] == unsigned(ballot == mask), at + " all");
    check.expect(out[4 * i + 2] == unsigned(ballot != 0), at + " any");
    check.expect(out[4 * i + 3] == mask, at + " activemask");
  }
  return check;
}

Check run_exited_threads_at_barrier() {
  constexpr unsigned kThreads = 96, kLive = 40;
  std::vector<int> in(kThreads), out(kThreads, -1);
  for (unsigned i = 0; i < kThreads; ++i) in[i] = int(i * i);
  sim::launch(1, kThreads, 0, reverse_first_n, in.data(), out.data(), kLive);
  Check check;
  for (unsigned i = 0; i < kThreads; ++i)
    check.expect(out[i] == (i < kLive ? in[kLive - 1 - i] : -1), "out " + std::to_string(i));
  return check;
}

// ---- 16-bit floats ---------------------------------------------------------

// IEEE binary16 and bfloat16 values from their fields, in double: a
// reference that shares no code with the emulator's bit manipulation.
double half_value(uint16_t bits) {
  const int sign = bits >> 15 ? -1 : 1, exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  if (exponent == 0x1f) return mantissa ? NAN : sign * INFINITY;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

double bfloat16_value(uint16_t bits) {
  const int sign = bits >> 15 ? -1 : 1, exponent = (bits >> 7) & 0xff, mantissa = bits & 0x7f;
  if (exponent == 0xff) return mantissa ? NAN : sign * INFINITY;
  if (exponent == 0) return sign * std::ldexp(mantissa, -133);
  return sign * std::ldexp(128 + mantissa, exponent - 134);
}

uint32_t bits_of(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float float_of(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// The finite non-negative values of a 16-bit format, ascending with their
// bit patterns 0 ... largest.
std::vector<double> finite_values(double (*value)(uint16_t), uint16_t largest) {
  std::vector<double> values(largest + 1u);
  for (unsigned bits = 0; bits <= largest; ++bits) values[bits] = value(uint16_t(bits));
  return values;
}

// Round to nearest, ties to even, by comparing distances in double; from
// half an ulp beyond the largest value up, to infinity (the bits after the
// largest), as if the exponent range went on.
uint16_t nearest_even(float x, const std::vector<double>& values) {
  if (std::isnan(x)) return 0x7fff;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0, largest = uint16_t(values.size() - 1);
  const double magnitude = std::fabs(double(x));
  const double top = values[largest], ulp = top - values[largest - 1];
  if (magnitude >= top + ulp / 2) return sign | uint16_t(largest + 1);
  const size_t above = std::upper_bound(values.begin(), values.end(), magnitude) - values.begin();
  const uint16_t low = uint16_t(above - 1);  // the last value at or below magnitude
  if (low == largest || values[low] == magnitude) return sign | low;
  const double down = magnitude - values[low], up = values[low + 1] - magnitude;
  return sign | uint16_t(low + (up < down || (up == down && (low & 1))));
}

// Floats worth converting: around every value of the 16-bit format, the
// halfway points to its neighbours and one float ulp either side of both,
// and many random bit patterns.
std::vector<float> probe_floats(const std::vector<double>& values) {
  std::vector<float> probes;
  for (size_t bits = 0; bits < values.size(); ++bits) {
    const double here = values[bits];
    const double next = bits + 1 < values.size() ? values[bits + 1] : 2 * here - values[bits - 1];
    for (const double point : {here, (here + next) / 2}) {
      const float f = float(point);  // exact: both formats' values and midpoints are floats
      for (const float probe : {f, std::nextafter(f, 0.0f), std::nextafter(f, INFINITY)})
        for (const float signed_probe : {probe, -probe}) probes.push_back(signed_probe);
    }
  }
  std::mt19937 rng(12345);
  for (int i = 0; i < 1 << 20; ++i) probes.push_back(float_of(rng()));
  for (const float special : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1e-45f, 3.4e38f})
    probes.push_back(special);
  return probes;
}

std::string hex_bits(uint32_t bits) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%x", bits);
  return text;
}

Check check_half_conversions() {
  Check check;
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const __half h = __ushort_as_half(uint16_t(bits));
    const float f = __half2float(h);
    const double expected = half_value(uint16_t(bits));
    const std::string at = "half " + hex_bits(bits);
    if (std::isnan(expected)) {
      check.expect(bits_of(f) == 0x7fffffffu, at + " -> the canonical NaN 0x7fffffff");
      check.expect(__half_as_ushort(__float2half(f)) == 0x7fff, at + " NaN round trip");
      continue;
    }
    check.expect(double(f) == expected && std::signbit(f) == bool(bits >> 15),
                 at + " -> float " + std::to_string(f));
    check.expect(__half_as_ushort(__float2half(f)) == bits, at + " round trip");
  }
  const std::vector<double> values = finite_values(half_value, 0x7bff);
  for (const float x : probe_floats(values)) {
    const uint16_t expected = nearest_even(x, values);
    check.expect(__half_as_ushort(__float2half_rn(x)) == expected &&
                     __half_as_ushort(__float2half(x)) == expected,
                 "float " + hex_bits(bits_of(x)) + " -> half, expected " + hex_bits(expected));
  }
  return check;
}

Check check_bfloat16_conversions() {
  Check check;
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const __nv_bfloat16 h = __ushort_as_bfloat16(uint16_t(bits));
    const float f = __bfloat162float(h);
    const double expected = bfloat16_value(uint16_t(bits));
    const std::string at = "bfloat16 " + hex_bits(bits);
    if (std::isnan(expected)) {  // CUDA keeps the payload: the float's upper half
      check.expect(bits_of(f) == bits << 16, at + " -> NaN with the same bits");
      check.expect(__bfloat16_as_ushort(__float2bfloat16(f)) == 0x7fff, at + " NaN round trip");
      continue;
    }
    check.expect(double(f) == expected && std::signbit(f) == bool(bits >> 15),
                 at + " -> float " + std::to_string(f));
    check.expect(__bfloat16_as_ushort(__float2bfloat16(f)) == bits, at + " round trip");
  }
  const std::vector<double> values = finite_values(bfloat16_value, 0x7f7f);
  for (const float x : probe_floats(values)) {
    const uint16_t expected = nearest_even(x, values);
    check.expect(__bfloat16_as_ushort(__float2bfloat16_rn(x)) == expected &&
                     __bfloat16_as_ushort(__float2bfloat16(x)) == expected,
                 "float " + hex_bits(bits_of(x)) + " -> bfloat16, expected " + hex_bits(expected));
  }
  return check;
}

// The conversions on the host, exhaustively where that is cheap, and once
// from a kernel.
Check run_16_bit_conversions() {
  Check check = check_half_conversions();
  const Check bfloat16 = check_bfloat16_conversions();
  check.expect(bfloat16.ok, bfloat16.first_failure);
  const __half zero_half{};
  const __nv_bfloat16 zero_bfloat16{};
  check.expect(__half_as_ushort(zero_half) == 0 && __bfloat16_as_ushort(zero_bfloat16) == 0,
               "value-initialised 16-bit floats are +0");
  constexpr unsigned kValues = 64;
  std::vector<float> in(kValues), via_half(kValues), via_bfloat16(kValues);
  for (unsigned i = 0; i < kValues; ++i) in[i] = std::ldexp(float(i) - 31.7f, int(i % 9) - 4);
  sim::launch(2, kValues / 2, 0, round_trip_16_bit, in.data(), via_half.data(),
              via_bfloat16.data());
  for (unsigned i = 0; i < kValues; ++i) {
    check.expect(bits_of(via_half[i]) == bits_of(__half2float(__float2half_rn(in[i]))),
                 "kernel half round trip " + std::to_string(i));
    check.expect(bits_of(via_bfloat16[i]) == bits_of(__bfloat162float(__float2bfloat16_rn(in[i]))),
                 "kernel bfloat16 round trip " + std::to_string(i));
  }
  return check;
}

// ---- WMMA -------------------------------------------------------------------

// WMMA tiles must be 32-byte aligned, more than std::vector promises.
template <typename T>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t count)
      : count_(count), storage_(new Block[count * sizeof(T) / sizeof(Block) + 1]) {}
  T* data() { return reinterpret_cast<T*>(storage_.get()); }
  T& operator[](size_t i) { return data()[i]; }
  size_t size() const { return count_; }

 private:
  struct alignas(32) Block {
    unsigned char bytes[32];
  };
  size_t count_;
  std::unique_ptr<Block[]> storage_;
};

float to_float(__half x) { return __half2float(x); }
float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
T from_float(float x);
template <>
__half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// A matrix product's inputs as the kernels read them, and references.
template <typename T>
struct MatmulProblem {
  static constexpr int m = 48, n = 32, k = 64;  // 3 x 2 output tiles, 4 steps of k
  std::vector<float> a, b, c;                   // row-major, after rounding to T
  // Small integers, whose sums are exact in any order; else fractions.
  explicit MatmulProblem(bool integers) : a(m * k), b(k * n), c(m * n) {
    std::mt19937 rng(integers ? 7 : 8);
    std::uniform_real_distribution<float> fraction(-1.0f, 1.0f);
    auto value = [&] { return integers ? float(int(rng() % 7) - 3) : fraction(rng); };
    for (float& x : a) x = to_float(from_float<T>(value()));
    for (float& x : b) x = to_float(from_float<T>(value()));
    for (float& x : c) x = integers ? float(int(rng() % 21) - 10) : fraction(rng);
  }
  // `row_major`: element (r, col) of the rows x cols matrix at r * cols + col;
  // else at col * rows + r.
  static AlignedBuffer<T> stored(const std::vector<float>& matrix, int rows, int cols,
                                 bool row_major) {
    AlignedBuffer<T> out(matrix.size());
    for (int r = 0; r < rows; ++r)
      for (int col = 0; col < cols; ++col)
        out[row_major ? r * cols + col : col * rows + r] = from_float<T>(matrix[r * cols + col]);
    return out;
  }
  // The emulator's order: from c, k ascending, in float.
  float emulated(int r, int col, bool with_c) const {
    float sum = with_c ? c[r * n + col] : 0.0f;
    for (int i = 0; i < k; ++i) sum += a[r * k + i] * b[i * n + col];
    return sum;
  }
  // Any order's result is within this of the exact one.
  double exact(int r, int col, bool with_c, double* bound) const {
    double sum = with_c ? c[r * n + col] : 0.0, magnitude = std::fabs(sum);
    for (int i = 0; i < k; ++i) {
      sum += double(a[r * k + i]) * b[i * n + col];
      magnitude += std::fabs(double(a[r * k + i]) * b[i * n + col]);
    }
    *bound = (k + 1) * 0x1p-24 * magnitude;
    return sum;
  }
};

// d == scale (A B [+ C]): exactly as the emulator sums, and within float
// rounding of the exact product, as any GPU's would be.
template <typename T>
void expect_product(Check& check, const MatmulProblem<T>& problem, const float* d, float scale,
                    bool with_c, const std::string& what) {
  for (int r = 0; r < problem.m; ++r)
    for (int col = 0; col < problem.n; ++col) {
      const float got = d[r * problem.n + col];
      double bound;
      const double exact = scale * problem.exact(r, col, with_c, &bound);
      const std::string at = what + " D[" + std::to_string(r) + "][" + std::to_string(col) +
                             "] = " + std::to_string(got);
      check.expect(got == scale * problem.emulated(r, col, with_c),
                   at + ": not the emulator's sum");
      check.expect(std::fabs(got - exact) <= scale * bound,
                   at + ": far from " + std::to_string(exact));
    }
}

template <typename T, typename ALayout, typename BLayout>
void check_wmma_matmul(Check& check, const MatmulProblem<T>& problem, const std::string& what) {
  constexpr int m = MatmulProblem<T>::m, n = MatmulProblem<T>::n, k = MatmulProblem<T>::k;
  constexpr bool a_rows = std::is_same_v<ALayout, wmma::row_major>;
  constexpr bool b_rows = std::is_same_v<BLayout, wmma::row_major>;
  AlignedBuffer<T> a = MatmulProblem<T>::stored(problem.a, m, k, a_rows);
  AlignedBuffer<T> b = MatmulProblem<T>::stored(problem.b, k, n, b_rows);
  AlignedBuffer<float> c(m * n), d(m * n);
  std::copy(problem.c.begin(), problem.c.end(), c.data());
  std::fill(d.data(), d.data() + m * n, NAN);
  // 2 blocks of 4 warps for 6 tiles: the last two warps have nothing to do.
  sim::launch(2, 128, 0, wmma_matmul<T, ALayout, BLayout>, a.data(), b.data(), c.data(), d.data(),
              m, n, k);
  expect_product(check, problem, d.data(), 2.0f, true,
                 what + (a_rows ? " A row_major" : " A col_major") +
                     (b_rows ? " B row_major" : " B col_major"));
}

template <typename T>
void check_wmma_matmul_shared(Check& check, const MatmulProblem<T>& problem,
                              const std::string& what) {
  constexpr int m = MatmulProblem<T>::m, n = MatmulProblem<T>::n, k = MatmulProblem<T>::k;
  constexpr int kWarps = 2;
  AlignedBuffer<T> a = MatmulProblem<T>::stored(problem.a, m, k, true);
  AlignedBuffer<T> b = MatmulProblem<T>::stored(problem.b, k, n, false);
  AlignedBuffer<float> d(m * n);
  std::fill(d.data(), d.data() + m * n, NAN);
  sim::launch(dim3(n / (kWmmaTile * kWarps), m / kWmmaTile), 32 * kWarps, 0,
              wmma_matmul_shared<T, kWarps>, a.data(), b.data(), d.data(), n, k);
  expect_product(check, problem, d.data(), 1.0f, false, what + " through shared memory");
}

// Every combination of layouts, on integers and on fractions.
template <typename T>
Check run_wmma_matmul(const char* type_name) {
  Check check;
  for (const bool integers : {true, false}) {
    const MatmulProblem<T> problem(integers);
    const std::string what = std::string(type_name) + (integers ? " integers" : " fractions");
    check_wmma_matmul<T, wmma::row_major, wmma::col_major>(check, problem, what);
    check_wmma_matmul<T, wmma::row_major, wmma::row_major>(check, problem, what);
    check_wmma_matmul<T, wmma::col_major, wmma::row_major>(check, problem, what);
    check_wmma_matmul<T, wmma::col_major, wmma::col_major>(check, problem, what);
    check_wmma_matmul_shared<T>(check, problem, what);
  }
  return check;
}

// One tile of m x n x k, on small integers: exact in any order.
template <int M, int N, int K>
void check_wmma_one_tile(Check& check) {
  AlignedBuffer<__half> a(M * K), b(K * N);
  AlignedBuffer<float> c(M * N), d(M * N);
  for (int i = 0; i < M * K; ++i) a[i] = __float2half(float(i * 5 % 7) - 3);  // row-major
  for (int i = 0; i < K * N; ++i) b[i] = __float2half(float(i * 3 % 5) - 2);  // column-major
  for (int i = 0; i < M * N; ++i) c[i] = float(i % 11) - 5;                   // column-major
  sim::launch(1, 32, 0, wmma_one_tile<M, N, K>, a.data(), b.data(), c.data(), d.data());
  for (int r = 0; r < M; ++r)
    for (int col = 0; col < N; ++col) {
      float expected = c[col * M + r];
      for (int i = 0; i < K; ++i)
        expected += __half2float(a[r * K + i]) * __half2float(b[col * K + i]);
      check.expect(d[r * N + col] == expected, std::to_string(M) + "x" + std::to_string(N) + "x" +
                                                   std::to_string(K) + " D[" + std::to_string(r) +
                                                   "][" + std::to_string(col) + "]");
    }
}

// TF32 on the host: round to nearest, ties away from zero, to a 10-bit
// mantissa (kRound), or the Tensor Cores' truncation of unrounded values.
float tf32(float value, bool round) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  bits = ((round ? bits + 0x1000u : bits) & ~uint32_t{0x1fff});
  std::memcpy(&value, &bits, sizeof bits);
  return value;
}

template <bool kRound>
Check run_wmma_tf32() {
  AlignedBuffer<float> a(16 * 32), b(32 * 16), d(16 * 16);
  for (int i = 0; i < 16 * 32; ++i) a[i] = 1.0f + float(i % 13) / 4097.0f;  // low bits set
  for (int i = 0; i < 32 * 16; ++i) b[i] = float(i % 7) - 3.0f + float(i % 5) / 8193.0f;
  sim::launch(1, 32, 0, wmma_tf32_matmul<kRound>, a.data(), b.data(), d.data());
  Check check;
  for (int r = 0; r < 16; ++r)
    for (int col = 0; col < 16; ++col) {
      float expected = 0;
      for (int k = 0; k < 32; ++k)
        expected += tf32(a[r * 32 + k], kRound) * tf32(b[col * 32 + k], kRound);
      check.expect(d[r * 16 + col] == expected,
                   "D[" + std::to_string(r) + "][" + std::to_string(col) + "]");
    }
  return check;
}

Check run_wmma_shapes() {
  Check check;
  check_wmma_one_tile<16, 16, 16>(check);
  check_wmma_one_tile<32, 8, 16>(check);
  check_wmma_one_tile<8, 32, 16>(check);
  return check;
}

// Misuse: each must raise SimError from the launch.
Check run_misuse(const std::function<void(int*)>& launch) {
  std::vector<int> out(4096, 0);
  launch(out.data());
  Check check;
  check.expect(false, "the launch did not raise SimError");
  return check;
}

// The WMMA misuse kernels' arguments: a 64 x 64 __half matrix, a 16 x 16
// identity and a 64 x 64 float output, all 32-byte aligned.
void run_wmma_misuse(dim3 block, void (*kernel)(const __half*, const __half*, float*)) {
  AlignedBuffer<__half> a(64 * 64), identity(16 * 16);
  AlignedBuffer<float> out(64 * 64);
  for (size_t i = 0; i < a.size(); ++i) a[i] = __float2half(float(i % 64));
  for (size_t i = 0; i < identity.size(); ++i)
    identity[i] = __float2half(i % 17 == 0 ? 1.0f : 0.0f);
  sim::launch(1, block, 0, kernel, a.data(), identity.data(), out.data());
}

Check run_wmma_copy() {
  AlignedBuffer<__half> a(64 * 64), identity(16 * 16);
  AlignedBuffer<float> out(64 * 64);
  for (size_t i = 0; i < a.size(); ++i) a[i] = __float2half(float(i % 64));
  for (size_t i = 0; i < identity.size(); ++i)
    identity[i] = __float2half(i % 17 == 0 ? 1.0f : 0.0f);
  sim::launch(1, 32, 0, wmma_copy, a.data(), identity.data(), out.data());
  Check check;
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c)
      check.expect(out[r * 16 + c] == __half2float(a[(16 + r) * 64 + 16 + c]),
                   "out[" + std::to_string(r) + "][" + std::to_string(c) + "]");
  return check;
}

Check run_wmma_misuse_case(dim3 block, void (*kernel)(const __half*, const __half*, float*)) {
  return run_misuse([&](int*) { run_wmma_misuse(block, kernel); });
}

const std::vector<std::pair<std::string, std::function<Check()>>>& cases() {
  static const std::vector<std::pair<std::string, std::function<Check()>>> all = {
      {"missing_syncthreads", run_block_sum<false>},
      {"with_syncthreads", run_block_sum<true>},
      {"shuffle_reduction", run_shuffle_reduction},
      {"tiled_matmul", run_tiled_matmul},
      {"grid_sync_loop", run_grid_sync_loop},
      {"dynamic_shared", run_dynamic_shared},
      {"ballot_vote", run_votes},
      {"exited_threads_at_barrier", run_exited_threads_at_barrier},
      {"divergent_syncthreads",
       [] { return run_misuse([](int* o) { sim::launch(1, 32, 0, divergent_barrier, o); }); }},
      {"shfl_exited_lane",
       [] {
         return run_misuse([](int* o) { sim::launch(1, 32, 0, shuffle_with_exited_lane, o); });
       }},
      {"grid_sync_noncooperative",
       [] { return run_misuse([](int* o) { sim::launch(2, 32, 0, grid_sync_kernel, o); }); }},
      {"too_many_threads",
       [] { return run_misuse([](int* o) { sim::launch(1, 2048, 0, grid_sync_kernel, o); }); }},
      {"zero_grid",
       [] {
         return run_misuse([](int* o) { sim::launch(dim3(4, 0), 32, 0, grid_sync_kernel, o); });
       }},
      {"mismatched_collectives",
       [] { return run_misuse([](int* o) { sim::launch(1, 32, 0, mismatched_collectives, o); }); }},
      {"shfl_source_outside_mask",
       [] {
         return run_misuse([](int* o) { sim::launch(1, 32, 0, shuffle_source_outside_mask, o); });
       }},
      {"mask_beyond_partial_warp",
       [] {
         return run_misuse([](int* o) { sim::launch(1, 20, 0, mask_beyond_partial_warp, o); });
       }},
      {"cooperative_block_exits",
       [] {
         return run_misuse([](int* o) { sim::launch_cooperative(4, 32, 0, block_leaves_grid, o); });
       }},
      {"kernel_throws",
       [] { return run_misuse([](int* o) { sim::launch(2, 64, 0, throwing_kernel, o); }); }},
      {"16_bit_conversions", run_16_bit_conversions},
      {"flag_pipeline", [] { return run_flag_pipeline(simtest::Handoff::kCorrect); }},
      {"flag_pipeline_fenced_relaxed",
       [] { return run_flag_pipeline(simtest::Handoff::kFencedRelaxed); }},
      {"flag_missing_wait", [] { return run_flag_pipeline(simtest::Handoff::kNoWait); }},
      {"flag_missing_release", [] { return run_flag_pipeline(simtest::Handoff::kRelaxedStore); }},
      {"flag_missing_acquire", [] { return run_flag_pipeline(simtest::Handoff::kRelaxedLoad); }},
      {"flag_never_published",
       [] { return run_flag_pipeline(simtest::Handoff::kNeverPublished); }},
      {"flag_wait_in_plain_launch",
       [] { return run_flag_pipeline(simtest::Handoff::kCorrect, false); }},
      {"wmma_matmul_half", [] { return run_wmma_matmul<__half>("__half"); }},
      {"wmma_matmul_bfloat16", [] { return run_wmma_matmul<__nv_bfloat16>("__nv_bfloat16"); }},
      {"wmma_shapes", run_wmma_shapes},
      {"wmma_tf32_rounded", run_wmma_tf32<true>},
      {"wmma_tf32_truncated", run_wmma_tf32<false>},
      {"wmma_half_warp", [] { return run_wmma_misuse_case(64, wmma_half_warp); }},
      {"wmma_partial_warp", [] { return run_wmma_misuse_case(48, wmma_partial_warp); }},
      {"wmma_misaligned_pointer", [] { return run_wmma_misuse_case(32, wmma_misaligned_pointer); }},
      {"wmma_ldm_not_multiple", [] { return run_wmma_misuse_case(32, wmma_ldm_not_multiple); }},
      {"wmma_lane_dependent_ldm", [] { return run_wmma_misuse_case(32, wmma_lane_dependent_ldm); }},
      {"wmma_lane_dependent_fragment",
       [] { return run_wmma_misuse_case(32, wmma_lane_dependent_fragment); }},
      {"wmma_mixed_with_syncwarp",
       [] { return run_wmma_misuse_case(32, wmma_mixed_with_syncwarp); }},
      {"wmma_overlapping_store", [] { return run_wmma_misuse_case(32, wmma_overlapping_store); }},
      {"wmma_good_copy", [] { return run_wmma_copy(); }},
  };
  return all;
}

double seconds_per_call(int calls, const std::function<void()>& call) {
  call();  // maps the stacks
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) call();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls;
}

int bench() {
  std::vector<float> out(8 * 1024);
  for (unsigned threads : {128u, 256u}) {
    const double launch =
        seconds_per_call(200, [&] { sim::launch(1, threads, 0, ten_barriers, out.data()); });
    // Each thread is resumed 11 times: at the start and after each barrier.
    std::printf(
        "1 block x %u threads, 10 __syncthreads: %.1f us per launch, %.1f ns per fiber switch\n",
        threads, launch * 1e6, launch * 1e9 / (threads * 11.0));
  }
  std::vector<unsigned> a(6 * 64), b(a.size());
  const double cooperative = seconds_per_call(
      50, [&] { sim::launch_cooperative(6, 64, 0, ring_stencil, a.data(), b.data(), 10); });
  std::printf("cooperative 6 blocks x 64 threads, 10 grid syncs: %.1f us per launch\n",
              cooperative * 1e6);
  AlignedBuffer<__half> tile(16 * 16);
  AlignedBuffer<float> products(8 * 16 * 16);
  for (size_t i = 0; i < tile.size(); ++i) tile[i] = __float2half(float(i % 5));
  for (unsigned warps : {1u, 8u}) {
    constexpr int kProducts = 1000;
    const double launch = seconds_per_call(5, [&] {
      sim::launch(1, 32 * warps, 0, wmma_mma_loop, tile.data(), tile.data(), products.data(),
                  kProducts);
    });
    std::printf("WMMA, 1 block x %u warps: %.2f us per 16x16x16 mma_sync per warp\n", warps,
                launch * 1e6 / (kProducts * warps));
  }
  return 0;
}

bool parse_order(const std::string& name, sim::Order* order) {
  static const std::pair<const char*, sim::Order> orders[] = {{"forward", sim::Order::Forward},
                                                              {"reverse", sim::Order::Reverse},
                                                              {"random", sim::Order::Random}};
  for (const auto& [text, value] : orders)
    if (name == text) {
      *order = value;
      return true;
    }
  return false;
}

int usage(const char* program) {
  std::fprintf(stderr, "usage: %s CASE [forward|reverse|random] [SEED] | bench\ncases:", program);
  for (const auto& entry : cases()) std::fprintf(stderr, " %s", entry.first.c_str());
  std::fprintf(stderr, "\n");
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "bench") == 0) return bench();
  sim::Options options;
  if (argc < 2 || argc > 4 || (argc >= 3 && !parse_order(argv[2], &options.order))) {
    return usage(argv[0]);
  }
  if (argc == 4) options.seed = std::strtoull(argv[3], nullptr, 10);
  sim::set_options(options);
  const std::string label = std::string(argv[1]) + " " + (argc >= 3 ? argv[2] : "forward") +
                            " seed=" + std::to_string(options.seed);
  for (const auto& [name, run] : cases()) {
    if (name != argv[1]) continue;
    try {
      const Check check = run();
      std::printf("%s: %s\n", label.c_str(),
                  check.ok ? "correct" : ("wrong: " + check.first_failure).c_str());
      return check.ok ? 0 : 1;
    } catch (const sim::SimError& error) {
      std::printf("%s: SimError: %s\n", label.c_str(), error.what());
      try {  // a failed launch must leave the emulator usable
        const Check after = run_block_sum<true>();
        if (!after.ok) std::printf("the next launch went wrong: %s\n", after.first_failure.c_str());
        return after.ok ? 2 : 3;
      } catch (const sim::SimError& next_error) {
        std::printf("the next launch failed: %s\n", next_error.what());
        return 3;
      }
    }
  }
  std::fprintf(stderr, "unknown case %s\n", argv[1]);
  return usage(argv[0]);
}
