// Storage types of the kernels and the type each accumulates in. Half and
// bfloat16 storage are plain 16-bit tags here, so that the torch glue and the
// kernel library share parameter structs without either including the
// other's headers; the kernels convert them with CUDA's intrinsics
// (convert.cuh).
#pragma once

namespace fastlstm {

struct half_t {
  unsigned short bits;
};
struct bfloat16_t {
  unsigned short bits;
};

// float for float, half and bfloat16 storage; double for double.
template <typename T>
struct Accumulate {
  using type = float;
};
template <>
struct Accumulate<double> {
  using type = double;
};
template <typename T>
using acc_t = typename Accumulate<T>::type;

}  // namespace fastlstm
