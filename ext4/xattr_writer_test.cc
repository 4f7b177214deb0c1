// The xattr writer on images made by mke2fs, for several layouts (256- and
// 128-byte inodes, with and without metadata_csum, 1 KiB blocks). After
// every scenario the image must pass `e2fsck -fn`, and debugfs must show the
// attributes the scenario expects.
#include "ext4/xattr_writer.h"

#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/allocator.h"
#include "ext4/block_allocator.h"
#include "ext4/errno_status.h"
#include "ext4/format/endian.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/format/xattr.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"
#include "ext4/testing/image_tools.h"
#include "ext4/transaction.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

constexpr int kCreate = XATTR_CREATE;
constexpr int kReplace = XATTR_REPLACE;

using ::ext4::testing::CommandResult;
using ::ext4::testing::HaveTools;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kE2fsck;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::ReadFileBytes;
using ::ext4::testing::RunCommand;

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::string Pattern(size_t size, int seed) {
  std::string data(size, '\0');
  uint32_t x = 2463534242u + static_cast<uint32_t>(seed);
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    data[i] = static_cast<char>(x);
  }
  return data;
}

format::Bytes AsBytes(const std::string& s) {
  return format::Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// A VFS-format POSIX ACL: {tag, perm, id} entries after version 2.
std::string VfsAcl(
    const std::vector<std::tuple<uint16_t, uint16_t, uint32_t>>& entries) {
  std::string out(4, '\0');
  format::Put32(format::MutableBytes(reinterpret_cast<uint8_t*>(out.data()), 4),
                0, format::kAclXattrVersion);
  for (const auto& [tag, perm, id] : entries) {
    uint8_t e[8];
    format::Put16(e, 0, tag);
    format::Put16(e, 2, perm);
    format::Put32(e, 4, id);
    out.append(reinterpret_cast<const char*>(e), sizeof(e));
  }
  return out;
}

// Forwards to the bitmap allocator and records what the writer asked of it;
// can be told to refuse every allocation.
class RecordingAllocator : public BlockAllocator {
 public:
  explicit RecordingAllocator(BitmapAllocator& real) : real_(real) {}

  absl::StatusOr<BlockRun> AllocateBlocks(Transaction& tx, uint64_t goal,
                                          uint64_t count,
                                          bool use_reserve) override {
    last_goal = goal;
    if (fail_allocations) return ErrnoError(ENOSPC, "refused by the test");
    auto run = real_.AllocateBlocks(tx, goal, count, use_reserve);
    if (run.ok()) ++allocations;
    return run;
  }

  absl::Status FreeBlocks(Transaction& tx, uint64_t first,
                          uint64_t count) override {
    absl::Status status = real_.FreeBlocks(tx, first, count);
    if (status.ok()) {
      for (uint64_t i = 0; i < count; ++i) freed_.push_back(first + i);
    }
    return status;
  }

  const std::vector<uint64_t>& freed() const { return freed_; }

  int allocations = 0;
  uint64_t last_goal = 0;
  bool fail_allocations = false;

 private:
  BitmapAllocator& real_;
  std::vector<uint64_t> freed_;
};

struct Layout {
  const char* name;
  const char* args;
};

struct Node {
  uint32_t ino = 0;
  format::Inode inode;
  std::vector<uint8_t> raw;
};

class XattrWriterTest : public ::testing::TestWithParam<Layout> {
 protected:
  void SetUp() override {
    if (!HaveTools({kMke2fs, kE2fsck, kDebugfs}))
      GTEST_SKIP() << "e2fsprogs are not installed";
    dir_ = MakeTempDir("xattr_test.");
    ASSERT_FALSE(dir_.empty());
    src_ = dir_ + "/src";
    image_ = dir_ + "/fs.img";
    ASSERT_EQ(mkdir(src_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((src_ + "/d").c_str(), 0755), 0);
    WriteFile(src_ + "/f", "contents of f\n");
    WriteFile(src_ + "/g", "contents of g\n");
  }

  void TearDown() override {
    CloseImage();
    if (!dir_.empty()) RunCommand("rm -rf " + dir_);
  }

  // Sets xattrs on a source file before mke2fs copies it; skips the test
  // when the host filesystem refuses them.
  void SourceXattr(const std::string& file, const std::string& name,
                   const std::string& value) {
    const std::string path = src_ + "/" + file;
    if (setxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) !=
        0) {
      GTEST_SKIP() << "host refuses xattr " << name << ": "
                   << std::strerror(errno);
    }
  }

  // Whether listxattr on the source file shows `name`.
  bool SourceLists(const std::string& file, const std::string& name) {
    const std::string path = src_ + "/" + file;
    std::vector<char> names(65536);
    ssize_t n = listxattr(path.c_str(), names.data(), names.size());
    for (ssize_t i = 0; i < n;) {
      std::string entry(names.data() + i);
      if (entry == name) return true;
      i += static_cast<ssize_t>(entry.size()) + 1;
    }
    return false;
  }

  void MakeImage() {
    CommandResult r =
        RunCommand(absl::StrCat(kMke2fs, " -q -F -t ext4 ", GetParam().args,
                                " -d ", src_, " ", image_, " 32M"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  uint32_t InodeOf(const std::string& path) {
    CommandResult r =
        RunCommand(absl::StrCat(kDebugfs, " -R \"stat ", path, "\" ", image_));
    const size_t at = r.output.find("Inode: ");
    if (at == std::string::npos) return 0;
    return static_cast<uint32_t>(
        std::strtoul(r.output.c_str() + at + 7, nullptr, 10));
  }

  void OpenImage() {
    auto device = io::OpenFileDevice(image_, /*read_only=*/false);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = std::move(*device);
    std::vector<uint8_t> sb_bytes(1024);
    ASSERT_TRUE(device_->ReadAt(1024, sb_bytes).ok());
    auto sb = format::ParseSuperblock(sb_bytes);
    ASSERT_TRUE(sb.ok()) << sb.status();
    sb_ = *sb;
    cache_ = std::make_unique<io::BlockCache>(*device_, sb_.block_size(),
                                              sb_.blocks_count, 1024);
    auto allocator = BitmapAllocator::Create(sb_, *cache_);
    ASSERT_TRUE(allocator.ok()) << allocator.status();
    bitmaps_ = std::move(*allocator);
    pool_ = std::make_unique<RecordingAllocator>(*bitmaps_);
    ctx_.block_size = sb_.block_size();
    ctx_.metadata_csum = sb_.metadata_csum();
    ctx_.fs_checksum_seed = sb_.checksum_seed();
    ctx_.inode_size = sb_.inode_size();
    ctx_.ea_inode_feature = sb_.has_incompat(format::kIncompatEaInode);
  }

  void CloseImage() {
    pool_.reset();
    bitmaps_.reset();
    cache_.reset();
    if (device_) {
      ASSERT_TRUE(device_->Flush().ok());
    }
    device_.reset();
  }

  // Commits with the superblock's free counts, as the engine will.
  void Commit(Transaction& tx) {
    ASSERT_TRUE(bitmaps_->WriteSuperblock(tx).ok());
    absl::Status committed = tx.Commit();
    ASSERT_TRUE(committed.ok()) << committed;
  }

  // The inode table block holding `ino` and the inode's offset in it.
  std::pair<uint64_t, size_t> Slot(uint32_t ino) {
    const uint32_t group = (ino - 1) / sb_.inodes_per_group;
    const uint32_t index = (ino - 1) % sb_.inodes_per_group;
    auto gd_block = cache_->Read(format::GroupDescriptorBlock(sb_, group));
    EXPECT_TRUE(gd_block.ok());
    if (!gd_block.ok()) return {0, 0};
    auto gd = format::ParseGroupDescriptor(
        format::Bytes(**gd_block)
            .subspan(format::GroupDescriptorOffsetInBlock(sb_, group),
                     sb_.descriptor_size()),
        group, sb_);
    EXPECT_TRUE(gd.ok()) << gd.status();
    if (!gd.ok()) return {0, 0};
    const uint64_t byte = uint64_t{index} * sb_.inode_size();
    return {gd->inode_table + byte / sb_.block_size(),
            static_cast<size_t>(byte % sb_.block_size())};
  }

  Node Load(uint32_t ino) {
    Node node;
    node.ino = ino;
    auto [block, offset] = Slot(ino);
    auto bytes = cache_->Read(block);
    EXPECT_TRUE(bytes.ok());
    if (!bytes.ok()) return node;
    format::Bytes raw =
        format::Bytes(**bytes).subspan(offset, sb_.inode_size());
    node.raw.assign(raw.begin(), raw.end());
    auto inode = format::ParseInode(raw, ino, sb_);
    EXPECT_TRUE(inode.ok()) << inode.status();
    if (inode.ok()) node.inode = *inode;
    return node;
  }

  void Store(Transaction& tx, Node& node) {
    format::SerializeInode(node.inode, node.ino, sb_, node.raw);
    auto [block, offset] = Slot(node.ino);
    auto bytes = tx.Modify(block);
    ASSERT_TRUE(bytes.ok());
    std::memcpy(bytes->data() + offset, node.raw.data(), node.raw.size());
  }

  // Runs one writer call in its own transaction: commits it with the inode
  // on success; on failure checks that the inode is untouched and aborts.
  absl::Status Apply(Node& node,
                     const std::function<absl::Status(Transaction&)>& op) {
    const Node before = node;
    Transaction tx(*cache_);
    absl::Status status = op(tx);
    if (!status.ok()) {
      EXPECT_EQ(node.raw, before.raw) << "failed call changed the inode body";
      EXPECT_EQ(node.inode.file_acl, before.inode.file_acl);
      EXPECT_EQ(node.inode.blocks, before.inode.blocks);
      tx.Abort();
      // Drop the counters the aborted transaction changed.
      Transaction reload(*cache_);
      EXPECT_TRUE(bitmaps_->Load(reload).ok());
      return status;
    }
    Store(tx, node);
    Commit(tx);
    return status;
  }

  absl::Status Set(Node& node, const std::string& name,
                   const std::string& value, int flags = 0) {
    return Apply(node, [&](Transaction& tx) {
      return SetXattr(tx, ctx_, node.inode, node.raw, *pool_,
                      bitmaps_->GoalForInode(node.ino), name, value, flags);
    });
  }

  absl::Status Remove(Node& node, const std::string& name) {
    return Apply(node, [&](Transaction& tx) {
      return RemoveXattr(tx, ctx_, node.inode, node.raw, *pool_, name);
    });
  }

  // The attributes as the engine's reader sees them (ACLs in VFS form).
  std::map<std::string, std::string> ReadBack(const Node& node) {
    std::map<std::string, std::string> out;
    std::vector<format::XattrEntry> entries;
    format::Bytes area = format::InodeXattrArea(node.raw, node.inode);
    if (!area.empty()) {
      auto parsed = format::ParseInodeXattrs(area);
      EXPECT_TRUE(parsed.ok()) << parsed.status();
      if (parsed.ok()) entries = *parsed;
    }
    if (node.inode.file_acl != 0) {
      auto block = cache_->Read(node.inode.file_acl);
      EXPECT_TRUE(block.ok());
      if (!block.ok()) return out;
      auto parsed =
          format::ParseXattrBlock(**block, node.inode.file_acl,
                                  ctx_.metadata_csum, ctx_.fs_checksum_seed);
      EXPECT_TRUE(parsed.ok()) << parsed.status();
      if (parsed.ok()) {
        for (auto& e : parsed->entries) entries.push_back(e);
      }
    }
    for (const auto& e : entries) {
      std::string value = e.value;
      if (e.name_index == format::kXattrIndexPosixAclAccess ||
          e.name_index == format::kXattrIndexPosixAclDefault) {
        auto acl = format::AclDiskToXattr(AsBytes(value));
        EXPECT_TRUE(acl.ok()) << acl.status();
        if (acl.ok()) value = *acl;
      }
      out[e.full_name()] = value;
    }
    return out;
  }

  uint32_t Refcount(uint64_t block) {
    auto bytes = cache_->Read(block);
    EXPECT_TRUE(bytes.ok());
    return bytes.ok() ? format::Le32(**bytes, 4) : 0;
  }

  // Oracles, run with the image closed.
  void ExpectFsckClean() {
    CommandResult r = RunCommand(absl::StrCat(kE2fsck, " -fn ", image_));
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }

  // The value debugfs reads (raw on-disk bytes with `raw`), or "<absent>".
  std::string DebugfsGet(const std::string& path, const std::string& name,
                         bool raw = false) {
    const std::string out = dir_ + "/ea_value";
    unlink(out.c_str());
    CommandResult r = RunCommand(absl::StrCat(kDebugfs, " -R \"ea_get ",
                                              raw ? "-r " : "", "-f ", out, " ",
                                              path, " ", name, "\" ", image_));
    if (r.output.find("ea_get:") != std::string::npos) return "<absent>";
    return ReadFileBytes(out);
  }

  std::string DebugfsList(const std::string& path) {
    return RunCommand(
               absl::StrCat(kDebugfs, " -R \"ea_list ", path, "\" ", image_))
        .output;
  }

  bool has_inode_area() const { return sb_.inode_size() > 128; }
  // The layout's block size, known before the image exists.
  uint32_t LayoutBlockSize() const {
    return std::string(GetParam().args).find("-b 1024") != std::string::npos
               ? 1024
               : 4096;
  }
  // A value that never fits in the inode body but fits in a block.
  size_t BlockSizedValue() const {
    return std::min<size_t>(3000, sb_.block_size() - 100);
  }

  std::string dir_, src_, image_;
  std::unique_ptr<io::BlockDevice> device_;
  std::unique_ptr<io::BlockCache> cache_;
  std::unique_ptr<BitmapAllocator> bitmaps_;
  std::unique_ptr<RecordingAllocator> pool_;
  format::Superblock sb_;
  XattrWriteContext ctx_;
};

TEST_P(XattrWriterTest, SmallValueGoesIntoTheInode) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  ASSERT_NE(ino, 0u);
  OpenImage();
  Node f = Load(ino);
  const uint64_t blocks = f.inode.blocks;
  ASSERT_TRUE(Set(f, "user.small", "hello").ok());
  ASSERT_TRUE(Set(f, "trusted.empty", "").ok());
  if (has_inode_area()) {
    EXPECT_EQ(f.inode.file_acl, 0u);
    EXPECT_EQ(f.inode.blocks, blocks);
  } else {
    EXPECT_NE(f.inode.file_acl, 0u);
    EXPECT_EQ(f.inode.blocks, blocks + sb_.block_size() / 512);
  }
  std::map<std::string, std::string> want = {{"user.small", "hello"},
                                             {"trusted.empty", ""}};
  EXPECT_EQ(ReadBack(f), want);
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "user.small"), "hello");
  EXPECT_NE(DebugfsList("/f").find("trusted.empty (0)"), std::string::npos)
      << DebugfsList("/f");
}

TEST_P(XattrWriterTest, LargeValueGoesIntoABlock) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  const uint64_t blocks = f.inode.blocks;
  const std::string big = Pattern(BlockSizedValue(), 1);
  ASSERT_TRUE(Set(f, "user.big", big).ok());
  EXPECT_NE(f.inode.file_acl, 0u);
  EXPECT_EQ(f.inode.blocks, blocks + sb_.block_size() / 512);
  EXPECT_EQ(pool_->allocations, 1);
  // Near the inode: in its group.
  EXPECT_EQ((f.inode.file_acl - sb_.first_data_block) / sb_.blocks_per_group,
            (ino - 1) / sb_.inodes_per_group);
  EXPECT_EQ(Refcount(f.inode.file_acl), 1u);
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "user.big"), big);
}

