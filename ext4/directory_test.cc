#include "ext4/directory.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"
#include "ext4/format/endian.h"
#include "ext4/format/htree.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

using format::Bytes;
using format::kFtDirectory;
using format::kFtRegular;

constexpr uint32_t kDirIno = 12;
constexpr uint32_t kParentIno = 2;
constexpr uint32_t kInodeSeed = 0xa5a5f00d;

struct TestEntry {
  std::string name;
  uint32_t ino;
  uint8_t type;
};

// Directory blocks held in memory; counts reads.
class VectorSource : public DirectoryBlockSource {
 public:
  explicit VectorSource(std::vector<std::vector<uint8_t>> blocks) {
    for (auto& block : blocks) {
      blocks_.push_back(
          std::make_shared<const std::vector<uint8_t>>(std::move(block)));
    }
  }
  absl::StatusOr<std::shared_ptr<const std::vector<uint8_t>>> ReadBlock(
      uint32_t logical) override {
    ++reads;
    if (logical >= blocks_.size()) return ErrnoError(EIO, "out of range");
    return blocks_[logical];
  }
  uint32_t BlockCount() const override {
    return static_cast<uint32_t>(blocks_.size());
  }
  int reads = 0;

 private:
  std::vector<std::shared_ptr<const std::vector<uint8_t>>> blocks_;
};

DirectoryContext MakeContext(uint32_t block_size, bool csum, bool htree) {
  DirectoryContext ctx;
  ctx.ino = kDirIno;
  ctx.block_size = block_size;
  ctx.metadata_csum = csum;
  ctx.inode_checksum_seed = kInodeSeed;
  ctx.htree = htree;
  ctx.hash_seed = {0x11223344, 0x55667788, 0x99aabbcc, 0xddeeff00};
  ctx.default_hash_version = format::kDxHashHalfMd4;
  ctx.filetype = true;
  return ctx;
}

std::vector<TestEntry> MakeNames(int count, const std::string& prefix = "f") {
  std::vector<TestEntry> entries;
  for (int i = 0; i < count; ++i) {
    entries.push_back(
        {prefix + std::to_string(i), static_cast<uint32_t>(100 + i),
         static_cast<uint8_t>(i % 7 == 3 ? kFtDirectory : kFtRegular)});
  }
  return entries;
}

// Packs records into leaf blocks; each block's last record runs to the end
// of the entry area. Returns the blocks.
std::vector<std::vector<uint8_t>> PackLeaves(
    const DirectoryContext& ctx,
    const std::vector<std::vector<TestEntry>>& per_block) {
  std::vector<std::vector<uint8_t>> blocks;
  const uint32_t end =
      ctx.block_size - (ctx.metadata_csum ? format::kDirCsumTailSize : 0);
  for (const auto& entries : per_block) {
    std::vector<uint8_t> block(ctx.block_size, 0);
    uint32_t offset = 0;
    if (entries.empty()) {
      format::WriteDirEntry(block, 0, 0, end, "", 0);
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      const TestEntry& e = entries[i];
      uint32_t rec = format::DirRecLen(static_cast<uint32_t>(e.name.size()));
      EXPECT_LE(offset + rec, end) << "test leaf overflow";
      if (i + 1 == entries.size()) rec = end - offset;
      format::WriteDirEntry(block, offset, e.ino, rec, e.name, e.type);
      offset += rec;
    }
    if (ctx.metadata_csum) {
      format::InitDirCsumTail(block);
      format::SetDirBlockChecksum(block, ctx.inode_checksum_seed);
    }
    blocks.push_back(std::move(block));
  }
  return blocks;
}

// A linear directory: "." and ".." then `entries`, as many per block as fit.
std::vector<std::vector<uint8_t>> BuildLinear(
    const DirectoryContext& ctx, const std::vector<TestEntry>& entries) {
  std::vector<std::vector<TestEntry>> per_block(1);
  per_block[0].push_back({".", kDirIno, kFtDirectory});
  per_block[0].push_back({"..", kParentIno, kFtDirectory});
  const uint32_t end =
      ctx.block_size - (ctx.metadata_csum ? format::kDirCsumTailSize : 0);
  uint32_t used = 24;
  for (const TestEntry& e : entries) {
    const uint32_t rec =
        format::DirRecLen(static_cast<uint32_t>(e.name.size()));
    if (used + rec > end) {
      per_block.emplace_back();
      used = 0;
    }
    per_block.back().push_back(e);
    used += rec;
  }
  return PackLeaves(ctx, per_block);
}

struct HtreeShape {
  uint8_t stored_version = format::kDxHashHalfMd4;
  uint32_t per_leaf = 8;
  uint32_t fanout = 8;
  uint8_t levels = 0;  // indirect_levels
};

format::DxHash HashOf(const DirectoryContext& ctx, uint8_t stored_version,
                      const std::string& name) {
  int version = stored_version;
  if (version <= format::kDxHashTea && ctx.hash_unsigned) version += 3;
  auto hash = format::ComputeDxHash(name, version, ctx.hash_seed);
  EXPECT_TRUE(hash.ok());
  return *hash;
}

