// The CPU SIMT emulator's stand-in for CUDA's mma.h: the warp matrix
// functions of nvcuda::wmma for the shapes 16x16x16, 32x8x16 and 8x32x16
// (m x n x k) with __half or __nv_bfloat16 multiplicands, and 16x16x8 with
// precision::tf32 ones (float in memory and in x[]; __float_to_tf32 rounds
// to TF32's 10-bit mantissa, and mma_sync, like the hardware, ignores the
// low 13 bits of a value that was not rounded), float accumulators.
//
// On the GPU each lane holds an unspecified share of a tile. Here every lane
// holds all of it (num_elements is the tile's size, x[r * cols + c] holds
// element (r, c)), so that the elementwise loops over x[] that CUDA allows
// stay correct; kernels cannot tell, as long as they treat x[] the same way
// in every lane. load_matrix_sync, store_matrix_sync and mma_sync are warp
// operations (cuda_sim.h): every lane of a full warp must call them with the
// same arguments, they run once when the last lane arrives, and raise
// SimError instead of doing what would be undefined on the GPU:
//   - a lane that never arrives (deadlock), a partial warp, lanes that pass
//     different pointers, ldm or layouts, or hold different fragments;
//   - a pointer that is null or not 32-byte (256-bit) aligned, an ldm that
//     is not a multiple of 16 bytes (8 __half or __nv_bfloat16, 4 float);
//   - a store whose ldm is less than the length of the tile's lines in
//     memory (its columns for mem_row_major, rows for mem_col_major), which
//     would overlap; loads may overlap lines (ldm 0 repeats the first one).
// mma_sync sums d = a b + c in float, k in increasing order from c; the
// 16-bit products are exact in float. Tensor Cores round differently, so
// results match the GPU's exactly only when every partial sum is exact.
//
// fill_fragment is, as in CUDA, a plain loop in the calling lane. A fragment
// takes the whole tile on the lane's fiber stack (1 KiB for a float
// accumulator), which Options::stack_bytes must hold.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

#include "cuda_sim.h"
#include "cuda_sim_fp16.h"

namespace nvcuda::wmma {

// Tags, declared but never defined, as in CUDA.
namespace precision {
struct tf32;
}
struct matrix_a;
struct matrix_b;
struct accumulator;
struct row_major;
struct col_major;

enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
class fragment;

}  // namespace nvcuda::wmma