TEST_P(XattrWriterTest, ReplaceMovesBetweenInodeAndBlock) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  const uint64_t blocks = f.inode.blocks;
  ASSERT_TRUE(Set(f, "user.keep", "stays").ok());
  ASSERT_TRUE(Set(f, "user.v", "short").ok());
  // Longer: into the block, out of the inode.
  const std::string longer = Pattern(BlockSizedValue(), 2);
  ASSERT_TRUE(Set(f, "user.v", longer, kReplace).ok());
  EXPECT_NE(f.inode.file_acl, 0u);
  std::map<std::string, std::string> want = {{"user.keep", "stays"},
                                             {"user.v", longer}};
  EXPECT_EQ(ReadBack(f), want);
  // A different value of the same size, in place.
  const std::string same_size = Pattern(BlockSizedValue(), 3);
  ASSERT_TRUE(Set(f, "user.v", same_size).ok());
  want["user.v"] = same_size;
  EXPECT_EQ(ReadBack(f), want);
  // Shorter again: back into the inode (when it has room), and the block,
  // now empty, is freed.
  ASSERT_TRUE(Set(f, "user.v", "tiny", kReplace).ok());
  want["user.v"] = "tiny";
  EXPECT_EQ(ReadBack(f), want);
  if (has_inode_area()) {
    EXPECT_EQ(f.inode.file_acl, 0u);
    EXPECT_EQ(f.inode.blocks, blocks);
    EXPECT_EQ(pool_->freed().size(), 1u);
  }
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "user.v"), "tiny");
  EXPECT_EQ(DebugfsGet("/f", "user.keep"), "stays");
}