// An indexed directory as the kernel would lay it out: leaves hold
// `per_leaf` entries each in hash order, `levels` levels of interior blocks
// with `fanout` entries each, and a root.
std::vector<std::vector<uint8_t>> BuildHtree(const DirectoryContext& ctx,
                                             std::vector<TestEntry> entries,
                                             const HtreeShape& shape) {
  std::vector<std::tuple<format::DxHash, TestEntry>> hashed;
  for (TestEntry& e : entries) {
    hashed.emplace_back(HashOf(ctx, shape.stored_version, e.name), e);
  }
  std::sort(hashed.begin(), hashed.end(), [](const auto& a, const auto& b) {
    const auto& [ha, ea] = a;
    const auto& [hb, eb] = b;
    return std::tie(ha.major, ha.minor, ea.name) <
           std::tie(hb.major, hb.minor, eb.name);
  });
  std::vector<std::vector<TestEntry>> per_leaf;
  std::vector<uint32_t> leaf_hash;  // start hash of each leaf
  uint32_t last_major = 0;
  for (size_t i = 0; i < hashed.size(); ++i) {
    const auto& [hash, e] = hashed[i];
    if (i % shape.per_leaf == 0) {
      per_leaf.emplace_back();
      leaf_hash.push_back(i > 0 && hash.major == last_major ? hash.major | 1
                                                            : hash.major);
    }
    per_leaf.back().push_back(e);
    last_major = hash.major;
  }
  if (per_leaf.empty()) {
    per_leaf.emplace_back();
    leaf_hash.push_back(0);
  }
  std::vector<std::vector<uint8_t>> blocks(1);  // the root comes first
  for (auto& leaf : PackLeaves(ctx, per_leaf))
    blocks.push_back(std::move(leaf));

  struct Child {
    uint32_t hash;
    uint32_t block;
  };
  std::vector<Child> level;
  for (size_t i = 0; i < per_leaf.size(); ++i) {
    level.push_back({leaf_hash[i], static_cast<uint32_t>(i + 1)});
  }
  const uint32_t node_limit =
      format::DxNodeLimit(ctx.block_size, ctx.metadata_csum);
  for (int depth = 0; depth < shape.levels; ++depth) {
    std::vector<Child> parents;
    for (size_t start = 0; start < level.size(); start += shape.fanout) {
      const size_t end = std::min<size_t>(level.size(), start + shape.fanout);
      EXPECT_LE(end - start, node_limit);
      std::vector<uint8_t> node(ctx.block_size, 0);
      format::InitDxNode(node, ctx.metadata_csum);
      for (size_t i = start; i < end; ++i) {
        format::PutDxEntry(node, format::kDxNodeCountOffset, i - start,
                           level[i].hash, level[i].block);
      }
      format::PutDxCount(node, format::kDxNodeCountOffset,
                         static_cast<uint16_t>(end - start));
      if (ctx.metadata_csum) {
        EXPECT_TRUE(format::SetDxChecksum(node, ctx.inode_checksum_seed).ok());
      }
      parents.push_back(
          {level[start].hash, static_cast<uint32_t>(blocks.size())});
      blocks.push_back(std::move(node));
    }
    level = std::move(parents);
  }
  std::vector<uint8_t>& root = blocks[0];
  root.assign(ctx.block_size, 0);
  format::InitDxRoot(root, kDirIno, kParentIno, kFtDirectory,
                     shape.stored_version, shape.levels, ctx.metadata_csum);
  EXPECT_LE(level.size(),
            format::DxRootLimit(ctx.block_size, ctx.metadata_csum));
  for (size_t i = 0; i < level.size(); ++i) {
    format::PutDxEntry(root, format::kDxRootCountOffset, i, level[i].hash,
                       level[i].block);
  }
  format::PutDxCount(root, format::kDxRootCountOffset,
                     static_cast<uint16_t>(level.size()));
  if (ctx.metadata_csum) {
    EXPECT_TRUE(format::SetDxChecksum(root, ctx.inode_checksum_seed).ok());
  }
  return blocks;
}

// How a caller stops a listing: by refusing the entry that does not fit (it
// resumes from the previous entry's cookie), or by taking an entry and then
// asking to stop.
enum class StopMode { kRefuse, kTakeThenStop };

using Lister = std::function<absl::Status(
    uint64_t, const std::function<bool(const DirEntry&)>&)>;

absl::StatusOr<std::vector<DirEntry>> ListInChunks(const Lister& list,
                                                   size_t chunk,
                                                   StopMode mode) {
  std::vector<DirEntry> all;
  uint64_t cookie = 0;
  for (int calls = 0; calls < 100000; ++calls) {
    size_t taken = 0;
    absl::Status status = list(cookie, [&](const DirEntry& e) {
      if (mode == StopMode::kRefuse && taken == chunk) return false;
      all.push_back(e);
      cookie = e.next_cookie;
      ++taken;
      return mode == StopMode::kRefuse || taken < chunk;
    });
    if (!status.ok()) return status;
    if (taken == 0) return all;
  }
  return absl::InternalError("listing does not end");
}

Lister DirLister(const DirectoryContext& ctx, DirectoryBlockSource& source) {
  return [&ctx, &source](uint64_t cookie,
                         const std::function<bool(const DirEntry&)>& emit) {
    return ListDirectory(ctx, source, cookie, emit);
  };
}

// Every expected name exactly once, with its inode and type; cookies
// nonzero, fitting in int64 and strictly increasing.
void ExpectListing(const std::vector<DirEntry>& listed,
                   const std::vector<TestEntry>& expected) {
  std::map<std::string, const TestEntry*> want;
  for (const TestEntry& e : expected) want[e.name] = &e;
  std::set<std::string> seen;
  uint64_t last_cookie = 0;
  for (const DirEntry& e : listed) {
    EXPECT_TRUE(seen.insert(e.name).second) << "listed twice: " << e.name;
    auto it = want.find(e.name);
    if (it == want.end()) {
      ADD_FAILURE() << "unexpected entry " << e.name;
      continue;
    }
    EXPECT_EQ(e.ino, it->second->ino) << e.name;
    EXPECT_EQ(e.type, format::DirFileTypeToMode(it->second->type)) << e.name;
    EXPECT_NE(e.next_cookie, 0u);
    EXPECT_LE(e.next_cookie, static_cast<uint64_t>(INT64_MAX));
    EXPECT_GT(e.next_cookie, last_cookie) << e.name;
    last_cookie = e.next_cookie;
  }
  EXPECT_EQ(seen.size(), want.size());
}

std::vector<TestEntry> WithDots(std::vector<TestEntry> entries) {
  entries.push_back({".", kDirIno, kFtDirectory});
  entries.push_back({"..", kParentIno, kFtDirectory});
  return entries;
}

// ---------------------------------------------------------------------------
// Linear directories.

