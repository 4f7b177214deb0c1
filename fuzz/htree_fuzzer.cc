// Hash-tree directory indexes. The first byte picks the mode:
//  - blocks: the input as a dx_root or dx_node block (1, 2 or 4 KiB, or its
//    own size) for ParseDxRoot, ParseDxNode, DxCountOffset and the dx_tail
//    checksum. A block that parses must satisfy what the parser promises
//    (count within the limit, the limit the block size gives, hashes in
//    order), DxEntries::Find must pick the last entry at or below a hash,
//    the writers must rebuild a block that parses the same, and a checksum
//    just set must verify;
//  - directory: a directory grown through the directory writer (AddEntry,
//    RemoveEntry, ReplaceEntry, SetParent, IsEmpty) on an in-memory device,
//    one transaction per change, so that it turns into an htree and grows
//    index levels, and read back through LookupInDirectory and
//    ListDirectory. Until the input flips bytes of its blocks, every
//    lookup, listing and emptiness answer must agree with a model of the
//    names, and no checksum may fail; after that, any answer but a crash,
//    a hang or an unexpected errno is fine.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/directory.h"
#include "ext4/directory_writer.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"
#include "ext4/format/endian.h"
#include "ext4/format/htree.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"
#include "ext4/transaction.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::DirectoryContext;
using ext4::DirEntry;
using ext4::Transaction;
using ext4::format::Bytes;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

// ---------------------------------------------------------------------------
// Index blocks.

// Hashes worth asking Find about: each entry's, one either side, the ends.
std::vector<uint32_t> ProbeHashes(const format::DxEntries& entries,
                                  uint32_t extra) {
  std::vector<uint32_t> hashes = {0, 1, 0xFFFFFFFFu, extra};
  for (size_t i = 1; i < entries.count(); ++i) {
    const uint32_t h = entries.hash(i);
    hashes.push_back(h);
    hashes.push_back(h - 1);
    hashes.push_back(h + 1);
  }
  return hashes;
}

void CheckEntries(const format::DxEntries& entries, uint32_t count_offset,
                  uint32_t limit, size_t block_size, uint32_t extra_hash) {
  FUZZ_CHECK(entries.count_offset() == count_offset);
  FUZZ_CHECK(entries.limit() == limit);
  FUZZ_CHECK(entries.count() >= 1 && entries.count() <= entries.limit());
  FUZZ_CHECK(count_offset + size_t{limit} * format::kDxEntrySize <= block_size);
  FUZZ_CHECK(entries.hash(0) == 0);
  for (size_t i = 0; i < entries.count(); ++i) {
    FUZZ_CHECK((entries.block(i) & ~format::kDxBlockMask) == 0);
    if (i >= 2) FUZZ_CHECK(entries.hash(i) >= entries.hash(i - 1));
  }
  for (uint32_t h : ProbeHashes(entries, extra_hash)) {
    const size_t at = entries.Find(h);
    FUZZ_CHECK(at < entries.count());
    FUZZ_CHECK(entries.hash(at) <= h);
    if (at + 1 < entries.count()) FUZZ_CHECK(entries.hash(at + 1) > h);
  }
}

bool SameEntries(const format::DxEntries& a, const format::DxEntries& b) {
  if (a.count() != b.count() || a.limit() != b.limit() ||
      a.count_offset() != b.count_offset()) {
    return false;
  }
  for (size_t i = 0; i < a.count(); ++i) {
    if (a.hash(i) != b.hash(i) || a.block(i) != b.block(i)) return false;
  }
  return true;
}

// A checksum set on a copy verifies, and changes nothing else.
void CheckChecksumRoundTrip(Bytes block, uint32_t seed) {
  std::vector<uint8_t> copy(block.begin(), block.end());
  if (!format::SetDxChecksum(copy, seed).ok()) return;
  const uint64_t mismatches = format::ChecksumMismatchesIgnored();
  FUZZ_CHECK(format::VerifyDxChecksum(copy, seed).ok());
  FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
  auto offset = format::DxCountOffset(copy);
  FUZZ_CHECK(offset.ok());
  const uint32_t tail =
      *offset + uint32_t{format::Le16(copy, *offset)} * format::kDxEntrySize;
  for (size_t i = 0; i < copy.size(); ++i) {
    if (i < tail + 4 || i >= tail + 8) FUZZ_CHECK(copy[i] == block[i]);
  }
}