TEST_P(XattrWriterTest, CreateAndReplaceFlags) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  ASSERT_TRUE(Set(f, "user.a", "1", kCreate).ok());
  EXPECT_EQ(ErrnoOf(Set(f, "user.a", "2", kCreate)), EEXIST);
  EXPECT_EQ(ErrnoOf(Set(f, "user.absent", "2", kReplace)), ENODATA);
  EXPECT_EQ(ErrnoOf(Remove(f, "user.absent")), ENODATA);
  // The same in the block.
  const std::string big = Pattern(BlockSizedValue(), 4);
  ASSERT_TRUE(Set(f, "user.big", big, kCreate).ok());
  EXPECT_EQ(ErrnoOf(Set(f, "user.big", "x", kCreate)), EEXIST);
  ASSERT_TRUE(Set(f, "user.a", "3", kReplace).ok());
  // The same value again changes nothing.
  ASSERT_TRUE(Set(f, "user.a", "3").ok());
  std::map<std::string, std::string> want = {{"user.a", "3"},
                                             {"user.big", big}};
  EXPECT_EQ(ReadBack(f), want);
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "user.a"), "3");
  EXPECT_EQ(DebugfsGet("/f", "user.absent"), "<absent>");
}

TEST_P(XattrWriterTest, RemovingEverythingFreesTheBlock) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  const uint64_t blocks = f.inode.blocks;
  const size_t quarter = sb_.block_size() / 4;
  ASSERT_TRUE(Set(f, "user.one", Pattern(quarter, 5)).ok());
  ASSERT_TRUE(Set(f, "user.two", Pattern(quarter, 6)).ok());
  ASSERT_TRUE(Set(f, "security.three", Pattern(quarter, 7)).ok());
  ASSERT_TRUE(Set(f, "user.s", "small").ok());
  const uint64_t block = f.inode.file_acl;
  ASSERT_NE(block, 0u);
  ASSERT_TRUE(Remove(f, "user.two").ok());
  EXPECT_EQ(f.inode.file_acl, block);
  ASSERT_TRUE(Remove(f, "user.one").ok());
  ASSERT_TRUE(Remove(f, "security.three").ok());
  ASSERT_TRUE(Remove(f, "user.s").ok());
  EXPECT_EQ(f.inode.file_acl, 0u);
  EXPECT_EQ(f.inode.blocks, blocks);
  ASSERT_EQ(pool_->freed().size(), 1u);
  EXPECT_EQ(pool_->freed()[0], block);
  EXPECT_TRUE(ReadBack(f).empty());
  if (has_inode_area()) {
    // No entries left: the magic is gone too, as the kernel leaves it.
    EXPECT_EQ(format::Le32(format::InodeXattrArea(f.raw, f.inode), 0), 0u);
  }
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsList("/f").find("user."), std::string::npos)
      << DebugfsList("/f");
}