namespace fastlstm::sim::wmma_detail {

namespace wmma = ::nvcuda::wmma;

constexpr unsigned kLanes = 32;
constexpr uintptr_t kPointerAlignment = 32;  // bytes: CUDA's 256 bits
constexpr unsigned kLdmAlignment = 16;       // bytes

template <typename T>
constexpr bool is_tf32 = std::is_same_v<T, wmma::precision::tf32>;

// Accumulators (float) come in every shape of their multiplicands.
template <typename T>
constexpr bool supported_shape(int m, int n, int k) {
  const bool tf32_shape = m == 16 && n == 16 && k == 8;
  const bool half_shape =
      k == 16 && ((m == 16 && n == 16) || (m == 32 && n == 8) || (m == 8 && n == 32));
  if constexpr (is_tf32<T>) return tf32_shape;
  if constexpr (std::is_same_v<T, float>) return tf32_shape || half_shape;
  return half_shape;
}

// What x[] holds: float for TF32 multiplicands.
template <typename T>
using StorageOf = std::conditional_t<is_tf32<T>, float, T>;

// The matrix a fragment of `Use` holds: a is m x k, b is k x n, c and d m x n.
template <typename Use, int M, int N, int K>
struct TileShape {
  static constexpr bool known_use = false;
  static constexpr int rows = 0, cols = 0;
};
template <int M, int N, int K>
struct TileShape<wmma::matrix_a, M, N, K> {
  static constexpr bool known_use = true;
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct TileShape<wmma::matrix_b, M, N, K> {
  static constexpr bool known_use = true;
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct TileShape<wmma::accumulator, M, N, K> {
  static constexpr bool known_use = true;
  static constexpr int rows = M, cols = N;
};

template <typename Use, typename T, typename Layout>
constexpr bool supported_types() {
  if constexpr (std::is_same_v<Use, wmma::accumulator>) {
    return std::is_same_v<T, float> && std::is_void_v<Layout>;
  } else {
    return (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16> || is_tf32<T>) &&
           (std::is_same_v<Layout, wmma::row_major> || std::is_same_v<Layout, wmma::col_major>);
  }
}

// What one lane passes to load_matrix_sync or store_matrix_sync.
struct TileAccess {
  void* fragment;      // the lane's x[] (only read by a store)
  const void* memory;  // where the tile is read or written
  unsigned ldm;
  wmma::layout_t layout;
};

// What one lane passes to mma_sync: x[] of each fragment.
struct MmaOperands {
  float* d;
  const void* a;
  const void* b;
  const float* c;
};

template <typename... Parts>
std::string text(const Parts&... parts) {
  std::string out;
  (out.append(parts), ...);
  return out;
}

inline std::string pointer_text(const void* pointer) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIxPTR, uintptr_t(pointer));
  return buffer;
}

inline const char* layout_name(wmma::layout_t layout) {
  return layout == wmma::mem_row_major ? "mem_row_major" : "mem_col_major";
}

inline std::string access_text(const TileAccess& access) {
  return text("(ptr ", pointer_text(access.memory), ", ldm ", std::to_string(access.ldm), ", ",
              layout_name(access.layout), ")");
}

inline const TileAccess& lane_access(void* const lane_args[], unsigned lane) {
  return *static_cast<const TileAccess*>(lane_args[lane]);
}

// On the GPU each lane would use its own arguments for its share of the tile.
inline std::string check_same_arguments(void* const lane_args[]) {
  const TileAccess& first = lane_access(lane_args, 0);
  for (unsigned lane = 1; lane < kLanes; ++lane) {
    const TileAccess& access = lane_access(lane_args, lane);
    if (access.memory != first.memory || access.ldm != first.ldm || access.layout != first.layout)
      return text("lane ", std::to_string(lane), " passes ", access_text(access), " but lane 0 ",
                  access_text(first), ": every lane of the warp must pass the same arguments");
  }
  return {};
}

// What would fault or misbehave on the GPU.
inline std::string check_tile_memory(const TileAccess& access, size_t element_bytes, int rows,
                                     int cols, bool store) {
  if (access.layout != wmma::mem_row_major && access.layout != wmma::mem_col_major)
    return text("layout ", std::to_string(int(access.layout)), " is not a layout_t");
  if (!access.memory) return "the pointer is null";
  if (uintptr_t(access.memory) % kPointerAlignment)
    return text("the pointer ", pointer_text(access.memory),
                " is not 32-byte aligned, as CUDA requires (256 bits)");
  if (access.ldm * element_bytes % kLdmAlignment)
    return text("ldm ", std::to_string(access.ldm), " is not a multiple of ",
                std::to_string(kLdmAlignment / element_bytes), " elements of ",
                std::to_string(element_bytes), " bytes (16 bytes), as CUDA requires");
  const unsigned extent = unsigned(access.layout == wmma::mem_row_major ? cols : rows);
  if (store && access.ldm < extent)
    return text("ldm ", std::to_string(access.ldm), " is less than the ", std::to_string(extent),
                access.layout == wmma::mem_row_major ? " columns" : " rows",
                " of the tile, whose lines would overlap");
  return {};
}

inline size_t memory_offset(const TileAccess& access, int row, int col) {
  return access.layout == wmma::mem_row_major ? size_t(row) * access.ldm + col
                                              : size_t(col) * access.ldm + row;
}

// "" when every lane's tile equals lane 0's bit for bit (`which` names the
// operand: " a", or "" for the only one); lanes that treated x[] differently
// would hold a mix of tiles on the GPU.
template <typename Element>
std::string check_same_tiles(const Element* const tiles[], int rows, int cols, const char* which) {
  const size_t count = size_t(rows) * cols;
  for (unsigned lane = 1; lane < kLanes; ++lane) {
    if (std::memcmp(tiles[lane], tiles[0], count * sizeof(Element)) == 0) continue;
    size_t i = 0;
    while (std::memcmp(&tiles[lane][i], &tiles[0][i], sizeof(Element)) == 0) ++i;
    return text("lane ", std::to_string(lane), "'s fragment", which,
                " differs from lane 0's at element (", std::to_string(i / cols), ",",
                std::to_string(i % cols),
                "): the emulator keeps the whole tile in every lane, so x[] must be changed the "
                "same way in every lane (which elements a lane holds is unspecified on the GPU)");
  }
  return {};
}

template <typename Fragment>
struct FragmentTraits;
template <typename Use, int M, int N, int K, typename T, typename Layout>
struct FragmentTraits<wmma::fragment<Use, M, N, K, T, Layout>> {
  using Element = StorageOf<T>;
  static constexpr int rows = TileShape<Use, M, N, K>::rows, cols = TileShape<Use, M, N, K>::cols;
};

template <typename Fragment>
std::string load_tile(void* const lane_args[]) {
  using Traits = FragmentTraits<Fragment>;
  using Element = typename Traits::Element;
  std::string error = check_same_arguments(lane_args);
  const TileAccess& access = lane_access(lane_args, 0);
  if (error.empty())
    error = check_tile_memory(access, sizeof(Element), Traits::rows, Traits::cols, false);
  if (!error.empty()) return error;
  Element* tile = static_cast<Element*>(access.fragment);
  const Element* memory = static_cast<const Element*>(access.memory);
  for (int r = 0; r < Traits::rows; ++r)
    for (int c = 0; c < Traits::cols; ++c)
      tile[r * Traits::cols + c] = memory[memory_offset(access, r, c)];
  for (unsigned lane = 1; lane < kLanes; ++lane) {
    void* copy = lane_access(lane_args, lane).fragment;
    if (copy != tile) std::memcpy(copy, tile, sizeof(Element) * Traits::rows * Traits::cols);
  }
  return {};
}

template <typename Fragment>
std::string store_tile(void* const lane_args[]) {
  using Traits = FragmentTraits<Fragment>;
  using Element = typename Traits::Element;
  std::string error = check_same_arguments(lane_args);
  const TileAccess& access = lane_access(lane_args, 0);
  if (error.empty())
    error = check_tile_memory(access, sizeof(Element), Traits::rows, Traits::cols, true);
  const Element* tiles[kLanes];
  for (unsigned lane = 0; lane < kLanes; ++lane)
    tiles[lane] = static_cast<const Element*>(lane_access(lane_args, lane).fragment);
  if (error.empty()) error = check_same_tiles(tiles, Traits::rows, Traits::cols, "");
  if (!error.empty()) return error;
  Element* memory = static_cast<Element*>(const_cast<void*>(access.memory));
  for (int r = 0; r < Traits::rows; ++r)
    for (int c = 0; c < Traits::cols; ++c)
      memory[memory_offset(access, r, c)] = tiles[0][r * Traits::cols + c];
  return {};
}

inline float to_float(__half value) { return __half2float(value); }
inline float to_float(__nv_bfloat16 value) { return __bfloat162float(value); }
// A TF32 multiplicand: the Tensor Cores read the sign, exponent and the top
// 10 bits of the mantissa.
inline float to_float(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  bits &= ~uint32_t{0x1fff};
  std::memcpy(&value, &bits, sizeof bits);
  return value;
}

// Every lane's x[] of one operand.
template <typename Element, typename Member>
void gather_tiles(void* const lane_args[], Member member, const Element* tiles[]) {
  for (unsigned lane = 0; lane < kLanes; ++lane)
    tiles[lane] =
        static_cast<const Element*>(static_cast<const MmaOperands*>(lane_args[lane])->*member);
}

template <typename A, typename B, typename Accumulator>
std::string multiply_accumulate(void* const lane_args[]) {
  using TraitsA = FragmentTraits<A>;
  using TraitsB = FragmentTraits<B>;
  using Input = typename TraitsA::Element;
  constexpr int m = TraitsA::rows, k = TraitsA::cols, n = TraitsB::cols;
  const Input *a[kLanes], *b[kLanes];
  const float* c[kLanes];
  gather_tiles(lane_args, &MmaOperands::a, a);
  gather_tiles(lane_args, &MmaOperands::b, b);
  gather_tiles(lane_args, &MmaOperands::c, c);
  std::string error = check_same_tiles(a, m, k, " a");
  if (error.empty()) error = check_same_tiles(b, k, n, " b");
  if (error.empty()) error = check_same_tiles(c, m, n, " c");
  if (!error.empty()) return error;
  float a_values[m][k], b_values[k][n], d[m][n];
  for (int r = 0; r < m; ++r)
    for (int i = 0; i < k; ++i) a_values[r][i] = to_float(a[0][r * k + i]);
  for (int i = 0; i < k; ++i)
    for (int col = 0; col < n; ++col) b_values[i][col] = to_float(b[0][i * n + col]);
  // A row of d at a time, so that the compiler vectorizes over its columns;
  // each element still sums k in increasing order, from c.
  for (int r = 0; r < m; ++r) {
    for (int col = 0; col < n; ++col) d[r][col] = c[0][r * n + col];
    for (int i = 0; i < k; ++i)
      for (int col = 0; col < n; ++col) d[r][col] += a_values[r][i] * b_values[i][col];
  }
  // Only now: d may be c.
  for (unsigned lane = 0; lane < kLanes; ++lane)
    std::memcpy(static_cast<const MmaOperands*>(lane_args[lane])->d, d, sizeof d);
  return {};
}

// One per fragment type, so that lanes calling with different types are
// reported as different calls.
template <typename Fragment>
inline constexpr detail::WarpOperation kLoad{"wmma::load_matrix_sync", &load_tile<Fragment>};
template <typename Fragment>
inline constexpr detail::WarpOperation kStore{"wmma::store_matrix_sync", &store_tile<Fragment>};
template <typename A, typename B, typename Accumulator>
inline constexpr detail::WarpOperation kMma{"wmma::mma_sync",
                                            &multiply_accumulate<A, B, Accumulator>};

}  // namespace fastlstm::sim::wmma_detail