TEST(LinearDirectoryTest, LookupAndList) {
  for (bool csum : {false, true}) {
    SCOPED_TRACE(csum ? "csum" : "no csum");
    const DirectoryContext ctx = MakeContext(1024, csum, false);
    std::vector<TestEntry> names = MakeNames(300);
    names.push_back({std::string(255, 'L'), 7, kFtRegular});
    names.push_back({"deleted", 0, kFtRegular});  // unused record
    VectorSource source(BuildLinear(ctx, names));
    ASSERT_GT(source.BlockCount(), 3u);
    names.pop_back();

    for (const TestEntry& e : names) {
      auto ino = LookupInDirectory(ctx, source, e.name);
      ASSERT_TRUE(ino.ok()) << e.name << ": " << ino.status();
      EXPECT_EQ(*ino, e.ino);
    }
    EXPECT_EQ(*LookupInDirectory(ctx, source, "."), kDirIno);
    EXPECT_EQ(*LookupInDirectory(ctx, source, ".."), kParentIno);
    EXPECT_EQ(ErrnoOf(LookupInDirectory(ctx, source, "deleted").status()),
              ENOENT);
    EXPECT_EQ(ErrnoOf(LookupInDirectory(ctx, source, "f").status()), ENOENT);
    EXPECT_EQ(ErrnoOf(LookupInDirectory(ctx, source, "").status()), ENOENT);
    EXPECT_EQ(
        ErrnoOf(LookupInDirectory(ctx, source, std::string(256, 'L')).status()),
        ENAMETOOLONG);

    for (size_t chunk : {1, 7, 1000}) {
      for (StopMode mode : {StopMode::kRefuse, StopMode::kTakeThenStop}) {
        auto listed = ListInChunks(DirLister(ctx, source), chunk, mode);
        ASSERT_TRUE(listed.ok()) << listed.status();
        ExpectListing(*listed, WithDots(names));
        // Directory order: ".", "..", then as written.
        ASSERT_GE(listed->size(), 3u);
        EXPECT_EQ((*listed)[0].name, ".");
        EXPECT_EQ((*listed)[1].name, "..");
        EXPECT_EQ((*listed)[2].name, "f0");
      }
    }
  }
}

TEST(LinearDirectoryTest, CookieIsBytePosition) {
  const DirectoryContext ctx = MakeContext(1024, false, false);
  VectorSource source(BuildLinear(ctx, MakeNames(3)));
  std::vector<DirEntry> listed;
  ASSERT_TRUE(ListDirectory(ctx, source, 0, [&](const DirEntry& e) {
                listed.push_back(e);
                return true;
              }).ok());
  ASSERT_EQ(listed.size(), 5u);
  EXPECT_EQ(listed[0].next_cookie, 12u);
  EXPECT_EQ(listed[1].next_cookie, 24u);
  EXPECT_EQ(listed[2].next_cookie, 36u);
  EXPECT_EQ(listed[4].next_cookie, 1024u);
  // A cookie inside a record resumes at the next record.
  std::vector<std::string> names;
  ASSERT_TRUE(ListDirectory(ctx, source, 13, [&](const DirEntry& e) {
                names.push_back(e.name);
                return true;
              }).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"f0", "f1", "f2"}));
  // Past the end: nothing.
  int count = 0;
  ASSERT_TRUE(ListDirectory(ctx, source, 1 << 20, [&](const DirEntry&) {
                ++count;
                return true;
              }).ok());
  EXPECT_EQ(count, 0);
}

TEST(LinearDirectoryTest, CorruptionIsEuclean) {
  const DirectoryContext ctx = MakeContext(1024, true, false);
  auto blocks = BuildLinear(ctx, MakeNames(100));
  {
    auto bad = blocks;
    bad[1][100] ^= 1;  // checksum mismatch
    VectorSource source(bad);
    EXPECT_EQ(ErrnoOf(LookupInDirectory(ctx, source, "f99").status()), EUCLEAN);
    EXPECT_EQ(ErrnoOf(ListDirectory(ctx, source, 0,
                                    [](const DirEntry&) { return true; })),
              EUCLEAN);
  }
  {
    auto bad = blocks;
    format::Put16(bad[0], 24 + 4, 0);  // rec_len 0
    format::SetDirBlockChecksum(bad[0], kInodeSeed);
    VectorSource source(bad);
    EXPECT_EQ(ErrnoOf(LookupInDirectory(ctx, source, "f99").status()), EUCLEAN);
    EXPECT_EQ(ErrnoOf(ListDirectory(ctx, source, 0,
                                    [](const DirEntry&) { return true; })),
              EUCLEAN);
  }
  {
    DirectoryContext bad_ctx = ctx;
    bad_ctx.block_size = 1000;
    VectorSource source(blocks);
    EXPECT_EQ(ErrnoOf(LookupInDirectory(bad_ctx, source, "f1").status()),
              EINVAL);
  }
}

TEST(LinearDirectoryTest, SixtyFourKiBBlocks) {
  const DirectoryContext ctx = MakeContext(65536, true, false);
  const auto names = MakeNames(5000);
  VectorSource source(BuildLinear(ctx, names));
  ASSERT_EQ(source.BlockCount(), 2u);
  for (const TestEntry& e : names) {
    ASSERT_EQ(*LookupInDirectory(ctx, source, e.name), e.ino);
  }
  auto listed = ListInChunks(DirLister(ctx, source), 7, StopMode::kRefuse);
  ASSERT_TRUE(listed.ok());
  ExpectListing(*listed, WithDots(names));
}

// ---------------------------------------------------------------------------
// Hash-tree directories.

struct HtreeCase {
  const char* label;
  uint32_t block_size;
  bool csum;
  bool large_dir;
  HtreeShape shape;
  int entries;
};

class HtreeDirectoryTest : public ::testing::TestWithParam<HtreeCase> {};

