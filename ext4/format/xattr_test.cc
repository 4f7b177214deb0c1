#include "ext4/format/xattr.h"

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4::format {
namespace {

Bytes AsBytes(std::string_view s) {
  return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// ---------------------------------------------------------------------------
// Names.

TEST(XattrNameTest, FullNames) {
  EXPECT_EQ(FullXattrName(1, "foo"), "user.foo");
  EXPECT_EQ(FullXattrName(2, ""), "system.posix_acl_access");
  EXPECT_EQ(FullXattrName(3, ""), "system.posix_acl_default");
  EXPECT_EQ(FullXattrName(4, "x"), "trusted.x");
  EXPECT_EQ(FullXattrName(6, "selinux"), "security.selinux");
  EXPECT_EQ(FullXattrName(7, "data"), "system.data");
  EXPECT_EQ(FullXattrName(8, ""), "system.richacl");
  EXPECT_EQ(FullXattrName(10, "a"), "gnu.a");
  EXPECT_EQ(FullXattrName(5, "lustre"), "");
  EXPECT_EQ(FullXattrName(0, "x"), "");
  EXPECT_EQ(FullXattrName(200, "x"), "");
}

TEST(XattrNameTest, SplitPicksTheLongestFittingPrefix) {
  uint8_t index = 0;
  std::string suffix;
  ASSERT_TRUE(SplitXattrName("user.foo", &index, &suffix));
  EXPECT_EQ(index, 1);
  EXPECT_EQ(suffix, "foo");
  ASSERT_TRUE(SplitXattrName("system.posix_acl_access", &index, &suffix));
  EXPECT_EQ(index, 2);
  EXPECT_EQ(suffix, "");
  ASSERT_TRUE(SplitXattrName("system.posix_acl_default", &index, &suffix));
  EXPECT_EQ(index, 3);
  EXPECT_EQ(suffix, "");
  ASSERT_TRUE(SplitXattrName("system.richacl", &index, &suffix));
  EXPECT_EQ(index, 8);
  EXPECT_EQ(suffix, "");
  // A whole name with more after it is not that index.
  ASSERT_TRUE(SplitXattrName("system.posix_acl_accessX", &index, &suffix));
  EXPECT_EQ(index, 7);
  EXPECT_EQ(suffix, "posix_acl_accessX");
  ASSERT_TRUE(SplitXattrName("system.data", &index, &suffix));
  EXPECT_EQ(index, 7);
  EXPECT_EQ(suffix, "data");
  ASSERT_TRUE(SplitXattrName("trusted.t", &index, &suffix));
  EXPECT_EQ(index, 4);
  ASSERT_TRUE(SplitXattrName("security.selinux", &index, &suffix));
  EXPECT_EQ(index, 6);
  EXPECT_EQ(suffix, "selinux");
  ASSERT_TRUE(SplitXattrName("gnu.x", &index, &suffix));
  EXPECT_EQ(index, 10);
  EXPECT_FALSE(SplitXattrName("user.", &index, &suffix));
  EXPECT_FALSE(SplitXattrName("system.", &index, &suffix));
  EXPECT_FALSE(SplitXattrName("os2.foo", &index, &suffix));
  EXPECT_FALSE(SplitXattrName("", &index, &suffix));
  EXPECT_FALSE(SplitXattrName("user", &index, &suffix));
}

// ---------------------------------------------------------------------------
// Hand-built entry tables.

struct RawEntry {
  uint8_t index;
  std::string name;
  uint16_t offs;
  uint32_t inum;
  uint32_t size;
  uint32_t hash;
};

// Writes entries from `pos`, then the four-byte terminator; returns the
// offset past the terminator.
size_t PutEntries(std::vector<uint8_t>& buf, size_t pos,
                  const std::vector<RawEntry>& entries) {
  for (const RawEntry& e : entries) {
    buf[pos] = static_cast<uint8_t>(e.name.size());
    buf[pos + 1] = e.index;
    Put16(buf, pos + 2, e.offs);
    Put32(buf, pos + 4, e.inum);
    Put32(buf, pos + 8, e.size);
    Put32(buf, pos + 12, e.hash);
    std::copy(e.name.begin(), e.name.end(), buf.begin() + pos + 16);
    pos += XattrEntrySize(e.name.size());
  }
  Put32(buf, pos, 0);
  return pos + 4;
}

void PutValue(std::vector<uint8_t>& buf, size_t pos, std::string_view v) {
  std::copy(v.begin(), v.end(), buf.begin() + pos);
}

// An in-inode area of 256 - 160 = 96 bytes: magic, entries from 4, values
// addressed from 4.
std::vector<uint8_t> InodeArea(const std::vector<RawEntry>& entries,
                               size_t size = 96) {
  std::vector<uint8_t> area(size, 0);
  Put32(area, 0, kXattrMagic);
  PutEntries(area, 4, entries);
  return area;
}

void ExpectCorrupt(const absl::Status& status, const std::string& needle) {
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(ErrnoOf(status), EUCLEAN) << status;
  EXPECT_NE(std::string(status.message()).find(needle), std::string::npos)
      << status;
}

TEST(XattrInodeTest, ParsesEntries) {
  // Entries: "user.a" (20 bytes) + "security.selinux" (24 bytes) + 4 = 48
  // bytes; values at 64 and 80 relative to area + 4.
  auto area =
      InodeArea({{1, "a", 64, 0, 5, 0x11}, {6, "selinux", 80, 0, 3, 0}});
  PutValue(area, 4 + 64, "hello");
  PutValue(area, 4 + 80, "ctx");
  auto entries = ParseInodeXattrs(area);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].full_name(), "user.a");
  EXPECT_EQ((*entries)[0].value, "hello");
  EXPECT_EQ((*entries)[0].value_size, 5u);
  EXPECT_EQ((*entries)[0].hash, 0x11u);
  EXPECT_EQ((*entries)[1].full_name(), "security.selinux");
  EXPECT_EQ((*entries)[1].value, "ctx");
}

TEST(XattrInodeTest, NoMagicMeansNoXattrs) {
  std::vector<uint8_t> area(96, 0);
  auto entries = ParseInodeXattrs(area);
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
  EXPECT_TRUE(ParseInodeXattrs(Bytes()).ok());
  // Magic with an immediate terminator: no entries.
  auto empty = InodeArea({});
  ASSERT_TRUE(ParseInodeXattrs(empty).ok());
  EXPECT_TRUE(ParseInodeXattrs(empty)->empty());
}

TEST(XattrInodeTest, RejectsBadEntries) {
  // Value offset beyond the area.
  auto far = InodeArea({{1, "a", 200, 0, 4, 0}});
  ExpectCorrupt(ParseInodeXattrs(far).status(), "out of bounds");
  // Value running past the end.
  auto tail = InodeArea({{1, "a", 80, 0, 20, 0}});
  ExpectCorrupt(ParseInodeXattrs(tail).status(), "runs past the end");
  // Value overlapping the entry table.
  auto overlap = InodeArea({{1, "a", 8, 0, 4, 0}});
  ExpectCorrupt(ParseInodeXattrs(overlap).status(), "overlaps");
  // A name running past the end of the area.
  std::vector<uint8_t> name_past(40, 0);
  Put32(name_past, 0, kXattrMagic);
  name_past[4] = 200;  // name_len
  name_past[5] = 1;
  ExpectCorrupt(ParseInodeXattrs(name_past).status(), "name of the entry");
  // No terminator: an entry that fills the area exactly.
  std::vector<uint8_t> no_term(4 + 20, 0);
  Put32(no_term, 0, kXattrMagic);
  no_term[4] = 4;
  no_term[5] = 1;
  ExpectCorrupt(ParseInodeXattrs(no_term).status(), "terminator");
  // Magic but not even room for a terminator.
  std::vector<uint8_t> tiny(6, 0);
  Put32(tiny, 0, kXattrMagic);
  tiny[4] = 1;
  ExpectCorrupt(ParseInodeXattrs(tiny).status(), "terminator");
  // Empty name outside the whole-name indexes, and a NUL inside a name.
  ExpectCorrupt(ParseInodeXattrs(InodeArea({{1, "", 0, 0, 0, 0}})).status(),
                "empty name");
  ExpectCorrupt(
      ParseInodeXattrs(InodeArea({{1, std::string("a\0b", 3), 0, 0, 0, 0}}))
          .status(),
      "NUL");
  // Value size beyond the limit, and reserved value inodes.
  ExpectCorrupt(
      ParseInodeXattrs(InodeArea({{1, "a", 0, 20, (1u << 24) + 1, 0}}))
          .status(),
      "too large");
  ExpectCorrupt(ParseInodeXattrs(InodeArea({{1, "a", 0, 2, 10, 0}})).status(),
                "reserved value inode");
}

TEST(XattrInodeTest, AcceptsWholeNameAndValueInodeEntries) {
  auto area = InodeArea({{2, "", 60, 0, 4, 0}, {1, "big", 0, 12, 70000, 0}});
  PutValue(area, 4 + 60, "ACL!");
  auto entries = ParseInodeXattrs(area);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].full_name(), "system.posix_acl_access");
  EXPECT_EQ((*entries)[0].value, "ACL!");
  EXPECT_EQ((*entries)[1].value_inum, 12u);
  EXPECT_EQ((*entries)[1].value_size, 70000u);
  EXPECT_TRUE((*entries)[1].value.empty());
}

