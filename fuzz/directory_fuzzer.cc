// Directory lookup and listing over blocks served from memory, for linear,
// htree and inline directories. The first byte picks the mode:
//  - raw: the directory's blocks are carved from the input (with a read
//    error or a short block on request), and so are an inline directory's
//    i_block and system.data;
//  - built: the input's names go into a directory built with the format
//    writers (linear, or htree with 0 to 2 index levels, checksums on or
//    off), which must list every name once, in hash order for htree, look
//    every name up, and resume from every cookie; then a few bytes of the
//    blocks are flipped and the hostile checks run on the result;
//  - built inline: the same for an inline directory.
// The hostile checks are those that hold for any bytes: entries have a
// nonzero inode, a name of at most 255 bytes and a nonzero cookie that fits
// an int64_t; a linear or inline listing resumed from an entry's cookie goes
// on exactly as the listing from the start did; a name that a complete,
// error-free linear listing shows is found by lookup. Work is bounded: at most
// 16 raw blocks, 300 names, a few thousand listed entries, and a read budget
// per call.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ext4/directory.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"
#include "ext4/format/endian.h"
#include "ext4/format/htree.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::DirectoryContext;
using ext4::DirEntry;
using ext4::format::Bytes;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

constexpr size_t kMaxRawBlocks = 16;
constexpr size_t kMaxNames = 300;
constexpr size_t kMaxListed = 4096;
constexpr size_t kMaxResumes = 48;
constexpr size_t kResumeLength = 8;
constexpr size_t kMaxLookups = 64;
constexpr size_t kMaxInlineData = 4096;
constexpr uint32_t kNoBlock = UINT32_MAX;

// Blocks held in memory. One block may be made to fail, and the reported
// count may exceed the blocks there are (those read as I/O errors).
class MemoryBlocks : public ext4::DirectoryBlockSource {
 public:
  MemoryBlocks(const std::vector<std::vector<uint8_t>>& blocks, uint32_t count,
               uint32_t failing)
      : count_(count), failing_(failing) {
    for (const auto& block : blocks) {
      blocks_.push_back(std::make_shared<const std::vector<uint8_t>>(block));
    }
  }

  absl::StatusOr<std::shared_ptr<const std::vector<uint8_t>>> ReadBlock(
      uint32_t logical) override {
    ++reads_;
    if (logical == failing_) return ext4::ErrnoError(EIO, "read error");
    if (logical >= blocks_.size()) return ext4::ErrnoError(EIO, "no block");
    return blocks_[logical];
  }
  uint32_t BlockCount() const override { return count_; }

  // Reads since the last call, which must stay within a budget that grows
  // with the directory: no call may loop over the same blocks.
  void CheckReads() {
    FUZZ_CHECK(reads_ <= 8 * (uint64_t{count_} + 2));
    reads_ = 0;
  }

 private:
  std::vector<std::shared_ptr<const std::vector<uint8_t>>> blocks_;
  uint32_t count_;
  uint32_t failing_;
  uint64_t reads_ = 0;
};

bool IsDot(std::string_view name) { return name == "." || name == ".."; }

bool ValidType(uint32_t type) {
  switch (type) {
    case 0:
    case S_IFREG:
    case S_IFDIR:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFLNK:
      return true;
    default:
      return false;
  }
}

bool SameEntry(const DirEntry& a, const DirEntry& b) {
  return a.name == b.name && a.ino == b.ino && a.type == b.type &&
         a.next_cookie == b.next_cookie;
}

struct Listing {
  std::vector<DirEntry> entries;
  absl::Status status;
  bool stopped = false;  // the callback ended the listing
};