TEST_P(HtreeDirectoryTest, LookupReadsOnePathAndListsEverything) {
  const HtreeCase& c = GetParam();
  DirectoryContext ctx = MakeContext(c.block_size, c.csum, true);
  ctx.large_dir = c.large_dir;
  const auto names = MakeNames(c.entries, "entry-");
  VectorSource source(BuildHtree(ctx, names, c.shape));

  for (const TestEntry& e : names) {
    source.reads = 0;
    auto ino = LookupInDirectory(ctx, source, e.name);
    ASSERT_TRUE(ino.ok()) << e.name << ": " << ino.status();
    ASSERT_EQ(*ino, e.ino);
    // The root, one block per interior level, the leaf.
    ASSERT_EQ(source.reads, c.shape.levels + 2) << e.name;
  }
  source.reads = 0;
  EXPECT_EQ(ErrnoOf(LookupInDirectory(ctx, source, "absent").status()), ENOENT);
  EXPECT_EQ(source.reads, c.shape.levels + 2);
  source.reads = 0;
  EXPECT_EQ(*LookupInDirectory(ctx, source, ".."), kParentIno);
  EXPECT_EQ(*LookupInDirectory(ctx, source, "."), kDirIno);
  EXPECT_EQ(source.reads, 2);

  for (StopMode mode : {StopMode::kRefuse, StopMode::kTakeThenStop}) {
    auto listed = ListInChunks(DirLister(ctx, source), 7, mode);
    ASSERT_TRUE(listed.ok()) << listed.status();
    ExpectListing(*listed, WithDots(names));
    // "." and "..", then hash order.
    ASSERT_EQ((*listed)[0].name, ".");
    ASSERT_EQ((*listed)[1].name, "..");
    for (size_t i = 3; i < listed->size(); ++i) {
      const auto a = HashOf(ctx, c.shape.stored_version, (*listed)[i - 1].name);
      const auto b = HashOf(ctx, c.shape.stored_version, (*listed)[i].name);
      ASSERT_LE(std::tie(a.major, a.minor), std::tie(b.major, b.minor));
    }
  }
  auto whole = ListInChunks(DirLister(ctx, source), 1 << 20, StopMode::kRefuse);
  ASSERT_TRUE(whole.ok());
  ExpectListing(*whole, WithDots(names));

  // A listing resumed in the middle reads one path down the index and the
  // leaves it lists from, not the whole directory.
  const DirEntry& middle = (*whole)[whole->size() / 2];
  source.reads = 0;
  std::vector<std::string> next;
  ASSERT_TRUE(
      ListDirectory(ctx, source, middle.next_cookie, [&](const DirEntry& e) {
        next.push_back(e.name);
        return next.size() < 3;
      }).ok());
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next[0], (*whole)[whole->size() / 2 + 1].name);
  EXPECT_LE(source.reads, 2 * (c.shape.levels + 1) + 2);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, HtreeDirectoryTest,
    ::testing::Values(HtreeCase{"one_level",
                                1024,
                                false,
                                false,
                                {format::kDxHashHalfMd4, 40, 100, 0},
                                2000},
                      HtreeCase{"one_level_csum_tea",
                                4096,
                                true,
                                false,
                                {format::kDxHashTea, 100, 500, 0},
                                5000},
                      HtreeCase{"two_levels",
                                1024,
                                false,
                                false,
                                {format::kDxHashHalfMd4, 8, 16, 1},
                                5000},
                      HtreeCase{"two_levels_csum_legacy",
                                1024,
                                true,
                                false,
                                {format::kDxHashLegacy, 8, 16, 1},
                                5000},
                      HtreeCase{"three_levels_large_dir",
                                1024,
                                true,
                                true,
                                {format::kDxHashHalfMd4, 4, 8, 2},
                                5000},
                      HtreeCase{"three_levels_4k",
                                4096,
                                false,
                                true,
                                {format::kDxHashTea, 3, 5, 2},
                                1000},
                      HtreeCase{"64k_blocks",
                                65536,
                                true,
                                false,
                                {format::kDxHashHalfMd4, 1000, 8, 1},
                                5000}),
    [](const ::testing::TestParamInfo<HtreeCase>& info) {
      return std::string(info.param.label);
    });

TEST(HtreeDirectoryTest, ThreeLevelsNeedLargeDir) {
  DirectoryContext ctx = MakeContext(1024, false, true);
  ctx.large_dir = true;
  const auto names = MakeNames(200);
  auto blocks = BuildHtree(ctx, names, {format::kDxHashHalfMd4, 4, 4, 2});
  ctx.large_dir = false;
  VectorSource source(blocks);
  EXPECT_EQ(ErrnoOf(LookupInDirectory(ctx, source, "f1").status()), EUCLEAN);
  EXPECT_EQ(ErrnoOf(ListDirectory(ctx, source, 0,
                                  [](const DirEntry&) { return true; })),
            EUCLEAN);
}

TEST(HtreeDirectoryTest, UnsignedHashVariant) {
  DirectoryContext ctx = MakeContext(1024, true, true);
  ctx.hash_unsigned = true;
  std::vector<TestEntry> names;
  for (int i = 0; i < 500; ++i) {
    names.push_back({"caf\xc3\xa9-\xff" + std::to_string(i),
                     static_cast<uint32_t>(1000 + i), kFtRegular});
  }
  VectorSource source(BuildHtree(ctx, names, {format::kDxHashTea, 4, 50, 1}));
  for (const TestEntry& e : names) {
    ASSERT_EQ(*LookupInDirectory(ctx, source, e.name), e.ino) << e.name;
  }
  auto listed = ListInChunks(DirLister(ctx, source), 7, StopMode::kRefuse);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ExpectListing(*listed, WithDots(names));
  // Read as signed, most names hash elsewhere and are not found, and the
  // listing notices leaves holding hashes outside their range.
  ctx.hash_unsigned = false;
  int missing = 0;
  for (const TestEntry& e : names) {
    if (!LookupInDirectory(ctx, source, e.name).ok()) ++missing;
  }
  EXPECT_GT(missing, 400);
  EXPECT_EQ(ErrnoOf(ListDirectory(ctx, source, 0,
                                  [](const DirEntry&) { return true; })),
            EUCLEAN);
}

// Two names whose legacy hashes collide, found by a birthday search.
std::pair<std::string, std::string> LegacyCollision(
    const DirectoryContext& ctx) {
  absl::flat_hash_map<uint32_t, std::string> seen;
  for (int i = 0; i < (1 << 22); ++i) {
    std::string name = "c" + std::to_string(i);
    const uint32_t major = HashOf(ctx, format::kDxHashLegacy, name).major;
    auto [it, inserted] = seen.emplace(major, name);
    if (!inserted) return {it->second, name};
  }
  return {};
}

TEST(HtreeDirectoryTest, FollowsCollisionContinuation) {
  const DirectoryContext ctx = MakeContext(1024, true, true);
  const auto [a, b] = LegacyCollision(ctx);
  ASSERT_FALSE(a.empty());
  const format::DxHash ha = HashOf(ctx, format::kDxHashLegacy, a);
  ASSERT_EQ(ha.major, HashOf(ctx, format::kDxHashLegacy, b).major);
  std::vector<TestEntry> names = MakeNames(300);
  names.push_back({a, 5001, kFtRegular});
  names.push_back({b, 5002, kFtRegular});
  // One entry per leaf: the second colliding name sits in a leaf whose index
  // hash has the continuation bit set.
  const HtreeShape shape{format::kDxHashLegacy, 1, 100, 1};
  VectorSource source(BuildHtree(ctx, names, shape));
  int longest = 0;
  for (const TestEntry& e : names) {
    source.reads = 0;
    ASSERT_EQ(*LookupInDirectory(ctx, source, e.name), e.ino) << e.name;
    longest = std::max(longest, source.reads);
    if (e.name != a && e.name != b) {
      EXPECT_EQ(source.reads, shape.levels + 2) << e.name;
    }
  }
  // One of the pair needs the next leaf too.
  EXPECT_EQ(longest, shape.levels + 3);
  for (size_t chunk : {1, 2, 3, 7}) {
    for (StopMode mode : {StopMode::kRefuse, StopMode::kTakeThenStop}) {
      auto listed = ListInChunks(DirLister(ctx, source), chunk, mode);
      ASSERT_TRUE(listed.ok()) << listed.status();
      ExpectListing(*listed, WithDots(names));
    }
  }
}