std::vector<uint8_t> Block(const std::vector<RawEntry>& entries,
                           size_t size = 1024) {
  std::vector<uint8_t> block(size, 0);
  Put32(block, 0, kXattrMagic);
  Put32(block, 4, 1);  // refcount
  Put32(block, 8, 1);  // blocks
  PutEntries(block, 32, entries);
  return block;
}

TEST(XattrBlockTest, ParsesAndChecksChecksum) {
  auto block = Block({{1, "x", 1000, 0, 5, 0}, {4, "tr", 992, 0, 8, 0}});
  PutValue(block, 1000, "world");
  PutValue(block, 992, "12345678");
  Put32(block, 12, 0xABCD);
  SetXattrBlockChecksum(block, 777, 0x5EED);
  auto parsed = ParseXattrBlock(block, 777, true, 0x5EED);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->refcount, 1u);
  EXPECT_EQ(parsed->blocks, 1u);
  EXPECT_EQ(parsed->hash, 0xABCDu);
  ASSERT_EQ(parsed->entries.size(), 2u);
  EXPECT_EQ(parsed->entries[0].full_name(), "user.x");
  EXPECT_EQ(parsed->entries[0].value, "world");
  EXPECT_EQ(parsed->entries[1].full_name(), "trusted.tr");
  EXPECT_EQ(parsed->entries[1].value, "12345678");

  // The checksum covers the block number and ignores its own field.
  std::vector<uint8_t> copy = block;
  Put32(copy, 16, 0);
  EXPECT_EQ(XattrBlockChecksum(copy, 777, 0x5EED), Le32(block, 16));
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  ExpectCorrupt(ParseXattrBlock(block, 778, true, 0x5EED).status(), "checksum");
  block[1010] ^= 1;
  ExpectCorrupt(ParseXattrBlock(block, 777, true, 0x5EED).status(), "checksum");
  // Without metadata_csum the checksum is not looked at.
  EXPECT_TRUE(ParseXattrBlock(block, 777, false, 0).ok());