TEST_P(XattrWriterTest, BlockEntriesAreSortedAndHashed) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  const size_t size = sb_.block_size() / 16;
  const std::vector<std::string> names = {
      "user.zz",    "user.a",  "trusted.b", "user.bbb",
      "security.x", "user.ab", "user.\xff", "user.\x01"};
  int seed = 10;
  for (const std::string& name : names) {
    ASSERT_TRUE(Set(f, name, Pattern(size, seed++)).ok()) << name;
  }
  ASSERT_NE(f.inode.file_acl, 0u);
  auto bytes = cache_->Read(f.inode.file_acl);
  ASSERT_TRUE(bytes.ok());
  auto block = format::ParseXattrBlock(
      **bytes, f.inode.file_acl, ctx_.metadata_csum, ctx_.fs_checksum_seed);
  ASSERT_TRUE(block.ok()) << block.status();
  ASSERT_GE(block->entries.size(), 2u);
  for (size_t i = 1; i < block->entries.size(); ++i) {
    const auto& a = block->entries[i - 1];
    const auto& b = block->entries[i];
    const bool ordered =
        a.name_index < b.name_index ||
        (a.name_index == b.name_index &&
         (a.name.size() < b.name.size() ||
          (a.name.size() == b.name.size() &&
           std::memcmp(a.name.data(), b.name.data(), a.name.size()) < 0)));
    EXPECT_TRUE(ordered) << a.full_name() << " before " << b.full_name();
  }
  for (const auto& e : block->entries) {
    EXPECT_EQ(e.hash, format::XattrEntryHash(e.name, AsBytes(e.value)));
  }
  EXPECT_EQ(block->hash, format::XattrBlockHash(block->entries));
  EXPECT_EQ(block->refcount, 1u);
  EXPECT_EQ(ReadBack(f).size(), names.size());
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "user.zz"), Pattern(size, 10));
}

