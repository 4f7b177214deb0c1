#include "ext4/mkfs/options.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ext4/errno_status.h"
#include "ext4/format/superblock.h"

namespace ext4::mkfs {
namespace {

enum class Word { kCompat, kIncompat, kRoCompat };

struct NamedFeature {
  const char* name;
  Word word;
  uint32_t bit;
};

// Every name mke2fs and tune2fs accept (e2fsprogs' feature table), aliases
// included.
constexpr NamedFeature kFeatureNames[] = {
    {"dir_prealloc", Word::kCompat, format::kCompatDirPrealloc},
    {"imagic_inodes", Word::kCompat, format::kCompatImagicInodes},
    {"has_journal", Word::kCompat, format::kCompatHasJournal},
    {"ext_attr", Word::kCompat, format::kCompatExtAttr},
    {"resize_inode", Word::kCompat, format::kCompatResizeInode},
    {"dir_index", Word::kCompat, format::kCompatDirIndex},
    {"lazy_bg", Word::kCompat, format::kCompatLazyBg},
    {"snapshot_bitmap", Word::kCompat, format::kCompatExcludeBitmap},
    {"sparse_super2", Word::kCompat, format::kCompatSparseSuper2},
    {"fast_commit", Word::kCompat, format::kCompatFastCommit},
    {"stable_inodes", Word::kCompat, format::kCompatStableInodes},
    {"orphan_file", Word::kCompat, format::kCompatOrphanFile},
    {"sparse_super", Word::kRoCompat, format::kRoCompatSparseSuper},
    {"large_file", Word::kRoCompat, format::kRoCompatLargeFile},
    {"huge_file", Word::kRoCompat, format::kRoCompatHugeFile},
    {"uninit_bg", Word::kRoCompat, format::kRoCompatGdtCsum},
    {"uninit_groups", Word::kRoCompat, format::kRoCompatGdtCsum},
    {"gdt_csum", Word::kRoCompat, format::kRoCompatGdtCsum},
    {"dir_nlink", Word::kRoCompat, format::kRoCompatDirNlink},
    {"extra_isize", Word::kRoCompat, format::kRoCompatExtraIsize},
    {"quota", Word::kRoCompat, format::kRoCompatQuota},
    {"bigalloc", Word::kRoCompat, format::kRoCompatBigalloc},
    {"metadata_csum", Word::kRoCompat, format::kRoCompatMetadataCsum},
    {"replica", Word::kRoCompat, format::kRoCompatReplica},
    {"read-only", Word::kRoCompat, format::kRoCompatReadOnly},
    {"project", Word::kRoCompat, format::kRoCompatProject},
    {"shared_blocks", Word::kRoCompat, format::kRoCompatSharedBlocks},
    {"verity", Word::kRoCompat, format::kRoCompatVerity},
    {"orphan_present", Word::kRoCompat, format::kRoCompatOrphanPresent},
    {"compression", Word::kIncompat, format::kIncompatCompression},
    {"filetype", Word::kIncompat, format::kIncompatFiletype},
    {"needs_recovery", Word::kIncompat, format::kIncompatRecover},
    {"journal_dev", Word::kIncompat, format::kIncompatJournalDev},
    {"extent", Word::kIncompat, format::kIncompatExtents},
    {"extents", Word::kIncompat, format::kIncompatExtents},
    {"meta_bg", Word::kIncompat, format::kIncompatMetaBg},
    {"64bit", Word::kIncompat, format::kIncompat64Bit},
    {"mmp", Word::kIncompat, format::kIncompatMmp},
    {"flex_bg", Word::kIncompat, format::kIncompatFlexBg},
    {"ea_inode", Word::kIncompat, format::kIncompatEaInode},
    {"dirdata", Word::kIncompat, format::kIncompatDirData},
    {"metadata_csum_seed", Word::kIncompat, format::kIncompatCsumSeed},
    {"large_dir", Word::kIncompat, format::kIncompatLargeDir},
    {"inline_data", Word::kIncompat, format::kIncompatInlineData},
    {"encrypt", Word::kIncompat, format::kIncompatEncrypt},
    {"casefold", Word::kIncompat, format::kIncompatCasefold},
    {"fname_encoding", Word::kIncompat, format::kIncompatCasefold},
};

// What e4 mkfs can make: features that need nothing at mkfs time beyond
// their bit, or whose structures mkfs.cc writes. Not here: resize_inode
// (reserved GDT blocks and inode 7), meta_bg, sparse_super2, bigalloc,
// quota and project (quota inodes), orphan_file, mmp, encrypt, casefold
// (an encoding), fast_commit (a journal area), journal_dev.
constexpr uint32_t kSupportedCompat = format::kCompatHasJournal |
                                      format::kCompatExtAttr |
                                      format::kCompatDirIndex;
constexpr uint32_t kSupportedRoCompat =
    format::kRoCompatSparseSuper | format::kRoCompatLargeFile |
    format::kRoCompatHugeFile | format::kRoCompatGdtCsum |
    format::kRoCompatDirNlink | format::kRoCompatExtraIsize |
    format::kRoCompatMetadataCsum;
constexpr uint32_t kSupportedIncompat =
    format::kIncompatFiletype | format::kIncompatExtents |
    format::kIncompat64Bit | format::kIncompatFlexBg |
    format::kIncompatEaInode | format::kIncompatCsumSeed |
    format::kIncompatLargeDir | format::kIncompatInlineData;

uint32_t& WordOf(FeatureSet& features, Word word) {
  switch (word) {
    case Word::kCompat:
      return features.compat;
    case Word::kIncompat:
      return features.incompat;
    case Word::kRoCompat:
      break;
  }
  return features.ro_compat;
}

bool Supported(Word word, uint32_t bit) {
  switch (word) {
    case Word::kCompat:
      return (kSupportedCompat & bit) != 0;
    case Word::kIncompat:
      return (kSupportedIncompat & bit) != 0;
    case Word::kRoCompat:
      break;
  }
  return (kSupportedRoCompat & bit) != 0;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

FeatureSet DefaultFeatures() {
  FeatureSet f;
  f.compat = format::kCompatHasJournal | format::kCompatExtAttr |
             format::kCompatDirIndex;
  f.ro_compat = format::kRoCompatSparseSuper | format::kRoCompatLargeFile |
                format::kRoCompatHugeFile | format::kRoCompatDirNlink |
                format::kRoCompatExtraIsize | format::kRoCompatMetadataCsum;
  f.incompat = format::kIncompatFiletype | format::kIncompatExtents |
               format::kIncompat64Bit | format::kIncompatFlexBg;
  return f;
}

absl::StatusOr<FeatureSet> FeaturesForType(std::string_view type) {
  FeatureSet f;
  f.compat = format::kCompatExtAttr | format::kCompatDirIndex;
  f.ro_compat = format::kRoCompatSparseSuper | format::kRoCompatLargeFile;
  f.incompat = format::kIncompatFiletype;
  if (type == "ext2") return f;
  f.compat |= format::kCompatHasJournal;
  if (type == "ext3") return f;
  if (type == "ext4") return DefaultFeatures();
  return ErrnoError(EINVAL,
                    absl::StrCat("unknown filesystem type '", std::string(type),
                                 "' (ext2, ext3 or ext4)"));
}

absl::Status ApplyFeatureList(std::string_view list, FeatureSet& features) {
  FeatureSet result = features;
  for (absl::string_view item :
       absl::StrSplit(absl::string_view(list.data(), list.size()),
                      absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
    bool clear = false;
    if (item[0] == '^' || item[0] == '-') {
      clear = true;
      item.remove_prefix(1);
    } else if (item[0] == '+') {
      item.remove_prefix(1);
    }
    const std::string name = absl::AsciiStrToLower(item);
    if (name == "none" || name == "clear") {
      result = FeatureSet{};
      continue;
    }
    const NamedFeature* found = nullptr;
    for (const NamedFeature& f : kFeatureNames) {
      if (name == f.name) found = &f;
    }
    if (found == nullptr) {
      return ErrnoError(EINVAL, absl::StrCat("unknown feature '", name, "'"));
    }
    uint32_t& word = WordOf(result, found->word);
    if (clear) {
      word &= ~found->bit;
      continue;
    }
    if (!Supported(found->word, found->bit)) {
      return ErrnoError(EOPNOTSUPP, absl::StrCat("e4 mkfs cannot make the '",
                                                 name, "' feature"));
    }
    word |= found->bit;
  }
  features = result;
  return absl::OkStatus();
}

absl::Status CheckSupported(const FeatureSet& features) {
  FeatureSet extra;
  extra.compat = features.compat & ~kSupportedCompat;
  extra.incompat = features.incompat & ~kSupportedIncompat;
  extra.ro_compat = features.ro_compat & ~kSupportedRoCompat;
  if (extra == FeatureSet{}) return absl::OkStatus();
  return ErrnoError(EOPNOTSUPP, absl::StrCat("e4 mkfs cannot make these "
                                             "features: ",
                                             FeatureSetNames(extra)));
}

std::string FeatureSetNames(const FeatureSet& features) {
  format::Superblock sb;
  sb.feature_compat = features.compat;
  sb.feature_incompat = features.incompat;
  sb.feature_ro_compat = features.ro_compat;
  return format::FeatureNames(sb);
}

std::array<uint8_t, 16> RandomUuid() {
  std::random_device random;
  std::array<uint8_t, 16> uuid;
  for (size_t i = 0; i < uuid.size(); i += 4) {
    const uint32_t word = random();
    for (size_t j = 0; j < 4; ++j) {
      uuid[i + j] = static_cast<uint8_t>(word >> (8 * j));
    }
  }
  uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0F) | 0x40);  // version 4
  uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3F) | 0x80);  // RFC 4122
  return uuid;
}

int64_t DefaultCreationTime() {
  // Reproducible builds:
  // https://reproducible-builds.org/specs/source-date-epoch/
  if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH")) {
    int64_t value = 0;
    if (absl::SimpleAtoi(epoch, &value) && value >= 0) return value;
  }
  return static_cast<int64_t>(std::time(nullptr));
}

absl::StatusOr<std::array<uint8_t, 16>> ParseUuid(std::string_view text) {
  std::array<uint8_t, 16> uuid{};
  auto bad = [&] {
    return ErrnoError(EINVAL, absl::StrCat("invalid UUID '", std::string(text),
                                           "' (want xxxxxxxx-xxxx-xxxx-xxxx-"
                                           "xxxxxxxxxxxx)"));
  };
  if (text.size() != 36) return bad();
  size_t byte = 0;
  for (size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return bad();
      ++i;
      continue;
    }
    int hi = HexValue(text[i]);
    int lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return bad();
    uuid[byte++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return uuid;
}

std::string FormatUuid(const std::array<uint8_t, 16>& uuid) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[uuid[i] >> 4];
    out += kHex[uuid[i] & 15];
  }
  return out;
}

}  // namespace ext4::mkfs
