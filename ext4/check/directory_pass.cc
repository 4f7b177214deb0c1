// Pass 2: every directory's blocks, read through the runs pass 1 found. Each
// leaf block must be a well-formed chain of entries (with its checksum tail
// under metadata_csum); "." and ".." must come first; hash-indexed
// directories get their index checked (levels, counts, limits, hash order,
// every leaf referenced once and holding only names whose hashes fall in the
// range its index entry gives). Every entry must name an in-use inode with
// the file type of its mode; a directory may have only one name. The names
// found are counted for pass 4, the parents for pass 3.
#include <algorithm>
#include <array>
#include <functional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ext4/check/checker_internal.h"
#include "ext4/errno_status.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"
#include "ext4/format/endian.h"
#include "ext4/format/htree.h"
#include "ext4/format/xattr.h"

namespace ext4::check {
namespace {

constexpr uint8_t kSystemIndex = 7;
constexpr size_t kInlineParentSize = 4;

enum class BlockRole : uint8_t { kUnreferenced, kRoot, kNode, kLeaf };

struct HtreeBlock {
  BlockRole role = BlockRole::kUnreferenced;
  uint32_t min_hash = 0;  // the range of hashes the index sends here
  uint32_t max_hash = 0;
};

std::string Quote(std::string_view name) {
  return absl::StrCat("'", absl::CEscape(std::string(name)), "'");
}

std::string Hex(uint32_t value) {
  return absl::StrCat("0x", absl::Hex(value, absl::kZeroPad8));
}

// Whether an index block's dx_tail holds the wrong checksum. Computed from
// the count and limit fields alone, so that a block whose entries are
// damaged (for example out of hash order) is still checked; false when the
// fields leave no room for a tail (the structure problem is reported
// elsewhere).
bool DxChecksumWrong(format::Bytes block, uint32_t count_offset, uint32_t seed,
                     uint32_t* stored, uint32_t* want) {
  if (count_offset + 4 > block.size()) return false;
  const uint32_t limit = format::Le16(block, count_offset);
  const uint32_t count = format::Le16(block, count_offset + 2);
  const uint64_t tail = count_offset + uint64_t{limit} * format::kDxEntrySize;
  if (count > limit || tail + format::kDxTailSize > block.size()) return false;
  *stored = format::Le32(block, tail + 4);
  *want = format::DxChecksum(block, count_offset, count,
                             static_cast<uint32_t>(tail), seed);
  return *stored != *want;
}

}  // namespace

struct Checker::EntryContext {
  uint32_t dir = 0;
  DirectoryInfo* info = nullptr;
  bool saw_dot = false;
  bool encrypted = false;  // names are ciphertext: any bytes
};

absl::Status Checker::CheckDirectories() {
  std::vector<uint32_t> inos;
  inos.reserve(directories_.size());
  for (const auto& [ino, info] : directories_) inos.push_back(ino);
  std::sort(inos.begin(), inos.end());
  for (uint32_t ino : inos) {
    E4_RETURN_IF_ERROR(CheckDirectory(ino, directories_[ino]));
  }
  return absl::OkStatus();
}

absl::Status Checker::CheckDirectory(uint32_t ino, DirectoryInfo& info) {
  std::vector<uint8_t> raw;
  auto loaded = LoadInode(ino, raw);
  if (!loaded.ok()) return absl::OkStatus();  // pass 1 reported it
  const format::Inode& inode = *loaded;
  const uint32_t bs = sb_.block_size();
  const bool csum = sb_.metadata_csum();
  const uint32_t seed = InodeSeed(ino, inode.generation);
  EntryContext ctx;
  ctx.dir = ino;
  ctx.info = &info;
  ctx.encrypted = (inode.flags & format::kInodeFlagEncrypt) != 0;

  auto bad_block = [&](uint64_t logical, const absl::Status& status) {
    Add("directory_block",
        absl::StrCat("directory ", ino, " block ", logical, ": ",
                     std::string(status.message())),
        ino);
  };

  if (inode.has_inline_data()) {
    format::Bytes iblock(inode.block);
    CheckEntry(ctx, ino, ".", format::kFtDirectory, 0);
    CheckEntry(ctx, format::Le32(iblock, 0), "..", format::kFtDirectory, 1);
    auto visit = [&](const format::RawDirEntry& e) {
      if (e.inode != 0) CheckEntry(ctx, e.inode, e.name, e.file_type, 2);
      return true;
    };
    absl::Status status = format::ForEachDirEntry(
        iblock.subspan(kInlineParentSize), false, visit);
    if (!status.ok()) bad_block(0, status);
    auto entries = format::ParseInodeXattrs(format::InodeXattrArea(raw, inode));
    if (entries.ok()) {
      for (const format::XattrEntry& e : *entries) {
        if (e.name_index != kSystemIndex || e.name != "data") continue;
        if (e.value.empty()) break;
        format::Bytes data(reinterpret_cast<const uint8_t*>(e.value.data()),
                           e.value.size());
        status = format::ForEachDirEntry(data, false, visit);
        if (!status.ok()) bad_block(1, status);
        break;
      }
    }
    return absl::OkStatus();
  }

  // The directory's blocks, up to its size (pass 1 reported blocks past
  // it), in logical order. Holes are reported a range at a time, and nothing
  // here is sized by the directory's size, which a bad inode can make huge.
  const uint64_t nblocks = inode.size / bs;
  std::vector<BlockRun> runs;
  for (const BlockRun& run : info.runs) {
    if (run.logical >= nblocks) continue;
    BlockRun clipped = run;
    clipped.length = static_cast<uint32_t>(
        std::min<uint64_t>(run.length, nblocks - run.logical));
    runs.push_back(clipped);
  }
  std::sort(runs.begin(), runs.end(), [](const BlockRun& a, const BlockRun& b) {
    return a.logical < b.logical;
  });
  uint64_t expected = 0;
  for (const BlockRun& run : runs) {
    if (run.logical > expected) {
      Add("directory_hole",
          absl::StrCat("directory ", ino, " has a hole at block",
                       run.logical - expected == 1 ? " " : "s ", expected,
                       run.logical - expected == 1
                           ? std::string()
                           : absl::StrCat("-", run.logical - 1)),
          ino);
    }
    expected = std::max<uint64_t>(expected, uint64_t{run.logical} + run.length);
  }
  // The physical block of a logical one; 0 for a hole.
  auto physical_of = [&runs](uint64_t logical) -> uint64_t {
    auto it = std::upper_bound(runs.begin(), runs.end(), logical,
                               [](uint64_t value, const BlockRun& run) {
                                 return value < run.logical;
                               });
    if (it == runs.begin()) return 0;
    --it;
    if (logical >= uint64_t{it->logical} + it->length) return 0;
    return it->physical + (logical - it->logical);
  };

  // The hash index, when there is one: the role of each block it names.
  const uint64_t block0 = physical_of(0);
  const bool htree = (inode.flags & format::kInodeFlagIndex) &&
                     sb_.has_compat(format::kCompatDirIndex) && block0 != 0;
  const bool large_dir = sb_.has_incompat(format::kIncompatLargeDir);
  absl::flat_hash_map<uint64_t, HtreeBlock> roles;
  bool indexed = false;
  bool can_hash = false;
  int hash_version = 0;
  const std::array<uint32_t, 4> hash_seed = {
      sb_.hash_seed[0], sb_.hash_seed[1], sb_.hash_seed[2], sb_.hash_seed[3]};
  if (htree) {
    E4_ASSIGN_OR_RETURN(io::BlockRef root_block, cache_->Read(block0));
    uint32_t stored = 0;
    uint32_t want = 0;
    if (csum && DxChecksumWrong(*root_block, format::kDxRootCountOffset, seed,
                                &stored, &want)) {
      Add("htree_checksum",
          absl::StrCat("directory ", ino, " htree root checksum is ",
                       Hex(stored), ", should be ", Hex(want)),
          ino);
    }
    auto root = format::ParseDxRoot(*root_block, csum, large_dir);
    if (!root.ok()) {
      Add("htree",
          absl::StrCat("directory ", ino, ": bad htree root: ",
                       std::string(root.status().message())),
          ino);
    } else {
      indexed = true;
      roles[0].role = BlockRole::kRoot;
      CheckEntry(ctx, root->dot_inode, ".", root->dot_file_type, 0);
      CheckEntry(ctx, root->dotdot_inode, "..", root->dotdot_file_type, 1);
      hash_version = root->hash_version;
      if (hash_version <= format::kHashTea && sb_.hash_unsigned()) {
        hash_version += 3;
      }
      can_hash = hash_version != format::kHashSiphash &&
                 !(inode.flags & format::kInodeFlagCasefold) &&
                 format::ComputeDxHash("x", hash_version, hash_seed).ok();

      // Walks the index: `entries` of a block at `level` (0: its children
      // are leaves) covering hashes [lo, hi].
      std::function<absl::Status(const format::DxEntries&, int, uint32_t,
                                 uint32_t)>
          walk = [&](const format::DxEntries& entries, int level, uint32_t lo,
                     uint32_t hi) -> absl::Status {
        for (size_t i = 0; i < entries.count(); ++i) {
          const uint32_t hash = entries.hash(i) & ~1u;
          if (i > 0 && (hash < lo || hash > hi)) {
            Add("htree",
                absl::StrCat("directory ", ino, ": index entry ", i, " hash ",
                             Hex(hash), " is outside [", Hex(lo), ", ", Hex(hi),
                             "]"),
                ino);
          }
          const uint32_t min_hash = i == 0 ? lo : hash;
          const uint32_t max_hash =
              i + 1 < entries.count() ? (entries.hash(i + 1) & ~1u) : hi;
          const uint32_t child = entries.block(i);
          if (child == 0 || child >= nblocks) {
            Add("htree",
                absl::StrCat("directory ", ino, ": index entry ", i,
                             " names block ", child, ", outside the directory"),
                ino);
            continue;
          }
          HtreeBlock& role = roles[child];
          if (role.role != BlockRole::kUnreferenced) {
            Add("htree",
                absl::StrCat("directory ", ino, ": block ", child,
                             " is referenced twice by the index"),
                ino);
            continue;
          }
          if (level == 0) {
            role = HtreeBlock{BlockRole::kLeaf, min_hash, max_hash};
            continue;
          }
          role.role = BlockRole::kNode;
          const uint64_t where = physical_of(child);
          if (where == 0) continue;  // a hole, reported above
          E4_ASSIGN_OR_RETURN(io::BlockRef block, cache_->Read(where));
          uint32_t node_stored = 0;
          uint32_t node_want = 0;
          if (csum && DxChecksumWrong(*block, format::kDxNodeCountOffset, seed,
                                      &node_stored, &node_want)) {
            Add("htree_checksum",
                absl::StrCat("directory ", ino, " index block ", child,
                             " checksum is ", Hex(node_stored), ", should be ",
                             Hex(node_want)),
                ino);
          }
          auto node = format::ParseDxNode(*block, csum);
          if (!node.ok()) {
            Add("htree",
                absl::StrCat("directory ", ino, ": index block ", child, ": ",
                             std::string(node.status().message())),
                ino);
            continue;
          }
          E4_RETURN_IF_ERROR(walk(*node, level - 1, min_hash, max_hash));
        }
        return absl::OkStatus();
      };
      E4_RETURN_IF_ERROR(
          walk(root->entries, root->indirect_levels, 0, 0xFFFFFFFFu));
    }
  }

  // Every block but the index's: entries, checksum tail, hash ranges.
  auto check_block = [&](uint64_t logical, uint64_t where) -> absl::Status {
    auto role = roles.find(logical);
    if (indexed && role != roles.end() &&
        (role->second.role == BlockRole::kRoot ||
         role->second.role == BlockRole::kNode)) {
      return absl::OkStatus();
    }
    E4_ASSIGN_OR_RETURN(io::BlockRef block, cache_->Read(where));
    bool tail = false;
    if (csum) {
      if (!format::HasDirCsumTail(*block)) {
        Add("directory_checksum",
            absl::StrCat("directory ", ino, " block ", logical,
                         " has no checksum tail"),
            ino);
      } else {
        tail = true;
        const uint32_t stored = format::Le32(*block, bs - 4);
        const uint32_t want = format::DirBlockChecksum(*block, seed);
        if (stored != want) {
          Add("directory_checksum",
              absl::StrCat("directory ", ino, " block ", logical,
                           " checksum is ", Hex(stored), ", should be ",
                           Hex(want)),
              ino);
        }
      }
    }
    const bool is_leaf =
        indexed && role != roles.end() && role->second.role == BlockRole::kLeaf;
    if (indexed && !is_leaf) {
      Add("htree",
          absl::StrCat("directory ", ino, " block ", logical,
                       " is not referenced by its index"),
          ino);
    }
    int record = 0;
    bool hash_reported = false;
    auto visit = [&](const format::RawDirEntry& e) {
      const int slot = (logical == 0 && !indexed) ? std::min(record, 2) : 2;
      ++record;
      if (slot < 2) {
        CheckEntry(ctx, e.inode, e.name, e.file_type, slot);
        return true;
      }
      if (e.inode == 0) return true;
      if (is_leaf && can_hash && !hash_reported) {
        auto hash = format::ComputeDxHash(e.name, hash_version, hash_seed);
        const HtreeBlock& range = role->second;
        if (hash.ok() &&
            (hash->major < range.min_hash || hash->major > range.max_hash)) {
          hash_reported = true;
          Add("htree",
              absl::StrCat("directory ", ino, " block ", logical, ": entry ",
                           Quote(e.name), " has hash ", Hex(hash->major),
                           ", outside the range [", Hex(range.min_hash), ", ",
                           Hex(range.max_hash), "] its index gives"),
              ino);
        }
      }
      CheckEntry(ctx, e.inode, e.name, e.file_type, 2);
      return true;
    };
    absl::Status status = format::ForEachDirEntry(*block, tail, visit);
    if (!status.ok()) bad_block(logical, status);
    return absl::OkStatus();
  };
  for (const BlockRun& run : runs) {
    for (uint64_t i = 0; i < run.length; ++i) {
      E4_RETURN_IF_ERROR(check_block(run.logical + i, run.physical + i));
    }
  }
  if (!ctx.saw_dot) {
    Add("dot", absl::StrCat("directory ", ino, " has no '.' entry"), ino);
  }
  if (!info.dotdot_seen) {
    Add("dotdot", absl::StrCat("directory ", ino, " has no '..' entry"), ino);
  }
  return absl::OkStatus();
}

void Checker::CheckEntry(EntryContext& ctx, uint32_t entry_inode,
                         std::string_view name, uint8_t file_type, int slot) {
  const uint32_t dir = ctx.dir;
  if (slot == 0) {
    if (name != ".") {
      Add("dot",
          absl::StrCat("the first entry of directory ", dir, " is ",
                       Quote(name), ", not '.'"),
          dir);
      if (entry_inode == 0 || name == "..") return;
    } else {
      ctx.saw_dot = true;
      if (entry_inode != dir) {
        Add("dot",
            absl::StrCat("'.' in directory ", dir, " names inode ",
                         entry_inode),
            dir);
      } else {
        found_links_.Increment(dir - 1);
      }
      return;
    }
  } else if (slot == 1) {
    if (name != "..") {
      Add("dotdot",
          absl::StrCat("the second entry of directory ", dir, " is ",
                       Quote(name), ", not '..'"),
          dir);
      if (entry_inode == 0 || name == ".") return;
    } else {
      ctx.info->dotdot = entry_inode;
      ctx.info->dotdot_seen = true;
      if (entry_inode != 0 && entry_inode <= sb_.inodes_count &&
          (InodeState(entry_inode) & kInUse)) {
        found_links_.Increment(entry_inode - 1);
      }
      return;
    }
  }
  if (entry_inode == 0) return;
  if (name == "." || name == "..") {
    Add("dirent_name",
        absl::StrCat("directory ", dir, " has an extra ", Quote(name),
                     " entry"),
        dir);
    return;
  }
  if (name.empty()) {
    Add("dirent_name",
        absl::StrCat("directory ", dir, " has an entry with an empty name"),
        dir);
  } else if (!ctx.encrypted && (name.find('/') != std::string_view::npos ||
                                name.find('\0') != std::string_view::npos)) {
    Add("dirent_name",
        absl::StrCat("entry ", Quote(name), " in directory ", dir,
                     " has an illegal character"),
        dir);
  }
  if (entry_inode > sb_.inodes_count ||
      (entry_inode < sb_.first_inode() && entry_inode != format::kRootDirIno)) {
    Add("dirent_inode",
        absl::StrCat("entry ", Quote(name), " in directory ", dir,
                     " names inode ", entry_inode,
                     entry_inode > sb_.inodes_count ? ", which does not exist"
                                                    : ", a reserved inode"),
        dir);
    return;
  }
  if (entry_inode == format::kRootDirIno) {
    Add("dirent_inode",
        absl::StrCat("entry ", Quote(name), " in directory ", dir,
                     " is a link to the root directory"),
        dir);
    return;
  }
  const uint8_t state = InodeState(entry_inode);
  if (!(state & kInUse)) {
    Add("dirent_inode",
        absl::StrCat("entry ", Quote(name), " in directory ", dir,
                     " names unused inode ", entry_inode),
        dir);
    return;
  }
  if (!(state & kBadMode)) {
    const uint8_t want = state & kTypeMask;
    const bool filetype = sb_.has_incompat(format::kIncompatFiletype);
    if (filetype ? file_type != want : file_type != 0) {
      Add("dirent_type",
          absl::StrCat("entry ", Quote(name), " in directory ", dir,
                       " has file type ", file_type, ", but inode ",
                       entry_inode, " is of type ", filetype ? want : 0),
          dir);
    }
  }
  if (state & kIsDirectory) {
    auto it = directories_.find(entry_inode);
    if (it != directories_.end()) {
      if (it->second.parent != 0) {
        Add("directory_hardlink",
            absl::StrCat("entry ", Quote(name), " in directory ", dir,
                         " is a second link to directory ", entry_inode,
                         " (the first is in directory ", it->second.parent,
                         ")"),
            dir);
        return;
      }
      it->second.parent = dir;
    }
  }
  found_links_.Increment(entry_inode - 1);
}

}  // namespace ext4::check