void RunBlock(FuzzInput& in) {
  const uint8_t flags = in.U8();
  const bool csum = flags & 0x01;
  const bool large_dir = flags & 0x02;
  const uint32_t seed = in.U32();
  const uint32_t extra_hash = in.U32();
  Bytes rest = in.Rest();
  std::vector<uint8_t> block;
  switch ((flags >> 2) & 3) {
    case 0:
      block.resize(1024);
      break;
    case 1:
      block.resize(2048);
      break;
    case 2:
      block.resize(4096);
      break;
    case 3:
      block.resize(std::min<size_t>(rest.size(), 1 << 17));
      break;
  }
  std::copy_n(rest.begin(), std::min(rest.size(), block.size()), block.begin());
  const uint32_t bs = static_cast<uint32_t>(block.size());

  (void)format::VerifyDxChecksum(block, seed);
  auto offset = format::DxCountOffset(block);
  if (offset.ok()) {
    FUZZ_CHECK(*offset == format::kDxRootCountOffset ||
               *offset == format::kDxNodeCountOffset);
  }

  auto root = format::ParseDxRoot(block, csum, large_dir);
  if (root.ok()) {
    FUZZ_CHECK(offset.ok() && *offset == format::kDxRootCountOffset);
    FUZZ_CHECK(root->indirect_levels < format::DxMaxLevels(large_dir));
    FUZZ_CHECK((root->unused_flags & 1) == 0);
    CheckEntries(root->entries, format::kDxRootCountOffset,
                 format::DxRootLimit(bs, csum), bs, extra_hash);
    // The writers rebuild a root that parses the same.
    std::vector<uint8_t> rebuilt(bs, 0);
    format::InitDxRoot(rebuilt, root->dot_inode, root->dotdot_inode,
                       root->dot_file_type, root->hash_version,
                       root->indirect_levels, csum);
    for (size_t i = 0; i < root->entries.count(); ++i) {
      format::PutDxEntry(rebuilt, format::kDxRootCountOffset, i,
                         root->entries.hash(i), root->entries.block(i));
    }
    format::PutDxCount(rebuilt, format::kDxRootCountOffset,
                       root->entries.count());
    auto again = format::ParseDxRoot(rebuilt, csum, large_dir);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->dot_inode == root->dot_inode &&
               again->dotdot_inode == root->dotdot_inode &&
               again->dot_file_type == root->dot_file_type &&
               again->hash_version == root->hash_version &&
               again->indirect_levels == root->indirect_levels);
    FUZZ_CHECK(SameEntries(again->entries, root->entries));
    // An index block reads as a directory block holding "." and "..".
    auto linear = format::ParseDirBlock(rebuilt, false);
    FUZZ_CHECK(linear.ok() && linear->size() == 2);
    if (csum) {
      FUZZ_CHECK(format::SetDxChecksum(rebuilt, seed).ok());
      FUZZ_CHECK(format::VerifyDxChecksum(rebuilt, seed).ok());
    }
  }

  auto node = format::ParseDxNode(block, csum);
  if (node.ok()) {
    FUZZ_CHECK(offset.ok() && *offset == format::kDxNodeCountOffset);
    FUZZ_CHECK(!root.ok());
    CheckEntries(*node, format::kDxNodeCountOffset,
                 format::DxNodeLimit(bs, csum), bs, extra_hash);
    std::vector<uint8_t> rebuilt(bs, 0);
    format::InitDxNode(rebuilt, csum);
    for (size_t i = 0; i < node->count(); ++i) {
      format::PutDxEntry(rebuilt, format::kDxNodeCountOffset, i, node->hash(i),
                         node->block(i));
    }
    format::PutDxCount(rebuilt, format::kDxNodeCountOffset, node->count());
    auto again = format::ParseDxNode(rebuilt, csum);
    FUZZ_CHECK(again.ok() && SameEntries(*again, *node));
    auto linear = format::ParseDirBlock(rebuilt, false);
    FUZZ_CHECK(linear.ok() && linear->empty());
    if (csum) {
      FUZZ_CHECK(format::SetDxChecksum(rebuilt, seed).ok());
      FUZZ_CHECK(format::VerifyDxChecksum(rebuilt, seed).ok());
    }
  }
  CheckChecksumRoundTrip(block, seed);
}