#endif
}

TEST(XattrBlockTest, RejectsBadBlocks) {
  auto good = Block({{1, "x", 1000, 0, 5, 0}});
  ASSERT_TRUE(ParseXattrBlock(good, 1, false, 0).ok());

  auto bad_magic = good;
  Put32(bad_magic, 0, 0xEA020001);
  ExpectCorrupt(ParseXattrBlock(bad_magic, 1, false, 0).status(), "bad magic");

  auto two_blocks = good;
  Put32(two_blocks, 8, 2);
  ExpectCorrupt(ParseXattrBlock(two_blocks, 1, false, 0).status(), "h_blocks");

  ExpectCorrupt(
      ParseXattrBlock(Block({{1, "x", 1024, 0, 4, 0}}), 1, false, 0).status(),
      "runs past the end");
  ExpectCorrupt(
      ParseXattrBlock(Block({{1, "x", 2000, 0, 4, 0}}), 1, false, 0).status(),
      "out of bounds");
  ExpectCorrupt(
      ParseXattrBlock(Block({{1, "x", 1001, 0, 4, 0}}), 1, false, 0).status(),
      "aligned");
  // Values are addressed from the block start: offset 40 is inside the
  // entry table (32 + 20 + 4 = 56).
  ExpectCorrupt(
      ParseXattrBlock(Block({{1, "x", 40, 0, 4, 0}}), 1, false, 0).status(),
      "overlaps");
  // Right after the terminator is fine.
  EXPECT_TRUE(
      ParseXattrBlock(Block({{1, "x", 56, 0, 4, 0}}), 1, false, 0).ok());

  // Missing terminator: entries fill the whole block with nonzero bytes.
  std::vector<uint8_t> full(64, 0x41);
  Put32(full, 0, kXattrMagic);
  Put32(full, 8, 1);
  ExpectCorrupt(ParseXattrBlock(full, 1, false, 0).status(), "");

  std::vector<uint8_t> tiny(20, 0);
  Put32(tiny, 0, kXattrMagic);
  ExpectCorrupt(ParseXattrBlock(tiny, 1, false, 0).status(), "too small");
}