// What any entry of any listing must satisfy.
void CheckEntry(const DirectoryContext& ctx, const DirEntry& entry,
                bool is_inline) {
  // Inline "." and ".." carry the context's and i_block's numbers as they
  // are; every other entry has an inode.
  if (!(is_inline && IsDot(entry.name))) FUZZ_CHECK(entry.ino != 0);
  FUZZ_CHECK(entry.name.size() <= format::kDirNameMax);
  FUZZ_CHECK(entry.next_cookie != 0);
  FUZZ_CHECK(entry.next_cookie < (uint64_t{1} << 63));
  FUZZ_CHECK(ValidType(entry.type));
  // Inline "." and ".." are always directories; other types need filetype.
  if (!ctx.filetype && !(is_inline && IsDot(entry.name))) {
    FUZZ_CHECK(entry.type == 0);
  }
}

// A directory under test: block-based or inline.
struct Directory {
  DirectoryContext ctx;
  MemoryBlocks* blocks = nullptr;
  Bytes i_block;
  Bytes system_data;
  bool is_inline = false;

  Listing List(uint64_t cookie, size_t limit) const {
    Listing out;
    auto emit = [&](const DirEntry& entry) {
      CheckEntry(ctx, entry, is_inline);
      out.entries.push_back(entry);
      if (out.entries.size() >= limit) {
        out.stopped = true;
        return false;
      }
      return true;
    };
    if (is_inline) {
      out.status =
          ext4::ListInlineDirectory(ctx, i_block, system_data, cookie, emit);
    } else {
      out.status = ext4::ListDirectory(ctx, *blocks, cookie, emit);
      blocks->CheckReads();
    }
    return out;
  }

  absl::StatusOr<uint32_t> Lookup(std::string_view name) const {
    if (is_inline) {
      return ext4::LookupInInlineDirectory(ctx, i_block, system_data, name);
    }
    auto result = ext4::LookupInDirectory(ctx, *blocks, name);
    blocks->CheckReads();
    return result;
  }

  // Linear and inline listings resume exactly where they left off, whatever
  // the bytes; htree ones only in a well-formed index.
  bool ResumesExactly() const { return is_inline || !ctx.htree; }
};

// Resumes from the cookie of full.entries[i]: the entries that follow must
// be those the full listing had after it.
void CheckResume(const Directory& dir, const Listing& full, size_t i) {
  const Listing resumed = dir.List(full.entries[i].next_cookie, kResumeLength);
  for (size_t j = 0; j < resumed.entries.size(); ++j) {
    if (i + 1 + j >= full.entries.size()) {
      FUZZ_CHECK(full.stopped);
      return;
    }
    FUZZ_CHECK(SameEntry(resumed.entries[j], full.entries[i + 1 + j]));
  }
  if (!resumed.stopped && !full.stopped) {
    FUZZ_CHECK(i + 1 + resumed.entries.size() == full.entries.size());
    FUZZ_CHECK(resumed.status.code() == full.status.code());
  }
}

// The checks that hold for any directory bytes.
void CheckHostile(const Directory& dir, const std::vector<std::string>& names) {
  for (const std::string& name : names) (void)dir.Lookup(name);
  const std::string too_long(format::kDirNameMax + 1, 'x');
  auto long_lookup = dir.Lookup(too_long);
  FUZZ_CHECK(!long_lookup.ok() &&
             ext4::ErrnoOf(long_lookup.status()) == ENAMETOOLONG);

  const Listing full = dir.List(0, kMaxListed);
  (void)dir.Lookup(".");
  (void)dir.Lookup("..");
  (void)dir.Lookup("");
  if (full.entries.empty()) return;

  const size_t step = 1 + full.entries.size() / kMaxResumes;
  for (size_t i = 0; i < full.entries.size(); i += step) {
    if (dir.ResumesExactly()) {
      CheckResume(dir, full, i);
    } else {
      (void)dir.List(full.entries[i].next_cookie, kResumeLength);
    }
  }
  // A cookie past everything, and one that is not an entry's.
  (void)dir.List(full.entries.back().next_cookie + 1, kResumeLength);
  (void)dir.List(uint64_t{1} << 62, kResumeLength);

  // A complete, error-free linear listing and lookups agree: a name is
  // found as its first entry ("." and ".." only in the first block).
  if (dir.is_inline || dir.ctx.htree || full.stopped || !full.status.ok()) {
    return;
  }
  std::set<std::string> checked;
  for (size_t i = 0; i < full.entries.size() && checked.size() < kMaxLookups;
       ++i) {
    const DirEntry& entry = full.entries[i];
    if (entry.name.empty() || !checked.insert(entry.name).second) continue;
    auto found = dir.Lookup(entry.name);
    if (IsDot(entry.name) && entry.next_cookie > dir.ctx.block_size) {
      FUZZ_CHECK(!found.ok());
      continue;
    }
    FUZZ_CHECK(found.ok() && *found == entry.ino);
  }
}