// ---------------------------------------------------------------------------
// Directories grown by the writer.

constexpr uint32_t kDirIno = 12;
constexpr uint32_t kParentIno = 2;
constexpr uint32_t kMaxDirBlocks = 600;
constexpr size_t kMaxOps = 32;
constexpr size_t kMaxInitialNames = 500;

// The directory's blocks: logical block L is device block L + 1.
class Directory final : public ext4::DirectoryWriteTarget,
                        public ext4::DirectoryBlockSource {
 public:
  Directory(ext4::io::BlockCache& cache, DirectoryContext& ctx, bool can_index)
      : cache_(cache), ctx_(ctx), can_index_(can_index) {}

  // DirectoryWriteTarget.
  uint32_t BlockCount() const override { return count_; }
  absl::StatusOr<uint64_t> PhysicalBlock(Transaction& /*tx*/,
                                         uint32_t logical) override {
    FUZZ_CHECK(logical < count_);
    return uint64_t{logical} + 1;
  }
  absl::StatusOr<uint64_t> AppendBlock(Transaction& /*tx*/) override {
    if (count_ >= kMaxDirBlocks) {
      return ext4::ErrnoError(ENOSPC, "directory device full");
    }
    return uint64_t{++count_};
  }
  void SetIndexed(bool indexed) override { ctx_.htree = indexed; }
  bool CanIndex() const override { return can_index_; }

  // DirectoryBlockSource.
  absl::StatusOr<std::shared_ptr<const std::vector<uint8_t>>> ReadBlock(
      uint32_t logical) override {
    ++reads_;
    return cache_.Read(uint64_t{logical} + 1);
  }

  void set_count(uint32_t count) { count_ = count; }
  uint64_t TakeReads() {
    const uint64_t reads = reads_;
    reads_ = 0;
    return reads;
  }

 private:
  ext4::io::BlockCache& cache_;
  DirectoryContext& ctx_;
  const bool can_index_;
  uint32_t count_ = 1;
  uint64_t reads_ = 0;
};

bool Expected(int err) {
  switch (err) {
    case EUCLEAN:
    case EIO:
    case ENOENT:
    case EEXIST:
    case ENOSPC:
    case ENAMETOOLONG:
    case EINVAL:
      return true;
    default:
      return false;
  }
}

void CheckErrno(const absl::Status& status) {
  if (!status.ok()) FUZZ_CHECK(Expected(ext4::ErrnoOf(status)));
}

struct NameMaker {
  std::string prefix;
  size_t length = 0;  // names are padded to this many bytes

  std::string operator()(uint32_t k) const {
    std::string name = prefix + std::to_string(k);
    if (name.size() < length) name.resize(length, 'x');
    if (name.size() > format::kDirNameMax) name.resize(format::kDirNameMax);
    return name;
  }
};

class Session {
 public:
  Session(FuzzInput& in, ext4::io::BlockCache& cache, DirectoryContext& ctx,
          bool can_index)
      : in_(in), cache_(cache), ctx_(ctx), dir_(cache, ctx, can_index) {}

  absl::Status Init() {
    Transaction tx(cache_);
    E4_ASSIGN_OR_RETURN(format::MutableBytes block, tx.ModifyNew(1));
    E4_RETURN_IF_ERROR(
        ext4::InitDirectoryBlock(ctx_, block, kDirIno, kParentIno));
    return tx.Commit();
  }

  // One change in one transaction, undone on error as the engine does.
  template <typename F>
  absl::Status Change(F&& f) {
    const uint32_t count = dir_.BlockCount();
    const bool htree = ctx_.htree;
    Transaction tx(cache_);
    absl::Status status = f(tx);
    if (status.ok()) return tx.Commit();
    tx.Abort();
    dir_.set_count(count);
    ctx_.htree = htree;
    return status;
  }

  void Add(const std::string& name, uint32_t ino) {
    const absl::Status status = Change([&](Transaction& tx) {
      return ext4::AddEntry(tx, ctx_, dir_, name, ino, S_IFREG);
    });
    CheckErrno(status);
    if (mutated_) return;
    if (names_.count(name)) {
      FUZZ_CHECK(ext4::ErrnoOf(status) == EEXIST);
    } else if (status.ok()) {
      names_[name] = ino;
    } else {
      // Only a full index or device may refuse a new name.
      FUZZ_CHECK(ext4::ErrnoOf(status) == ENOSPC);
    }
  }