TEST(XattrHashTest, EntryAndBlockHashes) {
  // Hand-computed: name "a" -> 0x61; value "\x01\0\0\0" -> (0x61 << 16) ^ 1.
  const uint8_t one[4] = {1, 0, 0, 0};
  EXPECT_EQ(XattrEntryHash("a", one), (0x61u << 16) ^ 1u);
  EXPECT_EQ(XattrEntryHash("ab", Bytes()), (0x61u << 5) ^ 0x62u);
  // A short value is zero padded to a word.
  const uint8_t two[2] = {0x34, 0x12};
  EXPECT_EQ(XattrEntryHash("", two), 0x1234u);
  // Signed and unsigned differ only for bytes >= 0x80.
  EXPECT_EQ(XattrEntryHashSigned("abc", AsBytes("v")),
            XattrEntryHash("abc", AsBytes("v")));
  EXPECT_NE(XattrEntryHashSigned("\xE9", Bytes()),
            XattrEntryHash("\xE9", Bytes()));
  EXPECT_EQ(XattrEntryHashSigned("\xE9", Bytes()), 0xFFFFFFE9u);
  EXPECT_EQ(XattrEntryHashForValueInode("a", 1), (0x61u << 16) ^ 1u);

  std::vector<XattrEntry> entries(2);
  entries[0].hash = 0x00010002;
  entries[1].hash = 0x00030004;
  EXPECT_EQ(XattrBlockHash(entries),
            ((0x00010002u << 16) ^ 0x0001u) ^ 0x00030004u);
  entries[1].hash = 0;
  EXPECT_EQ(XattrBlockHash(entries), 0u);
  EXPECT_EQ(XattrBlockHash({}), 0u);
}

// ---------------------------------------------------------------------------
// POSIX ACLs.

std::string XattrAcl(
    const std::vector<std::tuple<uint16_t, uint16_t, uint32_t>>& entries,
    uint32_t version = 2) {
  std::string out(4 + 8 * entries.size(), '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  MutableBytes b(p, out.size());
  Put32(b, 0, version);
  for (size_t i = 0; i < entries.size(); ++i) {
    Put16(b, 4 + 8 * i, std::get<0>(entries[i]));
    Put16(b, 6 + 8 * i, std::get<1>(entries[i]));
    Put32(b, 8 + 8 * i, std::get<2>(entries[i]));
  }
  return out;
}

constexpr uint32_t kU = kAclUndefinedId;

TEST(AclTest, RoundTrip) {
  const std::string minimal = XattrAcl(
      {{kAclUserObj, 6, kU}, {kAclGroupObj, 4, kU}, {kAclOther, 4, kU}});
  auto disk = AclXattrToDisk(AsBytes(minimal));
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ(disk->size(), 4u + 3 * 4);
  auto back = AclDiskToXattr(AsBytes(*disk));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, minimal);

  const std::string full = XattrAcl({{kAclUserObj, 7, kU},
                                     {kAclUser, 5, 1000},
                                     {kAclUser, 4, 1001},
                                     {kAclGroupObj, 5, kU},
                                     {kAclGroup, 1, 50},
                                     {kAclMask, 7, kU},
                                     {kAclOther, 0, kU}});
  disk = AclXattrToDisk(AsBytes(full));
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ(disk->size(), 4u + 4 * 4 + 3 * 8);
  const Bytes d = AsBytes(*disk);
  EXPECT_EQ(Le32(d, 0), 1u);
  EXPECT_EQ(Le16(d, 4), kAclUserObj);
  EXPECT_EQ(Le16(d, 8), kAclUser);
  EXPECT_EQ(Le32(d, 12), 1000u);
  back = AclDiskToXattr(d);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, full);

  // No entries: no ACL, both ways.
  EXPECT_EQ(*AclXattrToDisk(AsBytes(XattrAcl({}))), "");
  const uint8_t header_only[4] = {1, 0, 0, 0};
  EXPECT_EQ(*AclDiskToXattr(header_only), "");
}