// The names recorded in a set of leaf blocks, to look up.
std::vector<std::string> HarvestNames(
    const std::vector<std::vector<uint8_t>>& blocks) {
  std::vector<std::string> names;
  for (const auto& block : blocks) {
    (void)format::ForEachDirEntry(block, format::HasDirCsumTail(block),
                                  [&](const format::RawDirEntry& entry) {
                                    if (entry.inode != 0)
                                      names.emplace_back(entry.name);
                                    return names.size() < 8;
                                  });
    if (names.size() >= 8) break;
  }
  return names;
}

DirectoryContext ContextFromFlags(uint8_t flags) {
  DirectoryContext ctx;
  ctx.htree = (flags & 0x01) != 0;
  ctx.large_dir = (flags & 0x02) != 0;
  ctx.metadata_csum = (flags & 0x04) != 0;
  ctx.hash_unsigned = (flags & 0x08) != 0;
  ctx.filetype = (flags & 0x10) != 0;
  ctx.block_size = 1024u << ((flags >> 5) & 3);
  ctx.default_hash_version = format::kDxHashHalfMd4;
  return ctx;
}

void ReadSeed(FuzzInput& in, DirectoryContext& ctx) {
  for (uint32_t& word : ctx.hash_seed) word = in.U32();
}

// Raw mode: flags, hash seed, uuid, inode number, generation (the checksum
// seed derives from them as on a real filesystem), a shape byte, a name,
// then the blocks.
void RunRaw(FuzzInput& in) {
  DirectoryContext ctx = ContextFromFlags(in.U8());
  ReadSeed(in, ctx);
  Bytes uuid = in.Take(16);
  ctx.ino = in.U32();
  const uint32_t generation = in.U32();
  ctx.inode_checksum_seed =
      format::InodeChecksumSeed(format::Crc32c(~0u, uuid), ctx.ino, generation);
  const uint8_t shape = in.U8();
  std::vector<std::string> names;
  Bytes name = in.Take(in.U8());
  names.emplace_back(reinterpret_cast<const char*>(name.data()), name.size());

  Bytes rest = in.Rest();
  // Inline: i_block and system.data from the front of the blocks' bytes.
  {
    Directory dir;
    dir.ctx = ctx;
    dir.is_inline = true;
    dir.i_block = rest.first(std::min<size_t>(rest.size(), 60));
    const size_t data_size = std::min<size_t>(rest.size() - dir.i_block.size(),
                                              (shape & 0x0F) * 16u);
    dir.system_data = rest.subspan(dir.i_block.size(), data_size);
    CheckHostile(dir, names);
  }

  std::vector<std::vector<uint8_t>> blocks;
  for (size_t pos = 0; pos < rest.size() && blocks.size() < kMaxRawBlocks;
       pos += ctx.block_size) {
    Bytes piece =
        rest.subspan(pos, std::min<size_t>(rest.size() - pos, ctx.block_size));
    blocks.emplace_back(piece.begin(), piece.end());
    // The last piece is zero padded, or left short to read as a short block.
    if (!(shape & 0x10)) blocks.back().resize(ctx.block_size, 0);
  }
  const auto harvested = HarvestNames(blocks);
  names.insert(names.end(), harvested.begin(), harvested.end());
  const uint32_t count =
      static_cast<uint32_t>(blocks.size()) + ((shape >> 5) & 1);
  const uint32_t failing = (shape & 0x40) ? (shape & 0x0F) : kNoBlock;
  MemoryBlocks source(blocks, count, failing);
  Directory dir;
  dir.ctx = ctx;
  dir.blocks = &source;
  CheckHostile(dir, names);
}