namespace nvcuda::wmma {

template <typename Use, int M, int N, int K, typename T, typename Layout>
class fragment {
  using Shape = ::fastlstm::sim::wmma_detail::TileShape<Use, M, N, K>;
  static_assert(Shape::known_use, "wmma::fragment: Use is matrix_a, matrix_b or accumulator");
  static_assert(::fastlstm::sim::wmma_detail::supported_shape<T>(M, N, K),
                "wmma::fragment: the emulator supports m x n x k = 16x16x16, 32x8x16, 8x32x16 "
                "(16-bit types) and 16x16x8 (precision::tf32)");
  static_assert(::fastlstm::sim::wmma_detail::supported_types<Use, T, Layout>(),
                "wmma::fragment: the emulator supports __half, __nv_bfloat16 or precision::tf32 "
                "matrix_a and matrix_b with row_major or col_major, and float accumulators "
                "without a layout");

 public:
  enum { num_elements = Shape::rows * Shape::cols, num_storage_elements = num_elements };
  using element_type = ::fastlstm::sim::wmma_detail::StorageOf<T>;
  using storage_element_type = element_type;
  storage_element_type x[num_elements];
};

// Round to nearest (ties away from zero) to TF32's 10-bit mantissa, as
// cvt.rna.tf32.f32 does; infinities and NaN pass unchanged.
inline float __float_to_tf32(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & ~uint32_t{0x1fff};
  std::memcpy(&value, &bits, sizeof bits);
  return value;
}

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f,
                          const typename fragment<Use, M, N, K, T, Layout>::element_type& value) {
  for (auto& element : f.x) element = value;
}

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f,
                             const typename fragment<Use, M, N, K, T, Layout>::element_type* ptr,
                             unsigned ldm, FASTLSTM_SIM_CALL_SITE) {
  static_assert(!std::is_same_v<Use, accumulator>,
                "wmma::load_matrix_sync of an accumulator takes a layout_t");
  using namespace ::fastlstm::sim;
  wmma_detail::TileAccess access{f.x, ptr, ldm,
                                 std::is_same_v<Layout, row_major> ? mem_row_major : mem_col_major};
  detail::warp_operation(wmma_detail::kLoad<fragment<Use, M, N, K, T, Layout>>, &access,
                         FASTLSTM_SIM_WHERE);
}