TEST(AclTest, RejectsBadXattrInput) {
  auto err = [](const std::string& v) {
    return ErrnoOf(AclXattrToDisk(AsBytes(v)).status());
  };
  EXPECT_EQ(err("ab"), EINVAL);
  EXPECT_EQ(err(XattrAcl({{kAclUserObj, 6, kU}}, 1)), EOPNOTSUPP);
  EXPECT_EQ(err(XattrAcl({{kAclUserObj, 6, kU}}) + "x"), EINVAL);
  // Unknown tag, perms beyond rwx, undefined id.
  EXPECT_EQ(err(XattrAcl({{0x40, 6, kU}})), EINVAL);
  EXPECT_EQ(
      err(XattrAcl(
          {{kAclUserObj, 8, kU}, {kAclGroupObj, 4, kU}, {kAclOther, 4, kU}})),
      EINVAL);
  EXPECT_EQ(err(XattrAcl({{kAclUserObj, 6, kU},
                          {kAclUser, 6, kU},
                          {kAclGroupObj, 4, kU},
                          {kAclMask, 4, kU},
                          {kAclOther, 4, kU}})),
            EINVAL);
  // Out of order, missing entries, named entries without a mask.
  EXPECT_EQ(
      err(XattrAcl(
          {{kAclGroupObj, 4, kU}, {kAclUserObj, 6, kU}, {kAclOther, 4, kU}})),
      EINVAL);
  EXPECT_EQ(err(XattrAcl({{kAclUserObj, 6, kU}, {kAclGroupObj, 4, kU}})),
            EINVAL);
  EXPECT_EQ(err(XattrAcl({{kAclUserObj, 6, kU},
                          {kAclGroupObj, 4, kU},
                          {kAclGroup, 4, 7},
                          {kAclOther, 4, kU}})),
            EINVAL);
  EXPECT_EQ(err(XattrAcl({{kAclUserObj, 6, kU},
                          {kAclGroupObj, 4, kU},
                          {kAclOther, 4, kU},
                          {kAclOther, 4, kU}})),
            EINVAL);
}

TEST(AclTest, RejectsBadDiskInput) {
  auto err = [](const std::vector<uint8_t>& v) {
    return ErrnoOf(AclDiskToXattr(v).status());
  };
  EXPECT_EQ(err({1, 0}), EUCLEAN);
  EXPECT_EQ(err({2, 0, 0, 0, 1, 0, 6, 0}), EUCLEAN);     // version 2 on disk
  EXPECT_EQ(err({1, 0, 0, 0, 1, 0, 6}), EUCLEAN);        // partial entry
  EXPECT_EQ(err({1, 0, 0, 0, 0x40, 0, 6, 0}), EUCLEAN);  // unknown tag
  // Four short entries then a long one cut short: 16 + 4 is no layout.
  EXPECT_EQ(err({1,    0, 0, 0, 1,    0, 6, 0, 4, 0, 4, 0,
                 0x10, 0, 4, 0, 0x20, 0, 4, 0, 2, 0, 6, 0}),
            EUCLEAN);
  // A size that fits the layout formula but whose tags do not: a long USER
  // entry among the first four makes the walk end off the boundary.
  EXPECT_EQ(err({1, 0, 0, 0, 2, 0, 6, 0, 0, 0, 0, 0, 1, 0, 6, 0, 4, 0, 4, 0}),
            EUCLEAN);
}

// ---------------------------------------------------------------------------
// A real image made by mke2fs -d from a tree with xattrs.

using ::ext4::testing::CommandResult;
using ::ext4::testing::HaveTools;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::ReadFileAt;
using ::ext4::testing::RunCommand;
using ::ext4::testing::StderrMode;