// ---------------------------------------------------------------------------
// Built directories.

struct Name {
  std::string name;
  uint32_t ino = 0;
  uint8_t file_type = 0;
  format::DxHash hash;
};

// Names separated by '/' or NUL, as a directory could hold them: no empty
// names, no "." or "..", none over 255 bytes, no duplicates.
std::vector<Name> TakeNames(Bytes bytes, bool filetype) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()),
                              bytes.size());
  std::vector<Name> names;
  std::set<std::string_view> seen;
  size_t start = 0;
  while (start < text.size() && names.size() < kMaxNames) {
    size_t end = text.find_first_of(std::string_view("/\0", 2), start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view piece = text.substr(start, end - start);
    start = end + 1;
    if (piece.empty() || IsDot(piece) || piece.size() > format::kDirNameMax ||
        !seen.insert(piece).second) {
      continue;
    }
    Name name;
    name.name = std::string(piece);
    name.ino = 100 + static_cast<uint32_t>(names.size());
    name.file_type = filetype ? static_cast<uint8_t>(1 + names.size() % 7) : 0;
    names.push_back(std::move(name));
  }
  return names;
}

// Fills leaf blocks with records, closing each so that its last record
// reaches the end of the entry area (and the checksum tail follows).
class LeafWriter {
 public:
  LeafWriter(const DirectoryContext& ctx, size_t per_block,
             std::vector<std::vector<uint8_t>>& blocks)
      : ctx_(ctx), per_block_(per_block), blocks_(blocks) {
    end_ = ctx.block_size - (ctx.metadata_csum ? format::kDirCsumTailSize : 0);
  }

  bool Fits(std::string_view name) const {
    return open_ && count_ < per_block_ &&
           offset_ + format::DirRecLen(name.size()) <= end_;
  }
  // Records that do not count against the per-block limit ("." and "..").
  void AddUncounted(uint32_t ino, std::string_view name, uint8_t type) {
    Add(ino, name, type);
    --count_;
  }
  void Add(uint32_t ino, std::string_view name, uint8_t type) {
    if (!open_) Open();
    const uint32_t rec_len = format::DirRecLen(name.size());
    format::WriteDirEntry(blocks_[current_], offset_, ino, rec_len, name, type);
    last_ = offset_;
    offset_ += rec_len;
    ++count_;
  }
  void Open() {
    Close();
    current_ = blocks_.size();
    blocks_.emplace_back(ctx_.block_size, 0);
    offset_ = 0;
    count_ = 0;
    open_ = true;
  }
  void Close() {
    if (!open_) return;
    std::vector<uint8_t>& block = blocks_[current_];
    if (offset_ == 0) {
      format::WriteDirEntry(block, 0, 0, end_, "", 0);
    } else {
      format::Put16(block, last_ + 4,
                    format::EncodeRecLen(end_ - last_, ctx_.block_size));
    }
    if (ctx_.metadata_csum) {
      format::InitDirCsumTail(block);
      format::SetDirBlockChecksum(block, ctx_.inode_checksum_seed);
    }
    open_ = false;
  }

 private:
  const DirectoryContext& ctx_;
  size_t per_block_;
  std::vector<std::vector<uint8_t>>& blocks_;
  size_t current_ = 0;
  uint32_t offset_ = 0;
  uint32_t last_ = 0;
  uint32_t end_ = 0;
  size_t count_ = 0;
  bool open_ = false;
};

