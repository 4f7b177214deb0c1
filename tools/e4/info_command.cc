// e4 info: the superblock, the journal superblock and every group
// descriptor of an image, parsed as they are on disk (as dumpe2fs shows
// them); no mount, so it also works on images the engine would refuse.
#include <cinttypes>
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/inode.h"
#include "ext4/format/journal.h"
#include "ext4/format/superblock.h"
#include "tools/e4/cli.h"
#include "tools/e4/commands.h"
#include "tools/e4/image_path.h"
#include "tools/e4/json.h"
#include "tools/e4/raw_image.h"
#include "tools/e4/text_format.h"

namespace e4cli {
namespace {

namespace format = ext4::format;

constexpr char kInfoUsage[] =
    "Usage: e4 info [OPTIONS] IMAGE\n"
    "Shows an image's superblock (geometry, counts, features, state, times),\n"
    "its journal's superblock, and each block group's descriptor: where its\n"
    "bitmaps and inode table are, its free counts and flags. The image is\n"
    "read as it is on disk, without replaying a journal.\n"
    "\n"
    "  -H, --header  the superblock and journal only, no groups\n"
    "      --json    JSON: {\"superblock\": {...}, \"features\": [...],\n"
    "                \"journal\": {...}, \"groups\": [...]}\n"
    "  -h, --help    this help\n";

using Value = std::variant<std::string, uint64_t, int64_t>;

struct Field {
  std::string label;  // for text
  std::string key;    // for JSON
  Value value;
};

class Section {
 public:
  void Add(std::string label, std::string key, Value value) {
    fields_.push_back({std::move(label), std::move(key), std::move(value)});
  }
  void Print(std::string* out) const {
    for (const Field& f : fields_) {
      std::string label = f.label + ":";
      if (label.size() < 26) label.resize(26, ' ');
      absl::StrAppend(out, label, ToText(f.value), "\n");
    }
  }
  void Json(JsonWriter& j) const {
    j.BeginObject();
    for (const Field& f : fields_) {
      j.Key(f.key);
      if (auto* s = std::get_if<std::string>(&f.value)) {
        j.String(*s);
      } else if (auto* u = std::get_if<uint64_t>(&f.value)) {
        j.Uint(*u);
      } else {
        j.Int(std::get<int64_t>(f.value));
      }
    }
    j.EndObject();
  }