// The inode's bytes and its xattr block number, from debugfs.
bool ReadInode(const std::string& image, const std::string& file,
               uint64_t block_size, std::vector<uint8_t>* inode,
               uint64_t* file_acl) {
  const CommandResult imap =
      RunCommand(absl::StrCat(kDebugfs, " -R \"imap ", file, "\" ", image),
                 StderrMode::kDiscard);
  if (imap.exit_code != 0) return false;
  const std::string& out = imap.output;
  unsigned long long block = 0;
  unsigned int off = 0;
  const size_t at = out.find("located at block");
  if (at == std::string::npos ||
      std::sscanf(out.c_str() + at, "located at block %llu, offset 0x%x",
                  &block, &off) != 2) {
    return false;
  }
  *inode = ReadFileAt(image, block * block_size + off, 256);
  if (inode->size() != 256) return false;
  const CommandResult stat =
      RunCommand(absl::StrCat(kDebugfs, " -R \"stat ", file, "\" ", image),
                 StderrMode::kDiscard);
  if (stat.exit_code != 0) return false;
  unsigned long long acl = 0;
  const size_t fa = stat.output.find("File ACL:");
  if (fa == std::string::npos ||
      std::sscanf(stat.output.c_str() + fa, "File ACL: %llu", &acl) != 1) {
    return false;
  }
  *file_acl = acl;
  return true;
}

void ExpectStoredHash(const XattrEntry& e) {
  if (e.hash == 0) return;  // in-inode entries may carry no hash
  const uint32_t unsigned_hash = XattrEntryHash(e.name, AsBytes(e.value));
  const uint32_t signed_hash = XattrEntryHashSigned(e.name, AsBytes(e.value));
  EXPECT_TRUE(e.hash == unsigned_hash || e.hash == signed_hash)
      << e.full_name() << " stored 0x" << std::hex << e.hash << " computed 0x"
      << unsigned_hash;
}

TEST(XattrRealImageTest, ParsesMke2fsXattrs) {
  if (!HaveTools({kMke2fs, kDebugfs})) {
    GTEST_SKIP() << "mke2fs/debugfs not installed";
  }
  const std::string dir = MakeTempDir("e4fs_xattr_");
  ASSERT_FALSE(dir.empty());
  const std::string src = dir + "/src";
  ASSERT_EQ(mkdir(src.c_str(), 0755), 0);
  std::ofstream(src + "/f") << "f";
  std::ofstream(src + "/g") << "g";
  std::ofstream(src + "/acl") << "a";
  if (setxattr((src + "/f").c_str(), "user.small", "hello", 5, 0) != 0) {
    RunCommand("rm -rf " + dir, StderrMode::kInherit);
    GTEST_SKIP() << "the test directory does not take user xattrs";
  }
  const std::string big(3000, 'B');
  ASSERT_EQ(
      setxattr((src + "/g").c_str(), "user.big", big.data(), big.size(), 0), 0);
  ASSERT_EQ(setxattr((src + "/g").c_str(), "user.s2", "xy", 2, 0), 0);
  const std::string acl = XattrAcl({{kAclUserObj, 6, kU},
                                    {kAclUser, 4, 1234},
                                    {kAclGroupObj, 4, kU},
                                    {kAclMask, 4, kU},
                                    {kAclOther, 0, kU}});
  const bool have_acl =
      setxattr((src + "/acl").c_str(), "system.posix_acl_access", acl.data(),
               acl.size(), 0) == 0;

  const std::string image = dir + "/img";
  // 4 KiB blocks: a 3000-byte value does not fit a 1 KiB xattr block.
  ASSERT_EQ(RunCommand(absl::StrCat(kMke2fs,
                                    " -q -F -t ext4 -b 4096 -I 256 -O "
                                    "metadata_csum -d ",
                                    src, " ", image, " 8M >/dev/null 2>&1"),
                       StderrMode::kInherit)
                .exit_code,
            0);
  constexpr uint64_t kBlockSize = 4096;
  const std::vector<uint8_t> super = ReadFileAt(image, 1024, 1024);
  ASSERT_EQ(super.size(), 1024u);
  ASSERT_EQ(Le16(super, 0x38), 0xEF53);
  ASSERT_EQ(Le32(super, 0x64) & 0x2000, 0u);  // no metadata_csum_seed
  const uint32_t fs_seed = Crc32c(~0u, Bytes(super).subspan(0x68, 16));

  auto in_inode = [](const std::vector<uint8_t>& inode) {
    const uint16_t extra = Le16(inode, 0x80);
    return Bytes(inode).subspan(128 + extra);
  };

  // f: one small value inside the inode, no xattr block.
  std::vector<uint8_t> inode;
  uint64_t file_acl = 0;
  ASSERT_TRUE(ReadInode(image, "/f", kBlockSize, &inode, &file_acl));
  EXPECT_EQ(file_acl, 0u);
  auto f = ParseInodeXattrs(in_inode(inode));
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].full_name(), "user.small");
  EXPECT_EQ((*f)[0].name_index, kXattrIndexUser);
  EXPECT_EQ((*f)[0].name, "small");
  EXPECT_EQ((*f)[0].value, "hello");
  ExpectStoredHash((*f)[0]);

  // g: the 3000-byte value lives in the xattr block.
  ASSERT_TRUE(ReadInode(image, "/g", kBlockSize, &inode, &file_acl));
  ASSERT_NE(file_acl, 0u);
  auto g_inline = ParseInodeXattrs(in_inode(inode));
  ASSERT_TRUE(g_inline.ok()) << g_inline.status();
  const std::vector<uint8_t> block =
      ReadFileAt(image, file_acl * kBlockSize, kBlockSize);
  ASSERT_EQ(block.size(), kBlockSize);
  auto g_block = ParseXattrBlock(block, file_acl, true, fs_seed);
  ASSERT_TRUE(g_block.ok()) << g_block.status();
  EXPECT_EQ(g_block->refcount, 1u);
  EXPECT_EQ(g_block->blocks, 1u);
  std::map<std::string, std::string> all;
  for (const XattrEntry& e : *g_inline) {
    all[e.full_name()] = e.value;
    ExpectStoredHash(e);
  }
  for (const XattrEntry& e : g_block->entries) {
    all[e.full_name()] = e.value;
    EXPECT_NE(e.hash, 0u) << e.full_name();
    ExpectStoredHash(e);
  }
  EXPECT_EQ(all.size(), 2u);
  EXPECT_EQ(all["user.big"], big);
  EXPECT_EQ(all["user.s2"], "xy");
  // mke2fs 1.47.0 leaves h_hash zero (the kernel fills it in when it
  // rewrites the block); a nonzero one must match.
  if (g_block->hash != 0) {
    EXPECT_EQ(g_block->hash, XattrBlockHash(g_block->entries));
  }
  EXPECT_EQ(XattrBlockHash(g_block->entries), g_block->entries[0].hash)
      << "one entry: the block hash is that entry's hash";
  // A flipped byte in the block must now fail the checksum.
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  std::vector<uint8_t> damaged = block;
  damaged[kBlockSize - 1] ^= 0x80;
  ExpectCorrupt(ParseXattrBlock(damaged, file_acl, true, fs_seed).status(),
                "checksum");