  void Remove(const std::string& name) {
    const absl::Status status = Change([&](Transaction& tx) {
      return ext4::RemoveEntry(tx, ctx_, dir_, name);
    });
    CheckErrno(status);
    if (mutated_) return;
    FUZZ_CHECK(status.ok() == (names_.count(name) != 0));
    if (!status.ok()) FUZZ_CHECK(ext4::ErrnoOf(status) == ENOENT);
    names_.erase(name);
  }

  void Replace(const std::string& name, uint32_t ino) {
    const absl::Status status = Change([&](Transaction& tx) {
      return ext4::ReplaceEntry(tx, ctx_, dir_, name, ino, S_IFDIR);
    });
    CheckErrno(status);
    if (mutated_) return;
    FUZZ_CHECK(status.ok() == (names_.count(name) != 0));
    if (status.ok()) names_[name] = ino;
  }

  void SetParent(uint32_t parent) {
    const absl::Status status = Change([&](Transaction& tx) {
      return ext4::SetParent(tx, ctx_, dir_, parent);
    });
    CheckErrno(status);
    if (mutated_) return;
    FUZZ_CHECK(status.ok());
    parent_ = parent;
  }

  void IsEmpty() {
    Transaction tx(cache_);
    auto empty = ext4::IsEmpty(tx, ctx_, dir_);
    CheckErrno(empty.status());
    FUZZ_CHECK(tx.changed_blocks() == 0);
    if (mutated_) return;
    FUZZ_CHECK(empty.ok() && *empty == names_.empty());
  }

  void Lookup(const std::string& name) {
    auto found = ext4::LookupInDirectory(ctx_, dir_, name);
    CheckReads();
    CheckErrno(found.status());
    if (mutated_) return;
    auto it = names_.find(name);
    if (name == ".") {
      FUZZ_CHECK(found.ok() && *found == kDirIno);
    } else if (name == "..") {
      FUZZ_CHECK(found.ok() && *found == parent_);
    } else if (it == names_.end()) {
      FUZZ_CHECK(!found.ok() && ext4::ErrnoOf(found.status()) == ENOENT);
    } else {
      FUZZ_CHECK(found.ok() && *found == it->second);
    }
  }

  // Every name once, "." and ".." included; resuming from a cookie in the
  // middle gives the rest.
  void List(size_t resume_at) {
    std::vector<DirEntry> all;
    const absl::Status status =
        ext4::ListDirectory(ctx_, dir_, 0, [&](const DirEntry& entry) {
          FUZZ_CHECK(entry.next_cookie != 0 &&
                     entry.next_cookie < (uint64_t{1} << 63));
          all.push_back(entry);
          return all.size() < 4 * kMaxDirBlocks * 16;
        });
    CheckReads();
    CheckErrno(status);
    if (!all.empty()) {
      std::vector<DirEntry> rest;
      const size_t at = resume_at % all.size();
      (void)ext4::ListDirectory(ctx_, dir_, all[at].next_cookie,
                                [&](const DirEntry& entry) {
                                  rest.push_back(entry);
                                  return rest.size() <= all.size();
                                });
      CheckReads();
      if (!mutated_) {
        FUZZ_CHECK(rest.size() == all.size() - at - 1);
        for (size_t i = 0; i < rest.size(); ++i) {
          FUZZ_CHECK(rest[i].name == all[at + 1 + i].name);
        }
      }
    }
    if (mutated_) return;
    FUZZ_CHECK(status.ok());
    std::map<std::string, uint32_t> listed;
    for (const DirEntry& entry : all) {
      FUZZ_CHECK(listed.emplace(entry.name, entry.ino).second);
    }
    FUZZ_CHECK(listed.size() == names_.size() + 2);
    FUZZ_CHECK(listed["."] == kDirIno && listed[".."] == parent_);
    for (const auto& [name, ino] : names_) {
      auto it = listed.find(name);
      FUZZ_CHECK(it != listed.end() && it->second == ino);
    }
  }