TEST_P(XattrWriterTest, FillUntilNoSpace) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  // Larger than a block can ever hold: ENOSPC, as the kernel answers
  // without ea_inode; over XATTR_SIZE_MAX: E2BIG.
  EXPECT_EQ(ErrnoOf(Set(f, "user.huge", std::string(sb_.block_size(), 'h'))),
            ENOSPC);
  EXPECT_EQ(ErrnoOf(Set(f, "user.huge", std::string(65537, 'h'))), E2BIG);
  EXPECT_EQ(pool_->allocations, 0);
  std::map<std::string, std::string> want;
  int i = 0;
  absl::Status status;
  for (; i < 1000; ++i) {
    const std::string name = absl::StrCat("user.fill", i);
    const std::string value = Pattern(100, i);
    status = Set(f, name, value);
    if (!status.ok()) break;
    want[name] = value;
  }
  EXPECT_EQ(ErrnoOf(status), ENOSPC) << status;
  EXPECT_GT(i, 1);
  EXPECT_EQ(pool_->allocations, 1);
  EXPECT_EQ(ReadBack(f), want);
  // A smaller value may still fit; removing one frees room again.
  ASSERT_TRUE(Remove(f, "user.fill0").ok());
  want.erase("user.fill0");
  ASSERT_TRUE(Set(f, "user.fill_again", Pattern(100, 99)).ok());
  want["user.fill_again"] = Pattern(100, 99);
  EXPECT_EQ(ReadBack(f), want);
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "user.fill1"), Pattern(100, 1));
  EXPECT_EQ(DebugfsGet("/f", "user.fill_again"), Pattern(100, 99));
}

TEST_P(XattrWriterTest, NoBlockToAllocate) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  pool_->fail_allocations = true;
  EXPECT_EQ(ErrnoOf(Set(f, "user.big", Pattern(BlockSizedValue(), 1))), ENOSPC);
  EXPECT_EQ(f.inode.file_acl, 0u);
  CloseImage();
  ExpectFsckClean();
}

TEST_P(XattrWriterTest, NameValidation) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  EXPECT_EQ(ErrnoOf(Set(f, "user.", "x")), EINVAL);
  EXPECT_EQ(ErrnoOf(Set(f, "trusted.", "x")), EINVAL);
  EXPECT_EQ(ErrnoOf(Set(f, "", "x")), ERANGE);
  EXPECT_EQ(ErrnoOf(Set(f, "os2.x", "x")), EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(Set(f, "user", "x")), EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(Set(f, "system.foo", "x")), EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(Set(f, "system.data", "x")), EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(Set(f, "system.posix_acl_accessX", "x")), EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(Set(f, "user." + std::string(251, 'n'), "x")), ERANGE);
  EXPECT_EQ(ErrnoOf(Remove(f, "user.")), EINVAL);
  EXPECT_EQ(ErrnoOf(Remove(f, "foo.bar")), EOPNOTSUPP);
  const std::string longest = "user." + std::string(250, 'n');
  ASSERT_TRUE(Set(f, longest, "long name").ok());
  ASSERT_TRUE(Set(f, "gnu.hurd", "g").ok());
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", longest), "long name");
  EXPECT_EQ(DebugfsGet("/f", "gnu.hurd"), "g");
}