#endif

  if (have_acl) {
    ASSERT_TRUE(ReadInode(image, "/acl", kBlockSize, &inode, &file_acl));
    std::vector<XattrEntry> entries;
    auto acl_inline = ParseInodeXattrs(in_inode(inode));
    ASSERT_TRUE(acl_inline.ok()) << acl_inline.status();
    entries = *acl_inline;
    std::vector<uint8_t> acl_block;
    if (file_acl != 0) {
      acl_block = ReadFileAt(image, file_acl * kBlockSize, kBlockSize);
      auto parsed = ParseXattrBlock(acl_block, file_acl, true, fs_seed);
      ASSERT_TRUE(parsed.ok()) << parsed.status();
      entries.insert(entries.end(), parsed->entries.begin(),
                     parsed->entries.end());
    }
    const XattrEntry* found = nullptr;
    for (const XattrEntry& e : entries) {
      if (e.full_name() == "system.posix_acl_access") found = &e;
    }
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->name_index, kXattrIndexPosixAclAccess);
    EXPECT_TRUE(found->name.empty());
    // Stored in ext4's compact form: 4 short entries and one long one.
    EXPECT_EQ(found->value.size(), 4u + 4 * 4 + 8);
    auto vfs = AclDiskToXattr(AsBytes(found->value));
    ASSERT_TRUE(vfs.ok()) << vfs.status();
    EXPECT_EQ(*vfs, acl);
    auto disk = AclXattrToDisk(AsBytes(acl));
    ASSERT_TRUE(disk.ok()) << disk.status();
    EXPECT_EQ(*disk, found->value);
  }
  RunCommand("rm -rf " + dir, StderrMode::kInherit);
}

}  // namespace
}  // namespace ext4::format