// ---------------------------------------------------------------------------
// Corrupt indexes.

class CorruptHtreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_ = MakeContext(1024, true, true);
    names_ = MakeNames(400);
    blocks_ = BuildHtree(ctx_, names_, {format::kDxHashHalfMd4, 8, 10, 1});
  }

  // Both lookups and listings fail with EUCLEAN (or at least some lookup
  // does when `every_lookup` is false).
  void ExpectEuclean(const std::vector<std::vector<uint8_t>>& blocks,
                     bool every_lookup = true) {
    VectorSource source(blocks);
    int failed = 0;
    for (const TestEntry& e : names_) {
      auto ino = LookupInDirectory(ctx_, source, e.name);
      if (!ino.ok()) {
        EXPECT_EQ(ErrnoOf(ino.status()), EUCLEAN) << ino.status();
        ++failed;
      }
    }
    if (every_lookup) {
      EXPECT_EQ(failed, static_cast<int>(names_.size()));
    } else {
      EXPECT_GT(failed, 0);
    }
    auto listed = ListInChunks(DirLister(ctx_, source), 7, StopMode::kRefuse);
    EXPECT_EQ(ErrnoOf(listed.status()), EUCLEAN);
  }

  void Reseal(std::vector<uint8_t>& block) {
    ASSERT_TRUE(format::SetDxChecksum(block, kInodeSeed).ok());
  }

  uint32_t FirstNode() const {
    auto root = format::ParseDxRoot(blocks_[0], true, false);
    return root->entries.block(0);
  }

  DirectoryContext ctx_;
  std::vector<TestEntry> names_;
  std::vector<std::vector<uint8_t>> blocks_;
};

TEST_F(CorruptHtreeTest, RootChecksum) {
  auto blocks = blocks_;
  blocks[0][40] ^= 1;
  ExpectEuclean(blocks);
}

TEST_F(CorruptHtreeTest, NodeChecksum) {
  auto blocks = blocks_;
  blocks[FirstNode()][20] ^= 1;
  ExpectEuclean(blocks, false);
}

TEST_F(CorruptHtreeTest, LeafChecksum) {
  auto blocks = blocks_;
  blocks[1][30] ^= 1;
  ExpectEuclean(blocks, false);
}

TEST_F(CorruptHtreeTest, RootPointsToItself) {
  auto blocks = blocks_;
  format::PutDxEntry(blocks[0], format::kDxRootCountOffset, 0, 0, 0);
  Reseal(blocks[0]);
  ExpectEuclean(blocks, false);
}

TEST_F(CorruptHtreeTest, NodePointsToItsParentOrItself) {
  for (uint32_t target : {0u, FirstNode()}) {
    auto blocks = blocks_;
    format::PutDxEntry(blocks[FirstNode()], format::kDxNodeCountOffset, 0, 0,
                       target);
    Reseal(blocks[FirstNode()]);
    ExpectEuclean(blocks, false);
  }
}

TEST_F(CorruptHtreeTest, PointerPastTheEnd) {
  auto blocks = blocks_;
  format::PutDxEntry(blocks[FirstNode()], format::kDxNodeCountOffset, 1,
                     format::Le32(blocks[FirstNode()], 16), 5000);
  Reseal(blocks[FirstNode()]);
  ExpectEuclean(blocks, false);
}

TEST_F(CorruptHtreeTest, CountBeyondLimit) {
  auto blocks = blocks_;
  format::PutDxCount(blocks[FirstNode()], format::kDxNodeCountOffset, 127);
  ExpectEuclean(blocks, false);
}

TEST_F(CorruptHtreeTest, HashesOutOfOrder) {
  auto blocks = blocks_;
  auto& node = blocks[FirstNode()];
  format::Put32(node, format::kDxNodeCountOffset + 2 * 8, 0xffffff00);
  Reseal(node);
  ExpectEuclean(blocks, false);
}

TEST_F(CorruptHtreeTest, EntryOutsideItsLeafRange) {
  // Swap two leaves' contents: lookups of names in them fail or succeed by
  // chance, but the listing sees hashes outside the index's ranges.
  auto blocks = blocks_;
  std::swap(blocks[1], blocks[20]);
  VectorSource source(blocks);
  auto listed = ListInChunks(DirLister(ctx_, source), 7, StopMode::kRefuse);
  EXPECT_EQ(ErrnoOf(listed.status()), EUCLEAN);
}

TEST_F(CorruptHtreeTest, RandomDamageNeverCrashesOrHangs) {
  std::mt19937 rng(1234);
  DirectoryContext ctx = ctx_;
  for (int round = 0; round < 400; ++round) {
    auto blocks = blocks_;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; ++i) {
      auto& block = blocks[rng() % blocks.size()];
      // Hit the headers and index entries more often than names.
      const size_t at = rng() % 2 ? rng() % 64 : rng() % block.size();
      block[at] = static_cast<uint8_t>(rng());
    }
    // Reseal checksums half the time so the damage reaches the parsers.
    if (round % 2 == 0) {
      for (auto& block : blocks) {
        if (format::HasDirCsumTail(block)) {
          format::SetDirBlockChecksum(block, kInodeSeed);
        } else {
          (void)format::SetDxChecksum(block, kInodeSeed);
        }
      }
    }
    ctx.large_dir = round % 3 == 0;
    VectorSource source(blocks);
    for (int i = 0; i < 20; ++i) {
      (void)LookupInDirectory(ctx, source, names_[rng() % names_.size()].name);
    }
    (void)ListInChunks(DirLister(ctx, source), 5, StopMode::kRefuse);
    ctx.metadata_csum = false;
    (void)ListInChunks(DirLister(ctx, source), 50, StopMode::kRefuse);
    ctx.htree = false;
    (void)ListInChunks(DirLister(ctx, source), 50, StopMode::kRefuse);
    (void)LookupInDirectory(ctx, source, "f1");
    ctx = ctx_;
  }
}

