// Compiled kernels on disk, one file per key, safe to share between
// processes: a file is written under a temporary name and renamed into
// place, so a reader sees a whole file or none; a file whose stored key
// differs (a hash collision, another version) counts as a miss.
#pragma once

#include <optional>
#include <string>

#include "kernel_program.h"

namespace fastlstm::nvrtc {

// A digest of gate_math.h and every file of kernels/ under source_dir.
std::string sources_digest(const std::string& source_dir);

class CubinCache {
 public:
  explicit CubinCache(std::string folder) : folder_(std::move(folder)) {}
  std::optional<CompiledKernels> load(const std::string& key) const;
  // Best effort: a cache that cannot be written costs a compile next time.
  void store(const std::string& key, const CompiledKernels& kernels) const;

 private:
  std::string path_of(const std::string& key) const;
  std::string folder_;
};

}  // namespace fastlstm::nvrtc
