// Inline data (inline_data): file bytes and directory entries kept in
// i_block and in the "system.data" xattr of the inode body. The input is one
// 256-byte inode (flags, then the inode, then operations), used twice:
//  - parts: the inode parsed on its own (ParseInode, the in-inode xattr
//    table, system.data), its inline directory listed and searched, changed
//    by the inline directory writers (AddInlineEntry, RemoveInlineEntry,
//    ReplaceInlineEntry, SetInlineParent, IsInlineEmpty,
//    ConvertInlineToBlock) and its system.data rewritten and removed by the
//    xattr writer. When the inline directory lists cleanly, every change
//    must show in the next listing and lookups; the xattr writer must leave
//    the other attributes alone, and leave the inode untouched on error;
//  - filesystem: the inode put in place of inode 12 of a small inline_data
//    filesystem made in memory (mkfs), mounted read-write and read and
//    changed through ext4::Filesystem (reads, writes that turn the inline
//    file into a block-mapped one, truncation, names added to and removed
//    from an inline directory, xattrs competing with system.data for the
//    inode body). Bytes written must read back, over the inline bytes read
//    before; the image is then checked with the read-only checker, whose
//    findings are not failures (the inode was hostile to begin with).
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/block_allocator.h"
#include "ext4/check/checker.h"
#include "ext4/directory.h"
#include "ext4/directory_writer.h"
#include "ext4/errno_status.h"
#include "ext4/filesystem.h"
#include "ext4/format/dirent.h"
#include "ext4/format/endian.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/format/xattr.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"
#include "ext4/mkfs/mkfs.h"
#include "ext4/mkfs/options.h"
#include "ext4/transaction.h"
#include "ext4/xattr_writer.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/shared_device.h"