 private:
  static std::string ToText(const Value& v) {
    if (auto* s = std::get_if<std::string>(&v)) return *s;
    if (auto* u = std::get_if<uint64_t>(&v)) return absl::StrCat(*u);
    return absl::StrCat(std::get<int64_t>(v));
  }
  std::vector<Field> fields_;
};

std::string Uuid(const uint8_t* u) {
  char buf[40];
  std::snprintf(
      buf, sizeof(buf),
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
      u[12], u[13], u[14], u[15]);
  return buf;
}

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

std::string HexValue(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%08" PRIx64, v);
  return buf;
}

std::string Words(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words)
    absl::StrAppend(&out, out.empty() ? "" : " ", w);
  return out.empty() ? "(none)" : out;
}

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find(' ', i);
    if (end == std::string::npos) end = text.size();
    if (end > i) out.push_back(text.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

std::string HashName(uint8_t version) {
  switch (version) {
    case format::kHashLegacy:
      return "legacy";
    case format::kHashHalfMd4:
      return "half_md4";
    case format::kHashTea:
      return "tea";
    case format::kHashLegacyUnsigned:
      return "legacy_unsigned";
    case format::kHashHalfMd4Unsigned:
      return "half_md4_unsigned";
    case format::kHashTeaUnsigned:
      return "tea_unsigned";
    case format::kHashSiphash:
      return "siphash";
    default:
      return absl::StrCat("unknown (", version, ")");
  }
}

Section SuperblockSection(const format::Superblock& sb) {
  Section s;
  s.Add("Filesystem volume name", "volume_name",
        sb.volume_name.empty() ? "<none>" : sb.volume_name);
  s.Add("Last mounted on", "last_mounted",
        sb.last_mounted.empty() ? "<not available>" : sb.last_mounted);
  s.Add("Filesystem UUID", "uuid", Uuid(sb.uuid));
  char magic[16];
  std::snprintf(magic, sizeof(magic), "0x%04X", sb.magic);
  s.Add("Filesystem magic number", "magic", std::string(magic));
  s.Add("Filesystem revision #", "revision",
        absl::StrCat(sb.rev_level, sb.rev_level == format::kDynamicRevision
                                       ? " (dynamic)"
                                   : sb.rev_level == format::kGoodOldRevision
                                       ? " (original)"
                                       : " (unknown)"));
  s.Add("Filesystem features", "features_text",
        Words(Split(format::FeatureNames(sb))));
  std::vector<std::string> flags;
  if (sb.flags & format::kFlagsSignedHash)
    flags.push_back("signed_directory_hash");
  if (sb.flags & format::kFlagsUnsignedHash) {
    flags.push_back("unsigned_directory_hash");
  }
  if (sb.flags & format::kFlagsTestFilesystem)
    flags.push_back("test_filesystem");
  s.Add("Filesystem flags", "flags", Words(flags));
  std::vector<std::string> opts;
  const uint32_t dm = sb.default_mount_opts;
  if (dm & format::kDefaultMountDebug) opts.push_back("debug");
  if (dm & format::kDefaultMountBsdGroups) opts.push_back("bsdgroups");
  if (dm & format::kDefaultMountXattrUser) opts.push_back("user_xattr");
  if (dm & format::kDefaultMountAcl) opts.push_back("acl");
  if (dm & format::kDefaultMountUid16) opts.push_back("uid16");
  switch (dm & format::kDefaultMountJournalModeMask) {
    case format::kDefaultMountJournalData:
      opts.push_back("journal_data");
      break;
    case format::kDefaultMountJournalOrdered:
      opts.push_back("journal_data_ordered");
      break;
    case format::kDefaultMountJournalWriteback:
      opts.push_back("journal_data_writeback");
      break;
  }
  if (dm & format::kDefaultMountNoBarrier) opts.push_back("nobarrier");
  if (dm & format::kDefaultMountBlockValidity) opts.push_back("block_validity");
  if (dm & format::kDefaultMountDiscard) opts.push_back("discard");
  if (dm & format::kDefaultMountNoDelalloc) opts.push_back("nodelalloc");
  s.Add("Default mount options", "default_mount_options", Words(opts));
  std::string state = (sb.state & format::kStateValid) ? "clean" : "not clean";
  if (sb.state & format::kStateError) state += " with errors";
  if (sb.state & format::kStateOrphan) state += ", orphans being recovered";
  s.Add("Filesystem state", "state", state);
  s.Add("Errors behavior", "errors",
        sb.errors == format::kErrorsContinue   ? "Continue"
        : sb.errors == format::kErrorsReadOnly ? "Remount read-only"
        : sb.errors == format::kErrorsPanic
            ? "Panic"
            : absl::StrCat("unknown (", sb.errors, ")"));
  static const char* const kOs[] = {"Linux", "Hurd", "Masix", "FreeBSD",
                                    "Lites"};
  s.Add("Filesystem OS type", "os",
        sb.creator_os < 5 ? kOs[sb.creator_os]
                          : absl::StrCat("unknown (", sb.creator_os, ")"));
  s.Add("Inode count", "inodes_count", uint64_t{sb.inodes_count});
  s.Add("Block count", "blocks_count", sb.blocks_count);
  s.Add("Reserved block count", "r_blocks_count", sb.r_blocks_count);
  if (sb.overhead_clusters != 0) {
    s.Add("Overhead clusters", "overhead_clusters",
          uint64_t{sb.overhead_clusters});
  }
  s.Add("Free blocks", "free_blocks_count", sb.free_blocks_count);
  s.Add("Free inodes", "free_inodes_count", uint64_t{sb.free_inodes_count});
  s.Add("First block", "first_data_block", uint64_t{sb.first_data_block});
  s.Add("Block size", "block_size", uint64_t{sb.block_size()});
  if (sb.bigalloc()) {
    s.Add("Cluster size", "cluster_size", uint64_t{sb.cluster_size()});
  } else {
    s.Add("Fragment size", "fragment_size", uint64_t{sb.cluster_size()});
  }
  if (sb.is_64bit()) {
    s.Add("Group descriptor size", "desc_size", uint64_t{sb.descriptor_size()});
  }
  s.Add("Reserved GDT blocks", "reserved_gdt_blocks",
        uint64_t{sb.reserved_gdt_blocks});
  s.Add("Blocks per group", "blocks_per_group", uint64_t{sb.blocks_per_group});
  if (sb.bigalloc()) {
    s.Add("Clusters per group", "clusters_per_group",
          uint64_t{sb.clusters_per_group});
  }
  s.Add("Inodes per group", "inodes_per_group", uint64_t{sb.inodes_per_group});
  s.Add("Inode blocks per group", "inode_blocks_per_group",
        uint64_t{sb.inode_table_blocks()});
  s.Add("Group count", "group_count", uint64_t{sb.group_count()});
  if (sb.has_incompat(format::kIncompatFlexBg)) {
    s.Add("Flex block group size", "flex_bg_size",
          uint64_t{1} << (sb.log_groups_per_flex & 31));
  }
  if (sb.first_meta_bg != 0 || sb.has_incompat(format::kIncompatMetaBg)) {
    s.Add("First meta block group", "first_meta_bg",
          uint64_t{sb.first_meta_bg});
  }
  s.Add("Filesystem created", "mkfs_time", DateTime(sb.mkfs_time));
  s.Add("Last mount time", "mtime", DateTime(sb.mtime));
  s.Add("Last write time", "wtime", DateTime(sb.wtime));
  s.Add("Mount count", "mnt_count", uint64_t{sb.mnt_count});
  s.Add("Maximum mount count", "max_mnt_count", int64_t{sb.max_mnt_count});
  s.Add("Last checked", "lastcheck", DateTime(sb.lastcheck));
  s.Add("Check interval", "checkinterval", uint64_t{sb.checkinterval});
  if (sb.kbytes_written != 0) {
    s.Add("Lifetime writes", "kbytes_written",
          HumanBytes(sb.kbytes_written * 1024));
  }
  s.Add("Reserved blocks uid", "def_resuid", uint64_t{sb.def_resuid});
  s.Add("Reserved blocks gid", "def_resgid", uint64_t{sb.def_resgid});
  s.Add("First inode", "first_inode", uint64_t{sb.first_inode()});
  s.Add("Inode size", "inode_size", uint64_t{sb.inode_size()});
  if (sb.inode_size() > 128) {
    s.Add("Required extra isize", "min_extra_isize",
          uint64_t{sb.min_extra_isize});
    s.Add("Desired extra isize", "want_extra_isize",
          uint64_t{sb.want_extra_isize});
  }
  if (!AllZero(sb.journal_uuid, 16)) {
    s.Add("Journal UUID", "journal_uuid", Uuid(sb.journal_uuid));
  }
  if (sb.journal_inum != 0) {
    s.Add("Journal inode", "journal_inum", uint64_t{sb.journal_inum});
  }
  if (sb.journal_dev != 0) {
    s.Add("Journal device", "journal_dev", HexValue(sb.journal_dev));
  }
  if (sb.last_orphan != 0) {
    s.Add("First orphan inode", "last_orphan", uint64_t{sb.last_orphan});
  }
  if (sb.orphan_file_inum != 0) {
    s.Add("Orphan file inode", "orphan_file_inum",
          uint64_t{sb.orphan_file_inum});
  }
  if (sb.lpf_ino != 0)
    s.Add("Lost+found inode", "lpf_ino", uint64_t{sb.lpf_ino});
  s.Add("Default directory hash", "def_hash_version",
        HashName(sb.def_hash_version));
  uint8_t seed[16];
  for (int i = 0; i < 4; ++i) {
    for (int k = 0; k < 4; ++k)
      seed[i * 4 + k] = (sb.hash_seed[i] >> (8 * k)) & 0xFF;
  }
  s.Add("Directory Hash Seed", "hash_seed", Uuid(seed));
  if (sb.jnl_backup_type == format::kJournalBackupInodeBlocks) {
    s.Add("Journal backup", "jnl_backup", "inode blocks");
  }
  if (sb.error_count != 0) {
    s.Add("FS Error count", "error_count", uint64_t{sb.error_count});
    s.Add("First error time", "first_error_time",
          DateTime(sb.first_error_time));
    s.Add("First error function", "first_error_func", sb.first_error_func);
    s.Add("First error line #", "first_error_line",
          uint64_t{sb.first_error_line});
    s.Add("First error inode #", "first_error_ino",
          uint64_t{sb.first_error_ino});
    s.Add("First error block #", "first_error_block", sb.first_error_block);
    s.Add("Last error time", "last_error_time", DateTime(sb.last_error_time));
    s.Add("Last error function", "last_error_func", sb.last_error_func);
    s.Add("Last error line #", "last_error_line", uint64_t{sb.last_error_line});
    s.Add("Last error inode #", "last_error_ino", uint64_t{sb.last_error_ino});
    s.Add("Last error block #", "last_error_block", sb.last_error_block);
  }
  if (sb.metadata_csum()) {
    s.Add("Checksum type", "checksum_type",
          sb.checksum_type == format::kChecksumTypeCrc32c
              ? std::string("crc32c")
              : absl::StrCat("unknown (", sb.checksum_type, ")"));
    s.Add("Checksum", "checksum", HexValue(sb.checksum));
    if (sb.has_incompat(format::kIncompatCsumSeed)) {
      s.Add("Checksum seed", "checksum_seed", HexValue(sb.raw_checksum_seed));
    }
  }
  return s;
}

// The journal superblock, read through the journal inode's block 0.
absl::StatusOr<Section> JournalSection(RawImage& image) {
  const format::Superblock& sb = image.sb();
  E4_ASSIGN_OR_RETURN(RawInode inode, image.Inode(sb.journal_inum));
  std::unique_ptr<ext4::FileMap> map = image.Map(inode);
  E4_ASSIGN_OR_RETURN(ext4::BlockMapping first, map->Map(0));
  if (first.physical == 0) {
    return ext4::Corrupt("the journal's first block is not mapped");
  }
  std::vector<uint8_t> block(sb.block_size());
  E4_RETURN_IF_ERROR(
      image.device().ReadAt(first.physical * sb.block_size(), block));
  E4_ASSIGN_OR_RETURN(format::JournalSuperblock jsb,
                      format::ParseJournalSuperblock(block));
  Section s;
  std::vector<std::string> features;
  if (jsb.compat_checksum()) features.push_back("journal_checksum");
  if (jsb.revoke()) features.push_back("journal_incompat_revoke");
  if (jsb.has_64bit()) features.push_back("journal_64bit");
  if (jsb.async_commit()) features.push_back("journal_async_commit");
  if (jsb.csum_v2()) features.push_back("journal_checksum_v2");
  if (jsb.csum_v3()) features.push_back("journal_checksum_v3");
  if (jsb.fast_commit()) features.push_back("journal_fast_commit");
  s.Add("Journal features", "features", Words(features));
  s.Add("Total journal size", "size",
        HumanBytes(uint64_t{jsb.max_len} * jsb.block_size));
  s.Add("Total journal blocks", "blocks", uint64_t{jsb.max_len});
  s.Add("Max transaction length", "max_transaction",
        uint64_t{jsb.max_transaction ? jsb.max_transaction : jsb.max_len});
  s.Add("Fast commit length", "fast_commit_blocks",
        uint64_t{jsb.num_fc_blocks()});
  s.Add("Journal first block", "first", uint64_t{jsb.first});
  s.Add("Journal sequence", "sequence", HexValue(jsb.sequence));
  s.Add("Journal start", "start", uint64_t{jsb.start});
  if (jsb.csum_v2_or_v3()) {
    s.Add("Journal checksum type", "checksum_type",
          jsb.checksum_type == format::kJournalChecksumCrc32c
              ? std::string("crc32c")
              : absl::StrCat(jsb.checksum_type));
    s.Add("Journal checksum", "checksum", HexValue(jsb.checksum));
  }
  if (jsb.error != 0) {
    s.Add("Journal errno", "errno", int64_t{static_cast<int32_t>(jsb.error)});
  }
  return s;
}

struct GroupInfo {
  uint32_t group = 0;
  uint64_t first = 0, last = 0;
  absl::StatusOr<format::GroupDescriptor> gd;
  bool superblock = false;
};

std::string GroupFlags(uint16_t flags) {
  std::vector<std::string> names;
  if (flags & format::kBgInodeUninit) names.push_back("INODE_UNINIT");
  if (flags & format::kBgBlockUninit) names.push_back("BLOCK_UNINIT");
  if (flags & format::kBgInodeZeroed) names.push_back("ITABLE_ZEROED");
  if (flags & ~0x7) names.push_back(HexValue(flags & ~0x7));
  std::string out;
  for (const std::string& n : names)
    absl::StrAppend(&out, out.empty() ? "" : ", ", n);
  return out;
}

}  // namespace

int RunInfo(int argc, char** argv) {
  Command cmd("info", kInfoUsage);
  bool json_out = false;
  bool header_only = false;
  std::vector<std::string> operands;
  constexpr int kJson = 0x100;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "H",
          {{"json", no_argument, nullptr, kJson},
           {"header", no_argument, nullptr, 'H'}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == kJson) json_out = true;
            if (c == 'H') header_only = true;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.size() != 1) return cmd.UsageError("expected one IMAGE");
  std::string file = operands[0];
  // IMAGE:/path is accepted too (the path is ignored).
  if (IsImagePath(file)) file = ParseImagePath(file)->image;
  auto device = OpenDevice(file);
  if (!device.ok()) return cmd.Fail(file + ": " + StatusText(device.status()));
  auto opened = RawImage::Open(*device, /*replay_journal=*/false);
  if (!opened.ok()) return cmd.Fail(file + ": " + StatusText(opened.status()));
  RawImage& image = **opened;
  const format::Superblock& sb = image.sb();
  int rc = kExitOk;