TEST(HtreeCookieTest, ArbitraryCookiesTerminate) {
  DirectoryContext ctx = MakeContext(1024, false, true);
  const auto names = MakeNames(500);
  VectorSource source(
      BuildHtree(ctx, names, {format::kDxHashHalfMd4, 8, 10, 1}));
  for (uint64_t cookie :
       {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{0xfff},
        uint64_t{1} << 32, uint64_t{0x7fffffffffffffff},
        uint64_t{0x8000000000000000}, ~uint64_t{0}}) {
    size_t n = 0;
    ASSERT_TRUE(ListDirectory(ctx, source, cookie, [&](const DirEntry&) {
                  ++n;
                  return true;
                }).ok());
    EXPECT_LE(n, names.size() + 2);
  }
  // 1 resumes after ".", 2 after "..".
  std::vector<std::string> first;
  ASSERT_TRUE(ListDirectory(ctx, source, 1, [&](const DirEntry& e) {
                first.push_back(e.name);
                return first.size() < 2;
              }).ok());
  EXPECT_EQ(first[0], "..");
  EXPECT_NE(first[1], ".");
}

// ---------------------------------------------------------------------------
// Inline directories.

struct InlineDir {
  std::vector<uint8_t> i_block;
  std::vector<uint8_t> system_data;
};

InlineDir BuildInline(const std::vector<TestEntry>& first,
                      const std::vector<TestEntry>& second,
                      size_t system_data_size) {
  InlineDir dir;
  dir.i_block.assign(60, 0);
  format::Put32(dir.i_block, 0, kParentIno);
  std::vector<uint8_t> region(56, 0);
  auto pack = [](std::vector<uint8_t>& region,
                 const std::vector<TestEntry>& entries) {
    uint32_t offset = 0;
    const uint32_t end = static_cast<uint32_t>(region.size());
    if (entries.empty() && end > 0)
      format::WriteDirEntry(region, 0, 0, end, "", 0);
    for (size_t i = 0; i < entries.size(); ++i) {
      uint32_t rec =
          format::DirRecLen(static_cast<uint32_t>(entries[i].name.size()));
      if (i + 1 == entries.size()) rec = end - offset;
      format::WriteDirEntry(region, offset, entries[i].ino, rec,
                            entries[i].name, entries[i].type);
      offset += rec;
    }
  };
  pack(region, first);
  std::copy(region.begin(), region.end(), dir.i_block.begin() + 4);
  dir.system_data.assign(system_data_size, 0);
  pack(dir.system_data, second);
  return dir;
}

TEST(InlineDirectoryTest, LookupAndList) {
  const DirectoryContext ctx = MakeContext(4096, true, false);
  const std::vector<TestEntry> first = {{"a", 20, kFtRegular},
                                        {"bb", 21, kFtDirectory},
                                        {"deleted", 0, kFtRegular}};
  const std::vector<TestEntry> second = {{"ccc", 22, kFtRegular},
                                         {"dddd", 23, format::kFtSymlink}};
  const InlineDir dir = BuildInline(first, second, 72);
  const Bytes i_block(dir.i_block);
  const Bytes data(dir.system_data);

  EXPECT_EQ(*LookupInInlineDirectory(ctx, i_block, data, "."), kDirIno);
  EXPECT_EQ(*LookupInInlineDirectory(ctx, i_block, data, ".."), kParentIno);
  EXPECT_EQ(*LookupInInlineDirectory(ctx, i_block, data, "a"), 20u);
  EXPECT_EQ(*LookupInInlineDirectory(ctx, i_block, data, "bb"), 21u);
  EXPECT_EQ(*LookupInInlineDirectory(ctx, i_block, data, "dddd"), 23u);
  EXPECT_EQ(
      ErrnoOf(LookupInInlineDirectory(ctx, i_block, data, "deleted").status()),
      ENOENT);
  EXPECT_EQ(
      ErrnoOf(LookupInInlineDirectory(ctx, i_block, data, std::string(300, 'x'))
                  .status()),
      ENAMETOOLONG);

  std::vector<DirEntry> all;
  ASSERT_TRUE(
      ListInlineDirectory(ctx, i_block, data, 0, [&](const DirEntry& e) {
        all.push_back(e);
        return true;
      }).ok());
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[0].name, ".");
  EXPECT_EQ(all[0].type, static_cast<uint32_t>(S_IFDIR));
  EXPECT_EQ(all[0].next_cookie, 12u);
  EXPECT_EQ(all[1].name, "..");
  EXPECT_EQ(all[1].ino, kParentIno);
  EXPECT_EQ(all[1].next_cookie, 24u);
  EXPECT_EQ(all[2].name, "a");
  EXPECT_EQ(all[2].next_cookie, 24u + 12);  // the kernel's positions
  EXPECT_EQ(all[4].name, "ccc");
  EXPECT_EQ(all[5].name, "dddd");
  EXPECT_EQ(all[5].type, static_cast<uint32_t>(S_IFLNK));
  EXPECT_EQ(all[5].next_cookie, 20u + 60 + 72);

  const Lister lister = [&](uint64_t cookie,
                            const std::function<bool(const DirEntry&)>& emit) {
    return ListInlineDirectory(ctx, i_block, data, cookie, emit);
  };
  std::vector<TestEntry> expected = {{"a", 20, kFtRegular},
                                     {"bb", 21, kFtDirectory},
                                     {"ccc", 22, kFtRegular},
                                     {"dddd", 23, format::kFtSymlink}};
  for (size_t chunk : {1, 2, 5}) {
    for (StopMode mode : {StopMode::kRefuse, StopMode::kTakeThenStop}) {
      auto listed = ListInChunks(lister, chunk, mode);
      ASSERT_TRUE(listed.ok());
      ExpectListing(*listed, WithDots(expected));
    }
  }
}