namespace {

using ext4::DirectoryContext;
using ext4::DirEntry;
using ext4::Transaction;
using ext4::format::Bytes;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

constexpr uint32_t kInodeSize = 256;
constexpr uint32_t kBlockSize = 1024;
constexpr uint32_t kIno = 12;
constexpr uint8_t kSystemIndex = 7;  // "system.", with the name "data"
constexpr size_t kMaxListed = 512;
constexpr size_t kMaxOps = 24;

bool IsDot(std::string_view name) { return name == "." || name == ".."; }

// A name the writers accept: not empty, no '/' or NUL, not "." or "..".
bool ValidName(std::string_view name) {
  return !name.empty() && name.size() <= format::kDirNameMax && !IsDot(name) &&
         name.find_first_of(std::string_view("/\0", 2)) ==
             std::string_view::npos;
}

// ---------------------------------------------------------------------------
// Parts.

struct Listing {
  std::vector<DirEntry> entries;
  absl::Status status;
  bool complete = false;  // listed to the end without error or stop
};

Listing ListInline(const DirectoryContext& ctx, Bytes i_block, Bytes data,
                   uint64_t cookie = 0) {
  Listing out;
  out.status = ext4::ListInlineDirectory(
      ctx, i_block, data, cookie, [&](const DirEntry& entry) {
        FUZZ_CHECK(entry.name.size() <= format::kDirNameMax);
        FUZZ_CHECK(entry.next_cookie != 0 &&
                   entry.next_cookie < (uint64_t{1} << 63));
        out.entries.push_back(entry);
        return out.entries.size() < kMaxListed;
      });
  out.complete = out.status.ok() && out.entries.size() < kMaxListed;
  return out;
}

// The names of a clean listing, with their inode numbers, when no name is
// there twice and every entry names an inode (".." may list as 0).
bool UniqueNames(const Listing& listing, std::map<std::string, uint32_t>* out) {
  if (!listing.complete) return false;
  out->clear();
  for (const DirEntry& entry : listing.entries) {
    if (entry.ino == 0) return false;
    if (!out->emplace(entry.name, entry.ino).second) return false;
  }
  return true;
}

// What a clean listing must look like: "." and "..", then the records.
void CheckListing(const DirectoryContext& ctx, Bytes i_block,
                  const Listing& listing) {
  if (!listing.complete) return;
  FUZZ_CHECK(listing.entries.size() >= 2);
  FUZZ_CHECK(listing.entries[0].name == "." &&
             listing.entries[0].ino == ctx.ino);
  FUZZ_CHECK(listing.entries[1].name == ".." &&
             listing.entries[1].ino == format::Le32(i_block, 0));
  for (size_t i = 2; i < listing.entries.size(); ++i) {
    FUZZ_CHECK(listing.entries[i].ino != 0);
  }
}

// Lookups agree with a clean listing; resuming from a cookie goes on as the
// listing did.
void CheckLookups(const DirectoryContext& ctx, Bytes i_block, Bytes data,
                  const Listing& listing) {
  std::set<std::string> seen;
  for (size_t i = 0; i < listing.entries.size() && i < 32; ++i) {
    const DirEntry& entry = listing.entries[i];
    auto found = ext4::LookupInInlineDirectory(ctx, i_block, data, entry.name);
    // An empty name lists (as the kernel's readdir shows it) but is never
    // looked up.
    if (listing.complete && !entry.name.empty() &&
        seen.insert(entry.name).second) {
      FUZZ_CHECK(found.ok() && *found == entry.ino);
    }
    const Listing resumed = ListInline(ctx, i_block, data, entry.next_cookie);
    if (listing.complete) {
      FUZZ_CHECK(resumed.complete);
      FUZZ_CHECK(resumed.entries.size() == listing.entries.size() - i - 1);
      for (size_t j = 0; j < resumed.entries.size(); ++j) {
        FUZZ_CHECK(resumed.entries[j].name == listing.entries[i + 1 + j].name);
      }
    }
  }
  const std::string too_long(format::kDirNameMax + 1, 'n');
  auto long_lookup =
      ext4::LookupInInlineDirectory(ctx, i_block, data, too_long);
  FUZZ_CHECK(!long_lookup.ok() &&
             ext4::ErrnoOf(long_lookup.status()) == ENAMETOOLONG);
}

// A name for an operation: one the directory lists, or a new one.
std::string PickName(FuzzInput& in, const Listing& listing) {
  const uint8_t pick = in.U8();
  if ((pick & 0x80) == 0 && listing.entries.size() > 2) {
    return listing.entries[2 + pick % (listing.entries.size() - 2)].name;
  }
  std::string name = "n" + std::to_string(pick & 0x0F);
  name.resize(1 + (pick >> 4) % 8 * 3, 'q');
  return name;
}

// The inline directory writers on copies of i_block and system.data.
void RunDirectoryWriters(FuzzInput& in, const DirectoryContext& ctx,
                         std::array<uint8_t, 60> i_block,
                         std::vector<uint8_t> data, Transaction& tx) {
  for (int op = 0; op < 6 && in.remaining() > 0; ++op) {
    const Listing before = ListInline(ctx, i_block, data);
    std::map<std::string, uint32_t> names;
    const uint8_t kind = in.U8();
    const std::string name = PickName(in, before);
    // Whether the answer is known: a clean listing, a name the writers take.
    const bool clean =
        UniqueNames(before, &names) && (ValidName(name) || (kind % 6 >= 3));
    const uint32_t ino = 100 + in.U8();
    const bool existed = names.count(name) != 0;
    switch (kind % 6) {
      case 0: {
        auto added =
            ext4::AddInlineEntry(ctx, i_block, data, name, ino, S_IFREG);
        if (!clean) break;
        if (existed) {
          FUZZ_CHECK(!added.ok() && ext4::ErrnoOf(added.status()) == EEXIST);
        } else if (added.ok() && !*added) {
          const Listing after = ListInline(ctx, i_block, data);
          FUZZ_CHECK(after.complete &&
                     after.entries.size() == before.entries.size());
        } else if (added.ok()) {
          auto found = ext4::LookupInInlineDirectory(ctx, i_block, data, name);
          FUZZ_CHECK(found.ok() && *found == ino);
          const Listing after = ListInline(ctx, i_block, data);
          FUZZ_CHECK(after.complete &&
                     after.entries.size() == before.entries.size() + 1);
        }
        break;
      }
      case 1: {
        auto removed = ext4::RemoveInlineEntry(ctx, i_block, data, name);
        if (!clean) break;
        FUZZ_CHECK(removed.ok() == existed);
        if (removed.ok()) {
          auto found = ext4::LookupInInlineDirectory(ctx, i_block, data, name);
          FUZZ_CHECK(!found.ok() && ext4::ErrnoOf(found.status()) == ENOENT);
          const Listing after = ListInline(ctx, i_block, data);
          FUZZ_CHECK(after.complete &&
                     after.entries.size() + 1 == before.entries.size());
        }
        break;
      }
      case 2: {
        auto replaced =
            ext4::ReplaceInlineEntry(ctx, i_block, data, name, ino, S_IFDIR);
        if (!clean) break;
        FUZZ_CHECK(replaced.ok() == existed);
        if (replaced.ok()) {
          auto found = ext4::LookupInInlineDirectory(ctx, i_block, data, name);
          FUZZ_CHECK(found.ok() && *found == ino);
        }
        break;
      }
      case 3: {
        FUZZ_CHECK(ext4::SetInlineParent(i_block, ino).ok());
        auto parent = ext4::LookupInInlineDirectory(ctx, i_block, data, "..");
        FUZZ_CHECK(parent.ok() && *parent == ino);
        break;
      }
      case 4: {
        auto empty = ext4::IsInlineEmpty(i_block, data);
        if (clean) FUZZ_CHECK(empty.ok() && *empty == (names.size() == 2));
        break;
      }
      case 5: {
        // The block the directory becomes holds the same entries.
        std::vector<uint8_t> block(ctx.block_size, 0xAA);
        const absl::Status converted =
            ext4::ConvertInlineToBlock(tx, ctx, i_block, data, block, ctx.ino);
        if (!converted.ok()) {
          const int err = ext4::ErrnoOf(converted);
          FUZZ_CHECK(err == EUCLEAN || err == ENOSPC);
          break;
        }
        std::map<std::string, uint32_t> listed;
        const absl::Status status = format::ForEachDirEntry(
            block, ctx.metadata_csum, [&](const format::RawDirEntry& entry) {
              if (entry.inode != 0)
                listed[std::string(entry.name)] = entry.inode;
              return true;
            });
        if (clean) {
          FUZZ_CHECK(status.ok());
          FUZZ_CHECK(listed == names);
        }
        break;
      }
    }
  }
}

class NoBlocks final : public ext4::BlockAllocator {
 public:
  absl::StatusOr<ext4::BlockRun> AllocateBlocks(Transaction&, uint64_t,
                                                uint64_t, bool) override {
    return ext4::ErrnoError(ENOSPC, "no blocks");
  }
  absl::Status FreeBlocks(Transaction&, uint64_t, uint64_t) override {
    return ext4::Corrupt("no blocks to free");
  }
};

struct Attr {
  uint8_t index;
  std::string name;
  std::string value;
  auto operator<=>(const Attr&) const = default;
};

absl::StatusOr<std::vector<Attr>> BodyAttrs(Bytes raw,
                                            const format::Inode& inode) {
  std::vector<Attr> out;
  Bytes area = format::InodeXattrArea(raw, inode);
  if (area.empty()) return out;
  E4_ASSIGN_OR_RETURN(auto entries, format::ParseInodeXattrs(area));
  for (const auto& e : entries) out.push_back({e.name_index, e.name, e.value});
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Attr> Without(std::vector<Attr> attrs, uint8_t index,
                          std::string_view name) {
  std::erase_if(
      attrs, [&](const Attr& a) { return a.index == index && a.name == name; });
  return attrs;
}

// system.data rewritten, then removed, through the xattr writer.
void RunXattrWriter(FuzzInput& in, const format::Superblock& sb,
                    format::Inode inode, std::vector<uint8_t> raw,
                    Transaction& tx) {
  inode.file_acl = 0;  // the inode body only
  ext4::XattrWriteContext xctx{kBlockSize, false, 0, kInodeSize, false};
  NoBlocks allocator;
  auto before = BodyAttrs(raw, inode);
  if (!before.ok()) return;
  // With system.data there twice, which one changes is not defined.
  if (std::count_if(before->begin(), before->end(), [](const Attr& a) {
        return a.index == kSystemIndex && a.name == "data";
      }) > 1) {
    return;
  }
  const size_t length = in.U8() % 160;
  const std::string value(length, static_cast<char>('a' + length % 26));
  {
    const std::vector<uint8_t> raw_copy = raw;
    const format::Inode inode_copy = inode;
    const absl::Status set = ext4::SetXattrIndexed(
        tx, xctx, inode, raw, allocator, 0, kSystemIndex, "data", value, 0,
        /*inode_body_only=*/true);
    if (!set.ok()) {
      FUZZ_CHECK(raw == raw_copy);
      FUZZ_CHECK(inode.file_acl == inode_copy.file_acl &&
                 inode.blocks == inode_copy.blocks);
      return;
    }
    format::SerializeInode(inode, kIno, sb, raw);
    auto parsed = format::ParseInode(raw, kIno, sb);
    FUZZ_CHECK(parsed.ok());
    auto after = BodyAttrs(raw, *parsed);
    FUZZ_CHECK(after.ok());
    FUZZ_CHECK(Without(*after, kSystemIndex, "data") ==
               Without(*before, kSystemIndex, "data"));
    FUZZ_CHECK(std::count(after->begin(), after->end(),
                          Attr{kSystemIndex, "data", value}) == 1);
  }
  const absl::Status removed = ext4::RemoveXattrIndexed(
      tx, xctx, inode, raw, allocator, kSystemIndex, "data");
  FUZZ_CHECK(removed.ok());
  format::SerializeInode(inode, kIno, sb, raw);
  auto parsed = format::ParseInode(raw, kIno, sb);
  FUZZ_CHECK(parsed.ok());
  auto after = BodyAttrs(raw, *parsed);
  FUZZ_CHECK(after.ok());
  FUZZ_CHECK(*after == Without(*before, kSystemIndex, "data"));
}

void RunParts(Bytes raw_in, FuzzInput& in) {
  ext4::fuzz::SuperblockSpec spec;
  spec.log_block_size = 0;
  spec.inode_size = kInodeSize;
  format::Superblock sb = ext4::fuzz::MakeSuperblock(spec);
  sb.feature_incompat |= format::kIncompatInlineData;
  std::vector<uint8_t> raw(raw_in.begin(), raw_in.end());
  raw.resize(kInodeSize, 0);
  auto inode = format::ParseInode(raw, kIno, sb);
  if (!inode.ok()) return;

  std::string system_data;
  Bytes area = format::InodeXattrArea(raw, *inode);
  if (!area.empty()) {
    auto entries = format::ParseInodeXattrs(area);
    if (entries.ok()) {
      for (const auto& entry : *entries) {
        if (entry.name_index == kSystemIndex && entry.name == "data") {
          system_data = entry.value;
          break;
        }
      }
    }
  }
  const Bytes i_block(inode->block.data(), inode->block.size());
  const Bytes data(reinterpret_cast<const uint8_t*>(system_data.data()),
                   system_data.size());

  DirectoryContext ctx;
  ctx.ino = kIno;
  ctx.block_size = kBlockSize;
  ctx.filetype = true;
  const Listing listing = ListInline(ctx, i_block, data);
  CheckListing(ctx, i_block, listing);
  CheckLookups(ctx, i_block, data, listing);
  std::map<std::string, uint32_t> names;
  auto empty = ext4::IsInlineEmpty(i_block, data);
  if (UniqueNames(listing, &names)) {
    FUZZ_CHECK(empty.ok() && *empty == (names.size() == 2));
  }

  auto device = ext4::io::MemoryDevice(std::vector<uint8_t>(16 * kBlockSize));
  ext4::io::BlockCache cache(*device, kBlockSize, 16, 16);
  Transaction tx(cache);
  RunDirectoryWriters(in, ctx, inode->block,
                      std::vector<uint8_t>(data.begin(), data.end()), tx);
  RunXattrWriter(in, sb, *inode, raw, tx);
}

// ---------------------------------------------------------------------------
// The filesystem.

ext4::MountOptions Options() {
  ext4::MountOptions options;
  options.read_only = false;
  options.no_recovery = true;
  options.inode_cache_limit = 32;
  options.block_cache_limit = 64;
  options.commit_interval_seconds = 0;
  options.errors = ext4::ErrorsPolicy::kContinue;  // never errors=panic
  return options;
}

// A 512 KiB inline_data filesystem (1 KiB blocks, 256-byte inodes, with or
// without metadata_csum) holding /f, inode 12 (its inode is what the input
// replaces), made once.
const std::vector<uint8_t>& Template(bool csum) {
  static std::vector<uint8_t> images[2];
  std::vector<uint8_t>& image = images[csum];
  if (!image.empty()) return image;
  image.assign(512 * 1024, 0);
  ext4::mkfs::MkfsOptions options;
  options.block_size = kBlockSize;
  options.inode_size = kInodeSize;
  options.inode_count = 64;
  options.time = 1700000000;
  options.uuid.fill(0x42);
  options.hash_seed.fill(0x17);
  FUZZ_CHECK(ext4::mkfs::ApplyFeatureList(
                 csum ? "inline_data,^has_journal"
                      : "inline_data,^has_journal,^metadata_csum",
                 options.features)
                 .ok());
  ext4::fuzz::SharedDevice device(image);
  FUZZ_CHECK(ext4::mkfs::MakeFilesystem(device, options).ok());
  auto fs = ext4::Filesystem::Open(
      std::make_unique<ext4::fuzz::SharedDevice>(image), Options());
  FUZZ_CHECK(fs.ok());
  auto file = (*fs)->Create(ext4::kRootInode, "f", S_IFREG | 0644, {});
  FUZZ_CHECK(file.ok() && file->ino == kIno);
  FUZZ_CHECK((*fs)->SyncAll().ok());
  return image;
}

// Where inode 12 sits in the image.
uint64_t InodeOffset(const std::vector<uint8_t>& image) {
  auto sb = format::ParseSuperblock(Bytes(image).subspan(1024, 1024));
  FUZZ_CHECK(sb.ok());
  // The descriptor table is block 2 with 1 KiB blocks; bg_inode_table_lo at
  // offset 8 (the high half is zero in so small an image).
  const uint64_t table = format::Le32(Bytes(image), 2 * kBlockSize + 8);
  return table * kBlockSize + uint64_t{kIno - 1} * sb->inode_size();
}

bool Expected(int err) {
  switch (err) {
    case EUCLEAN:
    case EIO:
    case ENOENT:
    case EEXIST:
    case ENOSPC:
    case ENOTDIR:
    case EISDIR:
    case ENOTEMPTY:
    case EINVAL:
    case ENODATA:
    case ERANGE:
    case EFBIG:
    case EMLINK:
    case EOPNOTSUPP:
    case E2BIG:
    case ENXIO:
    case EPERM:
    case EROFS:  // after errors=remount-ro
      return true;
    default:
      return false;
  }
}

void CheckErrno(const absl::Status& status) {
  if (status.ok()) return;
  if (!Expected(ext4::ErrnoOf(status))) {
    std::fprintf(stderr, "unexpected error: %s\n",
                 std::string(status.ToString()).c_str());
    FUZZ_CHECK(false);
  }
}

// The file's bytes as the model knows them, once a clean read gave them.
struct FileModel {
  bool known = false;
  std::vector<uint8_t> bytes;
};

constexpr size_t kModelLimit = 8192;

void RunFilesystem(Bytes raw_in, bool csum, FuzzInput& in) {
  std::vector<uint8_t> image = Template(csum);
  const uint64_t at = InodeOffset(image);
  std::vector<uint8_t> raw(raw_in.begin(), raw_in.end());
  raw.resize(kInodeSize, 0);
  auto sb = format::ParseSuperblock(Bytes(image).subspan(1024, 1024));
  FUZZ_CHECK(sb.ok());
  if (csum) {
    // Set the checksum the input's bytes call for, so that the engine
    // reads on (checksum failures have their own fuzz targets).
    const uint32_t sum = format::InodeChecksum(raw, kIno, *sb);
    format::Put16(raw, 0x7C, static_cast<uint16_t>(sum));
    if (format::Le16(raw, 0x80) >= 4) {
      format::Put16(raw, 0x82, static_cast<uint16_t>(sum >> 16));
    }
  }
  std::copy(raw.begin(), raw.end(), image.begin() + at);

  {
    auto opened = ext4::Filesystem::Open(
        std::make_unique<ext4::fuzz::SharedDevice>(image), Options());
    FUZZ_CHECK(opened.ok());
    ext4::Filesystem& fs = **opened;
    auto attr = fs.GetAttr(kIno);
    CheckErrno(attr.status());
    if (!attr.ok()) return;
    const bool was_inline =
        (format::Le32(raw, 0x20) & format::kInodeFlagInlineData) != 0;
    FileModel model;
    if (S_ISREG(attr->mode) && attr->size <= kModelLimit) {
      model.bytes.assign(attr->size, 0);
      auto read = fs.Read(kIno, 0, model.bytes);
      CheckErrno(read.status());
      model.known = was_inline && read.ok() && *read == attr->size;
    }
    (void)fs.ListXattrs(kIno);
    (void)fs.GetXattr(kIno, "user.a");
    (void)fs.ReadLink(kIno);
    const ext4::Credentials who;
    for (size_t op = 0; op < kMaxOps && in.remaining() > 0; ++op) {
      const uint8_t kind = in.U8();
      const uint16_t a = in.U16();
      const uint8_t b = in.U8();
      const std::string name = "e" + std::to_string(a % 8);
      switch (kind % 12) {
        case 0: {
          std::vector<uint8_t> out(b + 1);
          auto read = fs.Read(kIno, a % kModelLimit, out);
          CheckErrno(read.status());
          if (model.known && read.ok()) {
            const size_t off = a % kModelLimit;
            const size_t want =
                off < model.bytes.size()
                    ? std::min(out.size(), model.bytes.size() - off)
                    : 0;
            FUZZ_CHECK(*read == want);
            // (No iterator past the model's end: it may be empty.)
            FUZZ_CHECK(want == 0 || std::equal(out.begin(), out.begin() + want,
                                               model.bytes.begin() + off));
          }
          break;
        }
        case 1: {
          const size_t off = a % kModelLimit;
          std::vector<uint8_t> data(1 + b % 200, static_cast<uint8_t>(kind));
          auto written = fs.Write(kIno, off, data, who);
          CheckErrno(written.status());
          if (!written.ok()) {
            model.known = false;
            break;
          }
          FUZZ_CHECK(*written == data.size());
          if (model.known) {
            if (model.bytes.size() < off + data.size()) {
              model.bytes.resize(off + data.size(), 0);
            }
            std::copy(data.begin(), data.end(), model.bytes.begin() + off);
            std::vector<uint8_t> back(model.bytes.size());
            auto read = fs.Read(kIno, 0, back);
            FUZZ_CHECK(read.ok() && *read == back.size());
            FUZZ_CHECK(back == model.bytes);
          }
          break;
        }
        case 2: {
          ext4::SetAttrRequest request;
          request.size = a % kModelLimit;
          auto set = fs.SetAttr(kIno, request, who);
          CheckErrno(set.status());
          if (!set.ok()) {
            model.known = false;
          } else if (model.known) {
            model.bytes.resize(*request.size, 0);
          }
          break;
        }
        case 3:
          CheckErrno(fs.Create(kIno, name, S_IFREG | 0644, who).status());
          break;
        case 4:
          CheckErrno(fs.Unlink(kIno, name));
          break;
        case 5:
          CheckErrno(fs.MakeDirectory(kIno, name, 0755, who).status());
          break;
        case 6:
          CheckErrno(fs.RemoveDirectory(kIno, name));
          break;
        case 7:
          CheckErrno(fs.Rename(kIno, name, kIno, "r" + name, 0));
          break;
        case 8: {
          const std::string value(b, 'v');
          CheckErrno(fs.SetXattr(kIno, "user." + name, value, 0));
          break;
        }
        case 9:
          CheckErrno(fs.RemoveXattr(kIno, b & 1 ? "user.a" : "user." + name));
          break;
        case 10: {
          std::vector<ext4::DirEntry> entries;
          CheckErrno(fs.ReadDir(kIno, 0, [&](const ext4::DirEntry& entry) {
            entries.push_back(entry);
            return entries.size() < kMaxListed;
          }));
          for (size_t i = 0; i < entries.size() && i < 16; ++i) {
            (void)fs.Lookup(kIno, entries[i].name);
          }
          break;
        }
        case 11:
          CheckErrno(fs.Seek(kIno, a, b & 1 ? SEEK_HOLE : SEEK_DATA).status());
          break;
      }
      if (model.known && (kind % 12) >= 3 && (kind % 12) <= 9) {
        // A name or xattr change may move the inline bytes, never change
        // them.
        auto now = fs.GetAttr(kIno);
        FUZZ_CHECK(now.ok());
        std::vector<uint8_t> back(now->size);
        if (back.size() == model.bytes.size()) {
          auto read = fs.Read(kIno, 0, back);
          FUZZ_CHECK(read.ok() && back == model.bytes);
        }
      }
    }
    CheckErrno(fs.SyncAll());
  }
  ext4::fuzz::SharedDevice device(image);
  (void)ext4::check::CheckFilesystem(device);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.U8();
  const Bytes raw = in.Take(kInodeSize);
  // The operations of both parts come from the same bytes.
  const Bytes ops = in.Rest();
  FuzzInput parts_in(ops.data(), ops.size());
  RunParts(raw, parts_in);
  FuzzInput fs_in(ops.data(), ops.size());
  RunFilesystem(raw, flags & 1, fs_in);
  return 0;
}
