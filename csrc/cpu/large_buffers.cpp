#include "large_buffers.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastlstm::cpu {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;
// Below this a buffer comes from malloc's already-faulted heap.
constexpr size_t kMinLargeBytes = size_t(256) << 10;
// From this size on a block asks for 2 MB pages.
constexpr size_t kMinHugeBytes = size_t(8) << 20;
// The pool keeps at most this many bytes of freed blocks, in this many.
constexpr size_t kMostPooledBytes = size_t(512) << 20;
constexpr size_t kMostPooledBlocks = 16;

struct Block {
  void* data;
  size_t bytes;
};

class BlockPool {
 public:
  // A pooled block of at least `bytes` and at most a quarter more, or null.
  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t best = blocks_.size();
    for (size_t i = 0; i < blocks_.size(); ++i) {
      const size_t have = blocks_[i].bytes;
      if (have >= bytes && have <= bytes + bytes / 4 &&
          (best == blocks_.size() || have < blocks_[best].bytes)) {
        best = i;
      }
    }
    if (best == blocks_.size()) return nullptr;
    void* data = blocks_[best].data;
    pooled_bytes_ -= blocks_[best].bytes;
    blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(best));
    return data;
  }

  // Keeps a freed block, dropping the oldest ones beyond the bounds.
  void give(Block block) {
    std::vector<Block> dropped;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks_.push_back(block);
      pooled_bytes_ += block.bytes;
      while (pooled_bytes_ > kMostPooledBytes || blocks_.size() > kMostPooledBlocks) {
        dropped.push_back(blocks_.front());
        pooled_bytes_ -= blocks_.front().bytes;
        blocks_.erase(blocks_.begin());
      }
    }
    for (const Block& b : dropped) std::free(b.data);
  }

 private:
  std::mutex mutex_;
  std::vector<Block> blocks_;
  size_t pooled_bytes_ = 0;
};

BlockPool& pool() {
  static BlockPool* blocks = new BlockPool();  // never destroyed: tensors may outlive exit
  return *blocks;
}

// Rounded to whole pages (2 MB ones from kMinHugeBytes on).
size_t block_bytes(size_t bytes) {
  const size_t page = bytes >= kMinHugeBytes ? kHugePage : size_t(4096);
  return (bytes + page - 1) / page * page;
}

void* fresh_block(size_t bytes) {
  const bool huge = bytes >= kMinHugeBytes;
  void* data = std::aligned_alloc(huge ? kHugePage : size_t(4096), bytes);
  TORCH_CHECK(data != nullptr, "fastlstm: out of memory allocating ", bytes, " bytes");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Advice only: a kernel without THP refuses it and the buffer works as before.
  if (huge) madvise(data, bytes, MADV_HUGEPAGE);
#endif
  return data;
}

}  // namespace

at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) *
                       c10::elementSize(c10::typeMetaToScalarType(options.dtype()));
  if (bytes < kMinLargeBytes || options.device().type() != c10::DeviceType::CPU) {
    return at::empty(sizes, options);
  }
  const size_t rounded = block_bytes(bytes);
  void* data = pool().take(rounded);
  if (data == nullptr) data = fresh_block(rounded);
  return at::from_blob(data, sizes, [rounded](void* p) { pool().give({p, rounded}); }, options);
}

}  // namespace fastlstm::cpu
