// Accumulation type of a storage type: float for float (and, in part 2, for
// half and bfloat16), double for double.
#pragma once

namespace fastlstm {

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