template <int M, int N, int K>
inline void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* ptr,
                             unsigned ldm, layout_t layout, FASTLSTM_SIM_CALL_SITE) {
  using namespace ::fastlstm::sim;
  wmma_detail::TileAccess access{f.x, ptr, ldm, layout};
  detail::warp_operation(wmma_detail::kLoad<fragment<accumulator, M, N, K, float>>, &access,
                         FASTLSTM_SIM_WHERE);
}

template <int M, int N, int K>
inline void store_matrix_sync(float* ptr, const fragment<accumulator, M, N, K, float>& f,
                              unsigned ldm, layout_t layout, FASTLSTM_SIM_CALL_SITE) {
  using namespace ::fastlstm::sim;
  wmma_detail::TileAccess access{const_cast<float*>(f.x), ptr, ldm, layout};
  detail::warp_operation(wmma_detail::kStore<fragment<accumulator, M, N, K, float>>, &access,
                         FASTLSTM_SIM_WHERE);
}

template <int M, int N, int K, typename T, typename LayoutA, typename LayoutB>
inline void mma_sync(fragment<accumulator, M, N, K, float>& d,
                     const fragment<matrix_a, M, N, K, T, LayoutA>& a,
                     const fragment<matrix_b, M, N, K, T, LayoutB>& b,
                     const fragment<accumulator, M, N, K, float>& c, FASTLSTM_SIM_CALL_SITE) {
  using namespace ::fastlstm::sim;
  using Accumulator = fragment<accumulator, M, N, K, float>;
  wmma_detail::MmaOperands operands{d.x, a.x, b.x, c.x};
  detail::warp_operation(wmma_detail::kMma<fragment<matrix_a, M, N, K, T, LayoutA>,
                                           fragment<matrix_b, M, N, K, T, LayoutB>, Accumulator>,
                         &operands, FASTLSTM_SIM_WHERE);
}

}  // namespace nvcuda::wmma