  Section super = SuperblockSection(sb);
  std::optional<Section> journal;
  std::string journal_error;
  if (sb.has_compat(format::kCompatHasJournal) && sb.journal_inum != 0) {
    auto j = JournalSection(image);
    if (j.ok()) {
      journal = std::move(*j);
    } else {
      journal_error = StatusText(j.status());
    }
  }
  std::vector<GroupInfo> groups;
  if (!header_only) {
    for (uint32_t g = 0; g < sb.group_count(); ++g) {
      GroupInfo info{g, sb.group_first_block(g), 0, image.Group(g),
                     format::GroupHasSuperblock(sb, g)};
      info.last = std::min<uint64_t>(info.first + sb.blocks_per_group,
                                     sb.blocks_count) -
                  1;
      if (!info.gd.ok()) rc = kExitFailure;
      groups.push_back(std::move(info));
    }
  }

  std::string out;
  if (json_out) {
    JsonWriter j;
    j.BeginObject();
    j.Key("superblock");
    super.Json(j);
    j.Key("features");
    j.BeginArray();
    for (const std::string& f : Split(format::FeatureNames(sb))) j.String(f);
    j.EndArray();
    if (journal) {
      j.Key("journal");
      journal->Json(j);
    } else if (!journal_error.empty()) {
      j.Field("journal_error", journal_error);
    }
    if (!header_only) {
      j.Key("groups");
      j.BeginArray();
      for (const GroupInfo& g : groups) {
        j.BeginObject();
        j.Field("group", g.group);
        j.Field("first_block", g.first);
        j.Field("last_block", g.last);
        j.Field("superblock_backup", g.superblock);
        if (g.gd.ok()) {
          const format::GroupDescriptor& d = *g.gd;
          j.Field("block_bitmap", d.block_bitmap);
          j.Field("inode_bitmap", d.inode_bitmap);
          j.Field("inode_table", d.inode_table);
          j.Field("free_blocks", d.free_blocks_count);
          j.Field("free_inodes", d.free_inodes_count);
          j.Field("used_dirs", d.used_dirs_count);
          j.Field("itable_unused", d.itable_unused);
          j.Field("flags", d.flags);
          j.Field("checksum", d.checksum);
        } else {
          j.Field("error", StatusText(g.gd.status()));
        }
        j.EndObject();
      }
      j.EndArray();
    }
    j.EndObject();
    out = j.Finish();
  } else {
    super.Print(&out);
    if (journal) {
      out += "\n";
      journal->Print(&out);
    } else if (!journal_error.empty()) {
      absl::StrAppend(&out, "\nJournal: unreadable: ", journal_error, "\n");
    }
    for (const GroupInfo& g : groups) {
      absl::StrAppend(&out, "\nGroup ", g.group, ": blocks ", g.first, "-",
                      g.last);
      if (!g.gd.ok()) {
        absl::StrAppend(&out, "\n  error: ", StatusText(g.gd.status()), "\n");
        continue;
      }
      const format::GroupDescriptor& d = *g.gd;
      if (sb.has_group_desc_csum()) {
        absl::StrAppend(
            &out, ", checksum ",
            absl::StrCat("0x", absl::Hex(d.checksum, absl::kZeroPad4)));
      }
      std::string flags = GroupFlags(d.flags);
      if (!flags.empty()) absl::StrAppend(&out, " [", flags, "]");
      out += "\n";
      if (g.superblock) {
        absl::StrAppend(
            &out, "  ",
            g.group == 0 ? "Primary superblock" : "Superblock backup", " at ",
            g.first == 0 && sb.block_size() == 1024 ? 1 : g.first, "\n");
      }
      const uint64_t itable_last = d.inode_table + sb.inode_table_blocks() - 1;
      absl::StrAppend(&out, "  Block bitmap at ", d.block_bitmap,
                      ", Inode bitmap at ", d.inode_bitmap, ", Inode table at ",
                      d.inode_table, "-", itable_last, "\n");
      absl::StrAppend(&out, "  ", d.free_blocks_count,
                      sb.bigalloc() ? " free clusters, " : " free blocks, ",
                      d.free_inodes_count, " free inodes, ", d.used_dirs_count,
                      " directories");
      if (sb.has_group_desc_csum()) {
        absl::StrAppend(&out, ", ", d.itable_unused, " unused inodes");
      }
      out += "\n";
    }
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() ||
      std::fflush(stdout) != 0) {
    return cmd.Fail("writing to stdout failed");
  }
  for (const GroupInfo& g : groups) {
    if (!g.gd.ok()) {
      cmd.Warn(
          absl::StrCat("group ", g.group, ": ", StatusText(g.gd.status())));
    }
  }
  if (!journal_error.empty()) {
    cmd.Warn("journal: " + journal_error);
    rc = kExitFailure;
  }
  return rc;
}

}  // namespace e4cli