TEST_P(XattrWriterTest, AclRoundTrip) {
  MakeImage();
  const uint32_t file_ino = InodeOf("/f");
  const uint32_t dir_ino = InodeOf("/d");
  const uint32_t g_ino = InodeOf("/g");
  OpenImage();
  Node f = Load(file_ino);
  Node d = Load(dir_ino);
  const std::string acl = VfsAcl({{format::kAclUserObj, 6, 0xFFFFFFFF},
                                  {format::kAclUser, 6, 1234},
                                  {format::kAclGroupObj, 4, 0xFFFFFFFF},
                                  {format::kAclGroup, 5, 77},
                                  {format::kAclMask, 6, 0xFFFFFFFF},
                                  {format::kAclOther, 4, 0xFFFFFFFF}});
  const std::string dir_default = VfsAcl({{format::kAclUserObj, 7, 0xFFFFFFFF},
                                          {format::kAclGroupObj, 5, 0xFFFFFFFF},
                                          {format::kAclOther, 5, 0xFFFFFFFF}});
  // Flags do not apply to ACLs.
  ASSERT_TRUE(Set(f, "system.posix_acl_access", acl, kReplace).ok());
  ASSERT_TRUE(Set(d, "system.posix_acl_default", dir_default, kCreate).ok());
  ASSERT_TRUE(Set(d, "system.posix_acl_default", dir_default, kCreate).ok());
  EXPECT_EQ(ErrnoOf(Set(f, "system.posix_acl_default", dir_default)), EACCES);
  // Malformed: bad version, bad size, out of order.
  std::string bad_version = acl;
  bad_version[0] = 1;
  EXPECT_EQ(ErrnoOf(Set(f, "system.posix_acl_access", bad_version)),
            EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(Set(f, "system.posix_acl_access", acl.substr(0, 10))),
            EINVAL);
  EXPECT_EQ(ErrnoOf(Set(f, "system.posix_acl_access",
                        VfsAcl({{format::kAclGroupObj, 4, 0xFFFFFFFF},
                                {format::kAclUserObj, 6, 0xFFFFFFFF},
                                {format::kAclOther, 4, 0xFFFFFFFF}}))),
            EINVAL);
  // Read back through the reader's conversion: the value set.
  EXPECT_EQ(ReadBack(f)["system.posix_acl_access"], acl);
  EXPECT_EQ(ReadBack(d)["system.posix_acl_default"], dir_default);
  auto disk = format::AclXattrToDisk(AsBytes(acl));
  ASSERT_TRUE(disk.ok());
  auto dir_disk = format::AclXattrToDisk(AsBytes(dir_default));
  ASSERT_TRUE(dir_disk.ok());
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "system.posix_acl_access", /*raw=*/true), *disk);
  EXPECT_EQ(DebugfsGet("/d", "system.posix_acl_default", /*raw=*/true),
            *dir_disk);

  // An empty value, or an ACL without entries, removes the ACL; removing an
  // absent ACL is not an error.
  OpenImage();
  Node g = Load(g_ino);
  ASSERT_TRUE(Set(g, "system.posix_acl_access", acl).ok());
  ASSERT_TRUE(Set(g, "system.posix_acl_access", "").ok());
  EXPECT_TRUE(ReadBack(g).empty());
  ASSERT_TRUE(Set(g, "system.posix_acl_access", acl).ok());
  ASSERT_TRUE(Set(g, "system.posix_acl_access", VfsAcl({})).ok());
  EXPECT_TRUE(ReadBack(g).empty());
  EXPECT_TRUE(Remove(g, "system.posix_acl_access").ok());
  EXPECT_TRUE(Remove(g, "system.posix_acl_default").ok());
  f = Load(file_ino);
  ASSERT_TRUE(Remove(f, "system.posix_acl_access").ok());
  EXPECT_TRUE(ReadBack(f).empty());
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "system.posix_acl_access"), "<absent>");
  EXPECT_EQ(DebugfsGet("/g", "system.posix_acl_access"), "<absent>");
}

TEST_P(XattrWriterTest, PreExistingXattrsSurvive) {
  const std::string big = Pattern(LayoutBlockSize() / 2, 42);
  SourceXattr("f", "user.a", "abc");
  // trusted.* needs CAP_SYS_ADMIN; where it is refused, the rest still runs.
  const std::string f_path = src_ + "/f";
  (void)setxattr(f_path.c_str(), "trusted.t", "\x01\x02", 2, 0);
  SourceXattr("f", "user.big", big);
  SourceXattr("f", "user.other", "other value");
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  std::map<std::string, std::string> want = {
      {"user.a", "abc"}, {"user.big", big}, {"user.other", "other value"}};
  // trusted.* is listed (and so copied by mke2fs -d) only with
  // CAP_SYS_ADMIN, which a sandboxed test may lack.
  if (SourceLists("f", "trusted.t")) {
    want["trusted.t"] = std::string("\x01\x02", 2);
  }
  ASSERT_EQ(ReadBack(f), want);
  ASSERT_TRUE(Set(f, "user.a", "changed").ok());
  ASSERT_TRUE(Set(f, "user.big", big + "more").ok());
  ASSERT_TRUE(Remove(f, "user.other").ok());
  ASSERT_TRUE(Set(f, "user.new", "new").ok());
  want["user.a"] = "changed";
  want["user.big"] = big + "more";
  want.erase("user.other");
  want["user.new"] = "new";
  EXPECT_EQ(ReadBack(f), want);
  CloseImage();
  ExpectFsckClean();
  for (const auto& [name, value] : want) {
    EXPECT_EQ(DebugfsGet("/f", name), value) << name;
  }
  EXPECT_EQ(DebugfsGet("/f", "user.other"), "<absent>");
}

// Makes f and g (identical xattr sets, each in its own block as mke2fs
// writes them) share f's block, as the kernel's block sharing would, and
// returns their nodes.
class SharedBlockTest : public XattrWriterTest {
 protected:
  // Too large for the inode body: both entries live in the block.
  std::string Second() const { return Pattern(LayoutBlockSize() / 4, 8); }