std::vector<std::vector<uint8_t>> BuildLinear(const DirectoryContext& ctx,
                                              uint32_t parent,
                                              const std::vector<Name>& names,
                                              size_t per_block) {
  std::vector<std::vector<uint8_t>> blocks;
  LeafWriter writer(ctx, per_block, blocks);
  const uint8_t dir_type = ctx.filetype ? format::kFtDirectory : 0;
  writer.Open();
  writer.AddUncounted(ctx.ino, ".", dir_type);
  writer.AddUncounted(parent, "..", dir_type);
  for (const Name& name : names) {
    if (!writer.Fits(name.name)) writer.Open();
    writer.Add(name.ino, name.name, name.file_type);
  }
  writer.Close();
  return blocks;
}

struct IndexRef {
  uint32_t hash;
  uint32_t block;
};

// An htree directory: block 0 the root, then the leaves, then the interior
// nodes. `names` must be sorted by hash. Leaves split between equal major
// hashes carry the continuation bit in the index. Returns the index levels
// used (more than asked for when the root cannot hold the leaves).
uint32_t BuildHtree(const DirectoryContext& ctx, uint32_t parent,
                    uint8_t hash_version, uint32_t levels, size_t fanout,
                    const std::vector<Name>& names, size_t per_leaf,
                    std::vector<std::vector<uint8_t>>& blocks) {
  const uint32_t bs = ctx.block_size;
  const bool csum = ctx.metadata_csum;
  blocks.assign(1, std::vector<uint8_t>(bs, 0));

  std::vector<IndexRef> children;
  LeafWriter writer(ctx, per_leaf, blocks);
  for (size_t i = 0; i < names.size(); ++i) {
    const Name& name = names[i];
    if (!writer.Fits(name.name)) {
      writer.Open();
      uint32_t hash = name.hash.major;
      if (i > 0 && names[i - 1].hash.major == hash) hash |= 1;
      children.push_back({hash, static_cast<uint32_t>(blocks.size() - 1)});
    }
    writer.Add(name.ino, name.name, name.file_type);
  }
  if (children.empty()) {
    writer.Open();
    children.push_back({0, static_cast<uint32_t>(blocks.size() - 1)});
  }
  writer.Close();
  const size_t leaf_end = blocks.size();

  const uint32_t root_limit = format::DxRootLimit(bs, csum);
  const uint32_t node_limit = format::DxNodeLimit(bs, csum);
  if (levels == 0 && children.size() > root_limit) levels = 1;
  // Group the leaves under `levels` levels of interior nodes, widening the
  // nodes until the root holds what is left.
  size_t width = std::clamp<size_t>(fanout, 2, node_limit);
  std::vector<IndexRef> top;
  while (true) {
    blocks.resize(leaf_end);
    top = children;
    std::vector<std::vector<IndexRef>> nodes;
    for (uint32_t level = 0; level < levels; ++level) {
      std::vector<IndexRef> parents;
      for (size_t i = 0; i < top.size(); i += width) {
        const size_t end = std::min(top.size(), i + width);
        parents.push_back({top[i].hash, static_cast<uint32_t>(blocks.size())});
        blocks.emplace_back(bs, 0);
        std::vector<uint8_t>& node = blocks.back();
        format::InitDxNode(node, csum);
        format::PutDxCount(node, format::kDxNodeCountOffset,
                           static_cast<uint16_t>(end - i));
        for (size_t j = i; j < end; ++j) {
          format::PutDxEntry(node, format::kDxNodeCountOffset, j - i,
                             top[j].hash, top[j].block);
        }
        if (csum) {
          FUZZ_CHECK(format::SetDxChecksum(node, ctx.inode_checksum_seed).ok());
        }
      }
      top = std::move(parents);
    }
    if (top.size() <= root_limit || width >= node_limit) break;
    width = std::min<size_t>(width * 2, node_limit);
  }
  FUZZ_CHECK(top.size() <= root_limit);

  std::vector<uint8_t>& root = blocks[0];
  format::InitDxRoot(root, ctx.ino, parent,
                     ctx.filetype ? format::kFtDirectory : 0, hash_version,
                     static_cast<uint8_t>(levels), csum);
  format::PutDxCount(root, format::kDxRootCountOffset,
                     static_cast<uint16_t>(top.size()));
  for (size_t i = 0; i < top.size(); ++i) {
    format::PutDxEntry(root, format::kDxRootCountOffset, i, top[i].hash,
                       top[i].block);
  }
  if (csum) {
    FUZZ_CHECK(format::SetDxChecksum(root, ctx.inode_checksum_seed).ok());
  }
  return levels;
}