TEST(InlineDirectoryTest, EmptyAndCorrupt) {
  const DirectoryContext ctx = MakeContext(4096, false, false);
  const InlineDir empty = BuildInline({}, {}, 0);
  std::vector<std::string> names;
  ASSERT_TRUE(ListInlineDirectory(ctx, empty.i_block, empty.system_data, 0,
                                  [&](const DirEntry& e) {
                                    names.push_back(e.name);
                                    return true;
                                  })
                  .ok());
  EXPECT_EQ(names, (std::vector<std::string>{".", ".."}));

  InlineDir bad = BuildInline({{"x", 30, kFtRegular}}, {}, 0);
  format::Put16(bad.i_block, 4 + 4, 0);
  EXPECT_EQ(
      ErrnoOf(LookupInInlineDirectory(ctx, bad.i_block, bad.system_data, "y")
                  .status()),
      EUCLEAN);
  EXPECT_EQ(ErrnoOf(ListInlineDirectory(ctx, bad.i_block, bad.system_data, 0,
                                        [](const DirEntry&) { return true; })),
            EUCLEAN);
  EXPECT_EQ(ErrnoOf(LookupInInlineDirectory(ctx, Bytes(bad.i_block).first(20),
                                            bad.system_data, "x")
                        .status()),
            EUCLEAN);
}

// ---------------------------------------------------------------------------
// Real images made by mke2fs, checked against debugfs.

using ::ext4::testing::HaveTools;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kDumpe2fs;
using ::ext4::testing::kE2fsck;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::kTune2fs;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::RunCommand;
using ::ext4::testing::StderrMode;

std::string Field(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  if (at == std::string::npos) return "";
  size_t start = at + key.size();
  while (start < text.size() && text[start] == ' ') ++start;
  const size_t end = text.find('\n', start);
  return text.substr(start, end - start);
}

