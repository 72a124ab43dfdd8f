// What the fake driver (fake_driver.cpp) saw.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nvrtc/cuda_driver.h"

namespace fastlstm::nvrtc {

struct FakeLaunch {
  std::string function;  // lowered name
  unsigned grid_x, grid_y, threads, shared;
  bool cooperative;
  uintptr_t stream;
  const void* params;
};

struct FakeDriverLog {
  int modules = 0;
  int context_sets = 0;
  std::vector<std::string> functions;          // looked up, in order
  std::map<std::string, int> shared_limits;    // raised dynamic shared memory
  std::vector<FakeLaunch> launches;            // since the last take
};

FakeDriverLog take_fake_driver_log();
// Off: launches only check their arguments (for timing the host side).
void record_fake_launches(bool on);

}  // namespace fastlstm::nvrtc