// i_block (the parent, then records) and system.data for an inline
// directory, records going to system.data once i_block is full. Names that
// would take system.data past kMaxInlineData are dropped from `names`.
void BuildInline(uint32_t parent, std::vector<Name>& names, size_t slack,
                 std::vector<uint8_t>& i_block,
                 std::vector<uint8_t>& system_data) {
  i_block.assign(60, 0);
  format::Put32(i_block, 0, parent);
  std::vector<uint8_t> first(56, 0);
  size_t used_first = 0, last_first = 0;
  std::vector<const Name*> spill;
  size_t spill_size = 0;
  size_t kept = 0;
  for (const Name& name : names) {
    const uint32_t rec_len = format::DirRecLen(name.name.size());
    ++kept;
    if (spill.empty() && used_first + rec_len <= first.size()) {
      format::WriteDirEntry(first, used_first, name.ino, rec_len, name.name,
                            name.file_type);
      last_first = used_first;
      used_first += rec_len;
    } else if (spill_size + rec_len <= kMaxInlineData) {
      spill.push_back(&name);
      spill_size += rec_len;
    } else {
      --kept;
      break;
    }
  }
  if (used_first == 0) {
    format::WriteDirEntry(first, 0, 0, 56, "", 0);
  } else {
    format::Put16(first, last_first + 4,
                  static_cast<uint16_t>(first.size() - last_first));
  }
  std::copy(first.begin(), first.end(), i_block.begin() + 4);

  system_data.clear();
  size_t last = 0;
  for (const Name* name : spill) {
    const uint32_t rec_len = format::DirRecLen(name->name.size());
    last = system_data.size();
    system_data.resize(last + rec_len, 0);
    format::WriteDirEntry(system_data, last, name->ino, rec_len, name->name,
                          name->file_type);
  }
  if (!spill.empty() && slack > 0) {
    system_data.resize(system_data.size() + slack, 0);
  }
  if (!spill.empty()) {
    format::Put16(system_data, last + 4,
                  static_cast<uint16_t>(system_data.size() - last));
  }
  names.resize(kept);
}