std::vector<uint8_t> ParseUuid(const std::string& text) {
  std::vector<uint8_t> bytes;
  std::string hex;
  for (char ch : text) {
    if (std::isxdigit(static_cast<unsigned char>(ch))) hex.push_back(ch);
  }
  for (size_t i = 0; i + 1 < hex.size() && bytes.size() < 16; i += 2) {
    bytes.push_back(
        static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

class ImageSource : public DirectoryBlockSource {
 public:
  ImageSource(int fd, uint32_t block_size, std::vector<uint64_t> physical)
      : fd_(fd), block_size_(block_size), physical_(std::move(physical)) {}
  absl::StatusOr<std::shared_ptr<const std::vector<uint8_t>>> ReadBlock(
      uint32_t logical) override {
    ++reads;
    if (logical >= physical_.size()) return ErrnoError(EIO, "past the end");
    auto& cached = cache_[logical];
    if (cached == nullptr) {
      auto block = std::make_shared<std::vector<uint8_t>>(block_size_);
      if (pread(fd_, block->data(), block_size_,
                static_cast<off_t>(physical_[logical] * block_size_)) !=
          static_cast<ssize_t>(block_size_)) {
        return ErrnoError(EIO, "pread");
      }
      cached = std::move(block);
    }
    return cached;
  }
  uint32_t BlockCount() const override {
    return static_cast<uint32_t>(physical_.size());
  }
  int reads = 0;

 private:
  int fd_;
  uint32_t block_size_;
  std::vector<uint64_t> physical_;
  std::map<uint32_t, std::shared_ptr<const std::vector<uint8_t>>> cache_;
};

struct ImageCase {
  const char* label;
  std::string mke2fs_options;  // besides -q -F -t ext4 -d
  std::string size;
  int long_name_pad;     // extra characters per name
  bool high_bytes;       // some names with bytes >= 0x80
  std::string hash_alg;  // tune2fs -E hash_alg=..., "" to keep
  bool unsigned_hash;    // set the unsigned-hash superblock flag
  int expect_levels;     // indirect_levels of the index e2fsck -D builds
};

void PrintTo(const ImageCase& c, std::ostream* os) { *os << c.label; }

class RealImageTest : public ::testing::TestWithParam<ImageCase> {
 protected:
  void SetUp() override {
    if (!HaveTools({kMke2fs, kDebugfs, kDumpe2fs, kE2fsck, kTune2fs}))
      GTEST_SKIP() << "e2fsprogs (mke2fs, debugfs) not found";
    dir_ = MakeTempDir("e4fs_dir_");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (!dir_.empty())
      RunCommand("rm -rf '" + dir_ + "'", StderrMode::kDiscard);
  }

  // Checks lookups of every name debugfs lists in /big, and listings, on
  // the image as it is now.
  void CheckBigDirectory(const std::string& img, bool expect_htree,
                         int expect_levels);

  std::string dir_;
};

void RealImageTest::CheckBigDirectory(const std::string& img, bool expect_htree,
                                      int expect_levels) {
  const ImageCase& c = GetParam();
  auto debugfs = [&](const std::string& request) {
    return RunCommand("/usr/sbin/debugfs -R '" + request + "' '" + img + "'",
                      StderrMode::kDiscard)
        .output;
  };
  // The superblock facts the engine takes from the superblock.
  const std::string super =
      RunCommand("/usr/sbin/dumpe2fs -h '" + img + "'", StderrMode::kDiscard)
          .output;
  const uint32_t block_size =
      static_cast<uint32_t>(std::stoul(Field(super, "Block size:")));
  const std::string features = " " + Field(super, "Filesystem features:") + " ";
  const std::string flags = Field(super, "Filesystem flags:");
  const std::string def_hash = Field(super, "Default directory hash:");
  const std::vector<uint8_t> hash_seed =
      ParseUuid(Field(super, "Directory Hash Seed:"));
  const std::vector<uint8_t> uuid = ParseUuid(Field(super, "Filesystem UUID:"));
  ASSERT_EQ(hash_seed.size(), 16u);
  ASSERT_EQ(uuid.size(), 16u);

  const std::string stat = debugfs("stat /big");
  const uint32_t ino = static_cast<uint32_t>(std::stoul(Field(stat, "Inode:")));
  const uint32_t inode_flags =
      static_cast<uint32_t>(std::stoul(Field(stat, "Flags:"), nullptr, 16));
  const uint32_t generation =
      static_cast<uint32_t>(std::stoul(Field(stat, "Generation:")));

  DirectoryContext ctx;
  ctx.ino = ino;
  ctx.block_size = block_size;
  ctx.metadata_csum = features.find(" metadata_csum ") != std::string::npos;
  uint32_t fs_seed = format::Crc32c(~0u, uuid);
  if (features.find(" metadata_csum_seed ") != std::string::npos) {
    fs_seed = static_cast<uint32_t>(
        std::stoul(Field(super, "Checksum seed:"), nullptr, 16));
  }
  ctx.inode_checksum_seed = format::InodeChecksumSeed(fs_seed, ino, generation);
  ctx.htree = (inode_flags & 0x1000) != 0 &&
              features.find(" dir_index ") != std::string::npos;
  ctx.large_dir = features.find(" large_dir ") != std::string::npos;
  for (int i = 0; i < 4; ++i) ctx.hash_seed[i] = format::Le32(hash_seed, 4 * i);
  ctx.default_hash_version = def_hash == "tea"      ? format::kDxHashTea
                             : def_hash == "legacy" ? format::kDxHashLegacy
                                                    : format::kDxHashHalfMd4;
  ctx.hash_unsigned =
      flags.find("unsigned_directory_hash") != std::string::npos;
  ctx.filetype = features.find(" filetype ") != std::string::npos;
  ASSERT_EQ(ctx.htree, expect_htree);
  ASSERT_EQ(ctx.hash_unsigned, c.unsigned_hash);

  std::vector<uint64_t> physical;
  {
    std::istringstream in(debugfs("blocks /big"));
    uint64_t block;
    while (in >> block) physical.push_back(block);
  }
  ASSERT_FALSE(physical.empty());

  // debugfs's listing, one "/ino/mode/uid/gid/name/size/" line per record
  // (unused records show inode 0).
  std::vector<TestEntry> expected;
  {
    std::istringstream in(debugfs("ls -p /big"));
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> parts;
      std::string part;
      std::istringstream fields(line);
      while (std::getline(fields, part, '/')) parts.push_back(part);
      if (parts.size() < 6 || parts[1].empty() || parts[1] == "0") continue;
      const uint32_t mode =
          static_cast<uint32_t>(std::stoul(parts[2], nullptr, 8));
      expected.push_back({parts[5], static_cast<uint32_t>(std::stoul(parts[1])),
                          format::ModeToDirFileType(mode)});
    }
  }
  ASSERT_EQ(expected.size(), 5000u + 4);

  const int fd = open(img.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ImageSource source(fd, block_size, physical);
  if (expect_htree) {
    auto root = source.ReadBlock(0);
    ASSERT_TRUE(root.ok());
    EXPECT_EQ((**root)[format::kDxRootInfoOffset + 6], expect_levels);
  }

  for (const TestEntry& e : expected) {
    source.reads = 0;
    auto found = LookupInDirectory(ctx, source, e.name);
    ASSERT_TRUE(found.ok()) << e.name << ": " << found.status();
    ASSERT_EQ(*found, e.ino) << e.name;
    if (expect_htree && e.name != "." && e.name != "..") {
      ASSERT_LE(source.reads, expect_levels + 3) << e.name;
    }
  }
  EXPECT_EQ(ErrnoOf(LookupInDirectory(ctx, source, "no_such_name").status()),
            ENOENT);
  auto listed = ListInChunks(DirLister(ctx, source), 7, StopMode::kRefuse);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ExpectListing(*listed, expected);
  auto whole =
      ListInChunks(DirLister(ctx, source), 1 << 20, StopMode::kTakeThenStop);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ExpectListing(*whole, expected);
  close(fd);
}

TEST_P(RealImageTest, MatchesDebugfs) {
  const ImageCase& c = GetParam();
  const std::string src = dir_ + "/src";
  const std::string img = dir_ + "/img";
  ASSERT_EQ(mkdir(src.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((src + "/big").c_str(), 0755), 0);
  for (int i = 0; i < 5000; ++i) {
    std::string name = "file_" + std::to_string(i);
    if (c.high_bytes && i % 3 == 0) {
      name = "caf\xc3\xa9\xff_" + std::to_string(i);
    }
    if (c.long_name_pad > 0) name += std::string(c.long_name_pad, 'x');
    const std::string path = src + "/big/" + name;
    const int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0) << path;
    close(fd);
  }
  ASSERT_EQ(mkdir((src + "/big/subdir").c_str(), 0755), 0);
  ASSERT_EQ(symlink("target", (src + "/big/link").c_str()), 0);

  ASSERT_EQ(RunCommand("/usr/sbin/mke2fs -q -F -t ext4 " + c.mke2fs_options +
                           " -d '" + src + "' '" + img + "' " + c.size,
                       StderrMode::kDiscard)
                .exit_code,
            0);
  if (!c.hash_alg.empty()) {
    ASSERT_EQ(RunCommand("/usr/sbin/tune2fs -E hash_alg=" + c.hash_alg + " '" +
                             img + "'",
                         StderrMode::kDiscard)
                  .exit_code,
              0);
  }
  if (c.unsigned_hash) {
    ASSERT_EQ(RunCommand("/usr/sbin/debugfs -w -R 'ssv flags 2' '" + img + "'",
                         StderrMode::kDiscard)
                  .exit_code,
              0);
  }
  // mke2fs -d writes a plain linear directory ...
  {
    SCOPED_TRACE("linear");
    CheckBigDirectory(img, false, 0);
  }
  if (HasFatalFailure()) return;
  // ... which e2fsck -D indexes.
  const int rc =
      RunCommand("/usr/sbin/e2fsck -fyD '" + img + "'", StderrMode::kDiscard)
          .exit_code;
  ASSERT_TRUE(rc == 0 || rc == 1) << rc;
  {
    SCOPED_TRACE("htree");
    CheckBigDirectory(img, true, c.expect_levels);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Mke2fs, RealImageTest,
    ::testing::Values(
        ImageCase{"1k_half_md4", "", "64M", 0, true, "", false, 0},
        ImageCase{"1k_two_levels", "-b 1024", "64M", 60, false, "", false, 1},
        ImageCase{"4k_tea_unsigned", "-b 4096", "64M", 0, true, "tea", true, 0},
        ImageCase{"4k_legacy_no_csum", "-b 4096 -O ^metadata_csum", "64M", 20,
                  true, "legacy", false, 0},
        ImageCase{"64k", "-b 65536 -N 6000", "256M", 0, true, "", false, 0}),
    [](const ::testing::TestParamInfo<ImageCase>& info) {
      return std::string(info.param.label);
    });

}  // namespace
}  // namespace ext4