  // Flips bytes of the directory's blocks.
  void Mutate(uint32_t where, uint8_t value) {
    const uint64_t bytes = uint64_t{dir_.BlockCount()} * ctx_.block_size;
    const uint64_t at = where % bytes;
    Transaction tx(cache_);
    auto block = tx.Modify(1 + at / ctx_.block_size);
    FUZZ_CHECK(block.ok());
    (*block)[at % ctx_.block_size] ^= value;
    FUZZ_CHECK(tx.Commit().ok());
    if (value != 0) mutated_ = true;
  }

  void Run(const NameMaker& make_name, uint32_t initial) {
    uint32_t next = 0;
    for (; next < initial; ++next) Add(make_name(next), 1000 + next);
    const uint64_t mismatches = format::ChecksumMismatchesIgnored();
    for (size_t op = 0; op < kMaxOps && in_.remaining() > 0; ++op) {
      const uint8_t kind = in_.U8();
      const uint16_t arg = in_.U16();
      // Existing names mostly, sometimes new ones.
      const uint32_t k = (kind & 0x80) ? next + arg % 4 : arg % (next + 1);
      const std::string name = make_name(k);
      switch (kind % 9) {
        case 0:
          Add(name, 1000 + k);
          next = std::max(next, k + 1);
          break;
        case 1:
          Remove(name);
          break;
        case 2:
          Replace(name, 5000 + arg);
          break;
        case 3:
          Lookup(name);
          break;
        case 4:
          List(arg);
          break;
        case 5:
          IsEmpty();
          break;
        case 6:
          SetParent(3 + arg);
          break;
        case 7:
          Mutate(in_.U32() ^ arg, in_.U8());
          break;
        case 8: {
          // A burst of new names, to split leaves and grow levels.
          for (uint32_t i = 0; i < arg % 32; ++i) {
            Add(make_name(next), 1000 + next);
            ++next;
          }
          break;
        }
      }
    }
    Lookup(".");
    Lookup("..");
    Lookup(make_name(0));
    List(0);
    IsEmpty();
    if (!mutated_) {
      FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
    }
  }

 private:
  // A lookup or listing reads each block a bounded number of times.
  void CheckReads() {
    FUZZ_CHECK(dir_.TakeReads() <= 8 * (uint64_t{dir_.BlockCount()} + 2));
  }

  FuzzInput& in_;
  ext4::io::BlockCache& cache_;
  DirectoryContext& ctx_;
  Directory dir_;
  std::map<std::string, uint32_t> names_;
  uint32_t parent_ = kParentIno;
  bool mutated_ = false;
};

// Flags, hash version, hash seed, checksum seed, the name prefix and
// length, the number of names added first, then the operations (kind, le16
// argument; a mutation takes le32 position and a byte more).
void RunDirectory(FuzzInput& in) {
  const uint8_t flags = in.U8();
  DirectoryContext ctx;
  ctx.ino = kDirIno;
  ctx.block_size = 1024u << std::min(flags & 3, 2);
  ctx.metadata_csum = flags & 0x04;
  ctx.large_dir = flags & 0x08;
  ctx.filetype = flags & 0x10;
  ctx.hash_unsigned = flags & 0x20;
  const bool can_index = !(flags & 0x40);
  ctx.default_hash_version = in.U8() % 3;
  for (uint32_t& word : ctx.hash_seed) word = in.U32();
  ctx.inode_checksum_seed = in.U32();
  NameMaker make_name;
  {
    Bytes prefix = in.Take(in.U8() % 16);
    for (uint8_t c : prefix) {
      // No '/' or NUL, which the writer rejects.
      make_name.prefix.push_back(c == 0 || c == '/' ? '_' : char(c));
    }
  }
  make_name.length = in.U8();
  const uint32_t initial = in.U16() % kMaxInitialNames;

  auto device = ext4::io::MemoryDevice(
      std::vector<uint8_t>(size_t{kMaxDirBlocks + 1} * ctx.block_size, 0));
  ext4::io::BlockCache cache(*device, ctx.block_size, kMaxDirBlocks + 1,
                             kMaxDirBlocks + 1);
  Session session(in, cache, ctx, can_index);
  FUZZ_CHECK(session.Init().ok());
  session.Run(make_name, initial);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  if (in.U8() & 1) {
    RunDirectory(in);
  } else {
    RunBlock(in);
  }
  return 0;
}