// What a directory built from `names` must do.
void CheckBuilt(const Directory& dir, uint32_t parent,
                const std::vector<Name>& names, uint8_t stop_every) {
  const uint64_t mismatches = format::ChecksumMismatchesIgnored();
  const bool is_inline = dir.is_inline;
  const uint32_t dir_type =
      (dir.ctx.filetype || is_inline) ? uint32_t{S_IFDIR} : 0;

  // The whole listing: "." and "..", then every name once, in the order
  // they were laid out (hash order for htree).
  const Listing full = dir.List(0, kMaxListed);
  FUZZ_CHECK(full.status.ok());
  FUZZ_CHECK(full.entries.size() == names.size() + 2);
  FUZZ_CHECK(full.entries[0].name == "." && full.entries[0].ino == dir.ctx.ino);
  FUZZ_CHECK(full.entries[0].type == dir_type);
  FUZZ_CHECK(full.entries[1].name == ".." && full.entries[1].ino == parent);
  FUZZ_CHECK(full.entries[1].type == dir_type);
  for (size_t i = 0; i < names.size(); ++i) {
    const DirEntry& entry = full.entries[i + 2];
    FUZZ_CHECK(entry.name == names[i].name);
    FUZZ_CHECK(entry.ino == names[i].ino);
    FUZZ_CHECK(
        entry.type ==
        (dir.ctx.filetype ? format::DirFileTypeToMode(names[i].file_type) : 0));
  }

  // Resuming from any cookie continues the listing.
  const size_t step = 1 + full.entries.size() / kMaxResumes;
  for (size_t i = 0; i < full.entries.size(); i += step) {
    CheckResume(dir, full, i);
  }
  // Listing a few entries per call, as readdir with a small buffer does.
  const size_t per_call =
      std::max<size_t>(1 + stop_every % 7, full.entries.size() / kMaxResumes);
  std::vector<DirEntry> chained;
  uint64_t cookie = 0;
  for (size_t calls = 0; calls <= full.entries.size() + 1; ++calls) {
    const Listing part = dir.List(cookie, per_call);
    FUZZ_CHECK(part.status.ok());
    chained.insert(chained.end(), part.entries.begin(), part.entries.end());
    if (part.entries.empty()) break;
    cookie = part.entries.back().next_cookie;
  }
  FUZZ_CHECK(chained.size() == full.entries.size());
  for (size_t i = 0; i < chained.size(); ++i) {
    FUZZ_CHECK(SameEntry(chained[i], full.entries[i]));
  }

  // Lookups find every name, and nothing else.
  auto dot = dir.Lookup(".");
  FUZZ_CHECK(dot.ok() && *dot == dir.ctx.ino);
  auto dotdot = dir.Lookup("..");
  FUZZ_CHECK(dotdot.ok() && *dotdot == parent);
  std::set<std::string_view> present;
  for (const Name& name : names) present.insert(name.name);
  const size_t lookup_step = 1 + names.size() / kMaxLookups;
  for (size_t i = 0; i < names.size(); i += lookup_step) {
    auto found = dir.Lookup(names[i].name);
    FUZZ_CHECK(found.ok() && *found == names[i].ino);
    std::string absent = names[i].name;
    absent.back() ^= 0x01;
    if (absent.back() == '/' || absent.back() == '\0') absent.back() ^= 0x03;
    if (!present.count(absent) && !IsDot(absent)) {
      auto missing = dir.Lookup(absent);
      FUZZ_CHECK(!missing.ok() && ext4::ErrnoOf(missing.status()) == ENOENT);
    }
  }
  auto empty = dir.Lookup("");
  FUZZ_CHECK(!empty.ok() && ext4::ErrnoOf(empty.status()) == ENOENT);
  // Checksums written by the format writers verify.
  FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
}

// Flips bytes of the blocks as the input says; returns whether any changed.
bool Mutate(FuzzInput& in, size_t count,
            std::vector<std::vector<uint8_t>>& blocks) {
  size_t total = 0;
  for (const auto& block : blocks) total += block.size();
  bool changed = false;
  for (size_t i = 0; i < count && total > 0; ++i) {
    size_t pos = in.U32() % total;
    const uint8_t value = in.U8();
    for (auto& block : blocks) {
      if (pos < block.size()) {
        changed |= value != 0;
        block[pos] ^= value;
        break;
      }
      pos -= block.size();
    }
  }
  return changed;
}

std::vector<std::string> NameStrings(const std::vector<Name>& names) {
  std::vector<std::string> out;
  for (size_t i = 0; i < names.size() && out.size() < 8; i += 1 + i) {
    out.push_back(names[i].name);
  }
  return out;
}

