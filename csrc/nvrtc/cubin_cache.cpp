#include "cubin_cache.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

namespace fastlstm::nvrtc {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMagic = "fastlstm-cubin-cache 1";

// FNV-1a, 64 bits: file names and the sources' digest (the full key is
// stored in the file and compared, so a collision is only a miss).
uint64_t fnv1a(const std::string& bytes, uint64_t hash = 0xcbf29ce484222325ull) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::string hex(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

std::string file_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void put(std::ostream& out, const std::string& s) {
  const uint64_t n = s.size();
  out.write(reinterpret_cast<const char*>(&n), sizeof n);
  out.write(s.data(), static_cast<std::streamsize>(n));
}

bool get(std::istream& in, std::string& s) {
  uint64_t n = 0;
  if (!in.read(reinterpret_cast<char*>(&n), sizeof n) || n > (uint64_t{1} << 32)) return false;
  s.resize(n);
  return static_cast<bool>(in.read(s.data(), static_cast<std::streamsize>(n)));
}

}  // namespace

std::string sources_digest(const std::string& source_dir) {
  std::vector<fs::path> files = {fs::path(source_dir) / "gate_math.h"};
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(fs::path(source_dir) / "kernels", error)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  uint64_t hash = fnv1a("");
  for (const fs::path& file : files) {
    hash = fnv1a(file.filename().string() + '\0' + file_text(file) + '\0', hash);
  }
  return hex(hash);
}

std::string CubinCache::path_of(const std::string& key) const {
  return (fs::path(folder_) / (hex(fnv1a(key)) + ".cubin")).string();
}

std::optional<CompiledKernels> CubinCache::load(const std::string& key) const {
  std::ifstream in(path_of(key), std::ios::binary);
  std::string magic, stored_key, count;
  if (!in || !get(in, magic) || magic != kMagic || !get(in, stored_key) || stored_key != key ||
      !get(in, count)) {
    return std::nullopt;
  }
  CompiledKernels k;
  k.lowered.resize(std::stoul(count));
  for (auto& [name, lowered] : k.lowered) {
    if (!get(in, name) || !get(in, lowered)) return std::nullopt;
  }
  if (!get(in, k.log) || !get(in, k.cubin)) return std::nullopt;
  return k;
}

void CubinCache::store(const std::string& key, const CompiledKernels& kernels) const {
  std::error_code error;
  fs::create_directories(folder_, error);
  const std::string path = path_of(key);
  const std::string temporary =
      path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(std::random_device{}());
  {
    std::ofstream out(temporary, std::ios::binary);
    put(out, kMagic);
    put(out, key);
    put(out, std::to_string(kernels.lowered.size()));
    for (const auto& [name, lowered] : kernels.lowered) {
      put(out, name);
      put(out, lowered);
    }
    put(out, kernels.log);
    put(out, kernels.cubin);
    if (!out) {
      fs::remove(temporary, error);
      return;
    }
  }
  fs::rename(temporary, path, error);
  if (error) fs::remove(temporary, error);
}

}  // namespace fastlstm::nvrtc