  void MakeShared(Node* f, Node* g) {
    for (const char* file : {"f", "g"}) {
      SourceXattr(file, "user.shared", Pattern(LayoutBlockSize() / 2, 7));
      SourceXattr(file, "user.s2", Second());
      if (IsSkipped()) return;
    }
    MakeImage();
    const uint32_t f_ino = InodeOf("/f");
    const uint32_t g_ino = InodeOf("/g");
    OpenImage();
    *f = Load(f_ino);
    *g = Load(g_ino);
    ASSERT_NE(f->inode.file_acl, 0u);
    ASSERT_NE(g->inode.file_acl, 0u);
    ASSERT_NE(f->inode.file_acl, g->inode.file_acl);
    Transaction tx(*cache_);
    auto bytes = tx.Modify(f->inode.file_acl);
    ASSERT_TRUE(bytes.ok());
    format::Put32(*bytes, 4, 2);
    if (ctx_.metadata_csum) {
      format::SetXattrBlockChecksum(*bytes, f->inode.file_acl,
                                    ctx_.fs_checksum_seed);
    }
    ASSERT_TRUE(pool_->FreeBlocks(tx, g->inode.file_acl, 1).ok());
    g->inode.file_acl = f->inode.file_acl;
    Store(tx, *g);
    Commit(tx);
    CloseImage();
    ExpectFsckClean();
    OpenImage();
    *f = Load(f_ino);
    *g = Load(g_ino);
    ASSERT_EQ(f->inode.file_acl, g->inode.file_acl);
    ASSERT_EQ(Refcount(f->inode.file_acl), 2u);
  }
};

TEST_P(SharedBlockTest, SetCopiesOnWrite) {
  Node f, g;
  MakeShared(&f, &g);
  if (IsSkipped() || HasFatalFailure()) return;
  const std::map<std::string, std::string> f_view = ReadBack(f);
  const uint64_t shared = f.inode.file_acl;
  const uint64_t g_blocks = g.inode.blocks;
  ASSERT_TRUE(Set(g, "user.mine", Pattern(100, 3)).ok());
  EXPECT_NE(g.inode.file_acl, shared);
  EXPECT_EQ(g.inode.blocks, g_blocks);
  EXPECT_EQ(Refcount(shared), 1u);
  EXPECT_EQ(Refcount(g.inode.file_acl), 1u);
  EXPECT_TRUE(pool_->freed().empty());
  EXPECT_EQ(ReadBack(f), f_view);
  std::map<std::string, std::string> g_view = f_view;
  g_view["user.mine"] = Pattern(100, 3);
  EXPECT_EQ(ReadBack(g), g_view);
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "user.mine"), "<absent>");
  EXPECT_EQ(DebugfsGet("/g", "user.mine"), Pattern(100, 3));
  EXPECT_EQ(DebugfsGet("/f", "user.s2"), Second());
}

TEST_P(SharedBlockTest, RemoveCopiesOnWrite) {
  Node f, g;
  MakeShared(&f, &g);
  if (IsSkipped() || HasFatalFailure()) return;
  const std::map<std::string, std::string> f_view = ReadBack(f);
  const uint64_t shared = f.inode.file_acl;
  ASSERT_TRUE(Remove(f, "user.s2").ok());
  EXPECT_NE(f.inode.file_acl, shared);
  EXPECT_EQ(pool_->last_goal, shared);
  EXPECT_EQ(Refcount(shared), 1u);
  std::map<std::string, std::string> f_now = f_view;
  f_now.erase("user.s2");
  EXPECT_EQ(ReadBack(f), f_now);
  EXPECT_EQ(ReadBack(g), f_view);
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "user.s2"), "<absent>");
  EXPECT_EQ(DebugfsGet("/g", "user.s2"), Second());
}

TEST_P(SharedBlockTest, ReleaseDropsReferencesThenFrees) {
  Node f, g;
  MakeShared(&f, &g);
  if (IsSkipped() || HasFatalFailure()) return;
  const uint64_t shared = f.inode.file_acl;
  const uint64_t g_blocks = g.inode.blocks;
  // Removing the last entries from g only drops g's reference.
  ASSERT_TRUE(Remove(g, "user.s2").ok());  // copy on write first
  const uint64_t g_block = g.inode.file_acl;
  ASSERT_NE(g_block, shared);
  ASSERT_TRUE(Apply(g, [&](Transaction& tx) {
                return ReleaseXattrBlock(tx, ctx_, g.inode, *pool_);
              }).ok());
  EXPECT_EQ(g.inode.file_acl, 0u);
  EXPECT_EQ(g.inode.blocks, g_blocks - sb_.block_size() / 512);
  ASSERT_EQ(pool_->freed().size(), 1u);
  EXPECT_EQ(pool_->freed()[0], g_block);
  // Share again: point g at f's block and release from both sides.
  {
    Transaction tx(*cache_);
    auto bytes = tx.Modify(shared);
    ASSERT_TRUE(bytes.ok());
    format::Put32(*bytes, 4, 2);
    if (ctx_.metadata_csum) {
      format::SetXattrBlockChecksum(*bytes, shared, ctx_.fs_checksum_seed);
    }
    g.inode.file_acl = shared;
    g.inode.blocks = g_blocks;
    Store(tx, g);
    Commit(tx);
  }
  ASSERT_TRUE(Apply(f, [&](Transaction& tx) {
                return ReleaseXattrBlock(tx, ctx_, f.inode, *pool_);
              }).ok());
  EXPECT_EQ(f.inode.file_acl, 0u);
  EXPECT_EQ(Refcount(shared), 1u);
  EXPECT_EQ(pool_->freed().size(), 1u);
  EXPECT_FALSE(ReadBack(g).empty());
  // Then removing every entry of g frees the block.
  ASSERT_TRUE(Remove(g, "user.shared").ok());
  ASSERT_TRUE(Remove(g, "user.s2").ok());
  EXPECT_EQ(g.inode.file_acl, 0u);
  ASSERT_EQ(pool_->freed().size(), 2u);
  EXPECT_EQ(pool_->freed()[1], shared);
  // Nothing left to release.
  ASSERT_TRUE(Apply(g, [&](Transaction& tx) {
                return ReleaseXattrBlock(tx, ctx_, g.inode, *pool_);
              }).ok());
  CloseImage();
  ExpectFsckClean();
  EXPECT_EQ(DebugfsGet("/f", "user.shared"), "<absent>");
  EXPECT_EQ(DebugfsGet("/g", "user.shared"), "<absent>");
}