// Built mode: flags, hash seed (unless zero is asked for), checksum seed,
// hash version, index levels, fanout, records per block, a listing batch
// size, a mutation count and the mutations, then the names.
void RunBuilt(FuzzInput& in, bool as_inline) {
  const uint8_t flags = in.U8();
  DirectoryContext ctx = ContextFromFlags(flags);
  ReadSeed(in, ctx);
  if (flags & 0x80) ctx.hash_seed = {0, 0, 0, 0};
  ctx.inode_checksum_seed = in.U32();
  ctx.ino = 12;
  const uint32_t parent = 2;
  const uint8_t hash_version = in.U8() % 3;  // legacy, half_md4, tea
  const uint32_t levels = in.U8() % format::DxMaxLevels(ctx.large_dir);
  const size_t fanout = in.U8();
  const uint8_t per_block_byte = in.U8();
  const size_t per_block =
      per_block_byte % 9 == 0 ? SIZE_MAX : per_block_byte % 9;
  const uint8_t stop_every = in.U8();
  const size_t mutations = in.U8() % 8;
  std::vector<uint8_t> mutation_bytes;
  {
    Bytes m = in.Take(mutations * 5);
    mutation_bytes.assign(m.begin(), m.end());
  }
  std::vector<Name> names = TakeNames(in.Rest(), ctx.filetype);

  std::vector<std::vector<uint8_t>> blocks;
  if (as_inline) {
    ctx.htree = false;
    std::vector<uint8_t> i_block, system_data;
    BuildInline(parent, names, 4 * (fanout % 8), i_block, system_data);
    Directory dir;
    dir.ctx = ctx;
    dir.is_inline = true;
    dir.i_block = i_block;
    dir.system_data = system_data;
    CheckBuilt(dir, parent, names, stop_every);
    blocks = {i_block, system_data};
  } else if (ctx.htree) {
    const int version =
        hash_version + (ctx.hash_unsigned ? format::kDxHashLegacyUnsigned : 0);
    for (Name& name : names) {
      auto hash = format::ComputeDxHash(name.name, version, ctx.hash_seed);
      FUZZ_CHECK(hash.ok());
      name.hash = *hash;
    }
    std::stable_sort(names.begin(), names.end(),
                     [](const Name& a, const Name& b) {
                       if (a.hash.major != b.hash.major) {
                         return a.hash.major < b.hash.major;
                       }
                       return a.hash.minor < b.hash.minor;
                     });
    const uint32_t used_levels = BuildHtree(ctx, parent, hash_version, levels,
                                            fanout, names, per_block, blocks);
    if (used_levels >= format::DxMaxLevels(ctx.large_dir)) return;
    MemoryBlocks source(blocks, static_cast<uint32_t>(blocks.size()), kNoBlock);
    Directory dir;
    dir.ctx = ctx;
    dir.blocks = &source;
    CheckBuilt(dir, parent, names, stop_every);
  } else {
    blocks = BuildLinear(ctx, parent, names, per_block);
    MemoryBlocks source(blocks, static_cast<uint32_t>(blocks.size()), kNoBlock);
    Directory dir;
    dir.ctx = ctx;
    dir.blocks = &source;
    CheckBuilt(dir, parent, names, stop_every);
  }

  // The same directory with a few bytes flipped.
  FuzzInput mutation(mutation_bytes.data(), mutation_bytes.size());
  if (!Mutate(mutation, mutations, blocks)) return;
  const std::vector<std::string> lookups = NameStrings(names);
  if (as_inline) {
    Directory dir;
    dir.ctx = ctx;
    dir.is_inline = true;
    dir.i_block = blocks[0];
    dir.system_data = blocks[1];
    CheckHostile(dir, lookups);
  } else {
    MemoryBlocks source(blocks, static_cast<uint32_t>(blocks.size()), kNoBlock);
    Directory dir;
    dir.ctx = ctx;
    dir.blocks = &source;
    CheckHostile(dir, lookups);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  switch (in.U8() % 3) {
    case 0:
      RunRaw(in);
      break;
    case 1:
      RunBuilt(in, /*as_inline=*/false);
      break;
    case 2:
      RunBuilt(in, /*as_inline=*/true);
      break;
  }
  return 0;
}