TEST_P(XattrWriterTest, CorruptBlockIsRefused) {
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  ASSERT_TRUE(Set(f, "user.big", Pattern(BlockSizedValue(), 1)).ok());
  uint16_t offset = 0;
  {
    Transaction tx(*cache_);
    auto bytes = tx.Modify(f.inode.file_acl);
    ASSERT_TRUE(bytes.ok());
    offset = format::Le16(*bytes, 32 + 2);
    format::Put16(*bytes, 32 + 2, 0xFFF0);  // value offset out of bounds
    if (ctx_.metadata_csum) {
      format::SetXattrBlockChecksum(*bytes, f.inode.file_acl,
                                    ctx_.fs_checksum_seed);
    }
    Commit(tx);
  }
  EXPECT_EQ(ErrnoOf(Set(f, "user.x", "1")), EUCLEAN);
  EXPECT_EQ(ErrnoOf(Remove(f, "user.big")), EUCLEAN);
  EXPECT_EQ(ErrnoOf(Apply(f,
                          [&](Transaction& tx) {
                            return ReleaseXattrBlock(tx, ctx_, f.inode, *pool_);
                          })),
            EUCLEAN);
  // A refcount of 0 is corruption too.
  {
    Transaction tx(*cache_);
    auto bytes = tx.Modify(f.inode.file_acl);
    ASSERT_TRUE(bytes.ok());
    format::Put16(*bytes, 32 + 2, offset);
    format::Put32(*bytes, 4, 0);
    if (ctx_.metadata_csum) {
      format::SetXattrBlockChecksum(*bytes, f.inode.file_acl,
                                    ctx_.fs_checksum_seed);
    }
    Commit(tx);
  }
  EXPECT_EQ(ErrnoOf(Set(f, "user.x", "1")), EUCLEAN);
}

TEST_P(XattrWriterTest, SystemDataStaysInTheInode) {
  if (std::string(GetParam().name) == "i128") GTEST_SKIP() << "no inode area";
  MakeImage();
  const uint32_t ino = InodeOf("/f");
  OpenImage();
  Node f = Load(ino);
  ASSERT_TRUE(Set(f, "user.a", "a").ok());
  ASSERT_TRUE(Apply(f, [&](Transaction& tx) {
                return SetXattrIndexed(tx, ctx_, f.inode, f.raw, *pool_, 0,
                                       format::kXattrIndexSystem, "data", "", 0,
                                       /*inode_body_only=*/true);
              }).ok());
  EXPECT_EQ(ErrnoOf(Apply(f,
                          [&](Transaction& tx) {
                            return SetXattrIndexed(
                                tx, ctx_, f.inode, f.raw, *pool_, 0,
                                format::kXattrIndexSystem, "data",
                                std::string(sb_.inode_size(), 'd'), 0, true);
                          })),
            ENOSPC);
  EXPECT_EQ(f.inode.file_acl, 0u);
  std::map<std::string, std::string> want = {{"user.a", "a"},
                                             {"system.data", ""}};
  EXPECT_EQ(ReadBack(f), want);
  ASSERT_TRUE(Apply(f, [&](Transaction& tx) {
                return RemoveXattrIndexed(tx, ctx_, f.inode, f.raw, *pool_,
                                          format::kXattrIndexSystem, "data");
              }).ok());
  CloseImage();
  ExpectFsckClean();
}

INSTANTIATE_TEST_SUITE_P(Layouts, XattrWriterTest,
                         ::testing::Values(Layout{"default", "-b 4096"},
                                           Layout{"nocsum",
                                                  "-b 4096 -O ^metadata_csum"},
                                           Layout{"i128", "-b 4096 -I 128"},
                                           Layout{"b1024", "-b 1024"}),
                         [](const ::testing::TestParamInfo<Layout>& info) {
                           return std::string(info.param.name);
                         });

INSTANTIATE_TEST_SUITE_P(Layouts, SharedBlockTest,
                         ::testing::Values(Layout{"default", "-b 4096"},
                                           Layout{"nocsum",
                                                  "-b 4096 -O ^metadata_csum"},
                                           Layout{"i128", "-b 4096 -I 128"},
                                           Layout{"b1024", "-b 1024"}),
                         [](const ::testing::TestParamInfo<Layout>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace ext4
