// The check against e2fsck: images e2fsck -fn passes must come out clean
// (with e2fsck's own counts of inodes and blocks in use), and images damaged
// with debugfs or by flipping a byte, which e2fsck -fn flags, must give a
// problem of the right kind.
#include "ext4/check/checker.h"

#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ext4/errno_status.h"
#include "ext4/io/block_device.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4::check {
namespace {

namespace fs = std::filesystem;
using ::ext4::testing::CommandResult;
using ::ext4::testing::RunCommand;
using ::ext4::testing::StderrMode;

absl::StatusOr<Report> CheckImage(const std::string& path) {
  E4_ASSIGN_OR_RETURN(std::unique_ptr<io::BlockDevice> device,
                      io::OpenFileDevice(path, /*read_only=*/true));
  return CheckFilesystem(*device);
}

std::string Describe(const Report& report) {
  std::vector<std::string> lines;
  for (const Problem& p : report.problems) {
    lines.push_back(absl::StrCat(p.kind, ": ", p.message));
  }
  return absl::StrJoin(lines, "\n");
}

bool HasKind(const Report& report, const std::string& kind) {
  for (const Problem& p : report.problems) {
    if (p.kind == kind) return true;
  }
  return false;
}

CommandResult E2fsck(const std::string& image) {
  return RunCommand(absl::StrCat(ext4::testing::kE2fsck, " -fn ", image));
}

// debugfs -R CMD (read-only), its standard output.
std::string Query(const std::string& image, const std::string& cmd) {
  return RunCommand(
             absl::StrCat(ext4::testing::kDebugfs, " -R '", cmd, "' ", image),
             StderrMode::kDiscard)
      .output;
}

// debugfs -w -R CMD.
void Damage(const std::string& image, const std::string& cmd) {
  RunCommand(
      absl::StrCat(ext4::testing::kDebugfs, " -w -R '", cmd, "' ", image),
      StderrMode::kDiscard);
}

// The number right after the first `marker` in `text` (decimal, or hex
// with 0x), spaces skipped; 0 when there is none.
uint64_t NumberAfter(const std::string& text, const std::string& marker) {
  size_t pos = text.find(marker);
  if (pos == std::string::npos) return 0;
  pos += marker.size();
  while (pos < text.size() && text[pos] == ' ') ++pos;
  return std::strtoull(text.c_str() + pos, nullptr, 0);
}

// The number before "/" in the word that ends right before `marker` (for
// e2fsck's "N/M files" and "B/T blocks").
uint64_t CountBefore(const std::string& text, const std::string& marker) {
  const size_t end = text.find(marker);
  if (end == std::string::npos || end == 0) return UINT64_MAX;
  const size_t space = text.find_last_of(" \n", end - 1);
  const size_t start = space == std::string::npos ? 0 : space + 1;
  return std::strtoull(text.c_str() + start, nullptr, 10);
}

uint64_t BlockOf(const std::string& image, const std::string& path,
                 int logical) {
  return NumberAfter(Query(image, absl::StrCat("bmap ", path, " ", logical)),
                     "");
}
// The byte offset of an inode in the image.
uint64_t InodeOffset(const std::string& image, const std::string& path,
                     uint32_t block_size) {
  const std::string out = Query(image, "imap " + path);
  return NumberAfter(out, "located at block ") * block_size +
         NumberAfter(out, "offset ");
}

void FlipByte(const std::string& image, uint64_t offset) {
  std::fstream f(image, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << image;
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x55);
  f.seekp(offset);
  f.write(&c, 1);
}

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// make_tree.sh, from the source tree or the runfiles.
std::string MakeTreeScript() {
  std::vector<std::string> candidates = {"testdata/make_tree.sh"};
  if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
    const char* ws = std::getenv("TEST_WORKSPACE");
    candidates.push_back(
        absl::StrCat(srcdir, "/", ws ? ws : "e4fs", "/testdata/make_tree.sh"));
  }
  for (const std::string& c : candidates) {
    if (fs::exists(c)) return c;
  }
  return "";
}

std::string JournalImage(const std::string& name) {
  std::vector<std::string> candidates = {"testdata/journal/" + name};
  if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
    const char* ws = std::getenv("TEST_WORKSPACE");
    candidates.push_back(absl::StrCat(srcdir, "/", ws ? ws : "e4fs",
                                      "/testdata/journal/", name));
  }
  for (const std::string& c : candidates) {
    if (fs::exists(c)) return c;
  }
  return "";
}

class CheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!ext4::testing::HaveE2fsprogs()) GTEST_SKIP() << "needs e2fsprogs";
    dir_ = ext4::testing::MakeTempDir("checker_test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // Checks that e2fsck -fn passes `image`, that the checker finds nothing,
  // and that both count the same inodes and blocks in use (e2fsck -n's
  // summary comes from the superblock's free counts: `compare_counts` is
  // false when those are off).
  void ExpectClean(const std::string& image, bool compare_counts = true) {
    const CommandResult e2fsck = E2fsck(image);
    ASSERT_EQ(e2fsck.exit_code, 0) << e2fsck.output;
    auto report = CheckImage(image);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->problems.empty()) << Describe(*report);
    if (!compare_counts) return;
    EXPECT_EQ(report->inodes_checked, CountBefore(e2fsck.output, " files ("))
        << e2fsck.output;
    EXPECT_EQ(report->blocks_checked, CountBefore(e2fsck.output, " blocks\n"))
        << e2fsck.output;
  }

  // Checks that e2fsck -fn flags `image` (exit code with bit 4: errors left
  // uncorrected; it adds 8 when it gives up) and the checker reports a
  // problem of each of `kinds`.
  void ExpectCaught(const std::string& image,
                    const std::vector<std::string>& kinds) {
    const CommandResult e2fsck = E2fsck(image);
    EXPECT_TRUE(e2fsck.exit_code > 0 && (e2fsck.exit_code & 4) != 0)
        << "e2fsck exit " << e2fsck.exit_code << "\n"
        << e2fsck.output;
    const std::string before = ext4::testing::ReadFileBytes(image);
    auto report = CheckImage(image);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_FALSE(report->problems.empty());
    for (const std::string& kind : kinds) {
      EXPECT_TRUE(HasKind(*report, kind))
          << "no " << kind << " problem in:\n"
          << Describe(*report) << "\ne2fsck said:\n"
          << e2fsck.output;
    }
    EXPECT_EQ(ext4::testing::ReadFileBytes(image), before)
        << "the check changed the image";
  }

  // A small tree: a file with an xattr block, a 24 KiB file, a file of 12
  // separate extents (an extent tree of depth 1 with 1 KiB blocks), a
  // symlink, a directory of 300 names and an empty one.
  std::string MakeSmallTree() {
    const fs::path src = fs::path(dir_) / "src";
    fs::create_directories(src / "sub");
    fs::create_directories(src / "sub2");
    WriteFile(src / "file", "hello\n");
    std::string big;
    for (int i = 1; i <= 5000; ++i) absl::StrAppend(&big, i, "\n");
    WriteFile(src / "big", big);
    {
      std::ofstream frag(src / "frag", std::ios::binary);
      const std::string chunk(4096, 'x');
      for (int i = 0; i < 12; ++i) {
        frag.seekp(i * 8192);
        frag << chunk;
      }
    }
    fs::create_symlink("file", src / "link");
    for (int i = 1; i <= 300; ++i) {
      WriteFile(src / "sub" / absl::StrCat("f", i), absl::StrCat(i, "\n"));
    }
    const std::string value(600, 'v');
    has_xattr_ = setxattr((src / "file").c_str(), "user.big", value.data(),
                          value.size(), 0) == 0;
    return src.string();
  }

  // An image of the small tree (1 KiB blocks, 4 MiB); `rehash` runs
  // e2fsck -fyD on it, which indexes /sub with an htree.
  std::string MakeSmallImage(const std::string& args, bool rehash = false) {
    const std::string src = MakeSmallTree();
    const std::string image = dir_ + "/small.img";
    const CommandResult mkfs =
        RunCommand(absl::StrCat(ext4::testing::kMke2fs, " -q -F ", args,
                                " -b 1024 -d ", src, " ", image, " 4M"));
    EXPECT_EQ(mkfs.exit_code, 0) << mkfs.output;
    if (rehash) {
      const CommandResult fix =
          RunCommand(absl::StrCat(ext4::testing::kE2fsck, " -fyD ", image));
      EXPECT_LE(fix.exit_code, 1) << fix.output;
    }
    EXPECT_EQ(E2fsck(image).exit_code, 0) << E2fsck(image).output;
    return image;
  }

  std::string dir_;
  bool has_xattr_ = false;
};

TEST_F(CheckerTest, CleanLayouts) {
  for (const auto& v : ext4::testing::kImageVariants) {
    SCOPED_TRACE(v.name);
    const std::string sub = dir_ + "/" + v.name;
    fs::create_directories(sub);
    const std::string image =
        ext4::testing::MakeImageWithSmallTree(sub, v.args, v.size);
    ASSERT_FALSE(image.empty());
    if (v.post != nullptr) {
      const CommandResult post = RunCommand(
          absl::StrCat(ext4::testing::kTune2fs, " ", v.post, " ", image));
      ASSERT_EQ(post.exit_code, 0) << post.output;
    }
    ExpectClean(image);
  }
}

TEST_F(CheckerTest, CleanEmptyFilesystems) {
  for (const char* args :
       {"-t ext4", "-t ext2", "-t ext3 -b 1024", "-t ext4 -O quota,project",
        "-t ext4 -O bigalloc,^resize_inode -C 65536 -b 4096",
        "-t ext4 -O ^has_journal,^flex_bg -b 1024"}) {
    SCOPED_TRACE(args);
    const std::string image = dir_ + "/empty.img";
    const CommandResult mkfs = RunCommand(absl::StrCat(
        ext4::testing::kMke2fs, " -q -F ", args, " ", image, " 64M"));
    ASSERT_EQ(mkfs.exit_code, 0) << mkfs.output;
    ExpectClean(image);
  }
}

TEST_F(CheckerTest, CleanSmallTreeWithHtree) {
  for (const char* args : {"-t ext4", "-t ext4 -O ^metadata_csum", "-t ext3",
                           "-t ext4 -O inline_data"}) {
    SCOPED_TRACE(args);
    const std::string image = MakeSmallImage(args, /*rehash=*/true);
    EXPECT_NE(Query(image, "htree /sub").find("Indirect levels"),
              std::string::npos);
    ExpectClean(image);
    fs::remove_all(dir_ + "/src");
  }
}

// Every kind of entry make_tree.sh makes (20,000 names in one directory,
// sparse files past 4 GiB, xattrs, devices, hard links, deep nesting), in
// many layouts, with and without htree indexes.
TEST_F(CheckerTest, CleanFullTree) {
  const std::string script = MakeTreeScript();
  if (script.empty()) GTEST_SKIP() << "testdata/make_tree.sh not found";
  if (geteuid() != 0) GTEST_SKIP() << "make_tree.sh needs root";
  const std::string tree = dir_ + "/tree";
  const CommandResult made = RunCommand("bash " + script + " " + tree);
  if (made.exit_code != 0) {
    GTEST_SKIP() << "make_tree.sh failed (user xattrs unsupported here?): "
                 << made.output;
  }
  // mke2fs -d takes some 20 s on this tree (20,000 names in one directory),
  // so a few layouts only; each is checked as made, and again after e2fsck
  // -fyD gave its directories htree indexes.
  struct Layout {
    const char* args;
    const char* size;
    bool rehash;
  };
  const Layout layouts[] = {
      {"-t ext4 -b 4096", "64M", true},
      {"-t ext4 -b 4096 -O ^metadata_csum,^64bit,inline_data", "64M", true},
      {"-t ext2 -b 4096", "64M", false},
      {"-t ext4 -b 4096 -O bigalloc,large_dir -C 16384", "128M", true},
  };
  for (const Layout& l : layouts) {
    SCOPED_TRACE(l.args);
    const std::string image = dir_ + "/tree.img";
    const CommandResult mkfs = RunCommand(
        absl::StrCat(ext4::testing::kMke2fs, " -q -F ", l.args, " -N 30000 -d ",
                     tree, " ", image, " ", l.size));
    ASSERT_EQ(mkfs.exit_code, 0) << mkfs.output;
    ExpectClean(image);
    if (l.rehash) {
      SCOPED_TRACE("after e2fsck -fyD");
      const CommandResult fix =
          RunCommand(absl::StrCat(ext4::testing::kE2fsck, " -fyD ", image));
      ASSERT_LE(fix.exit_code, 1) << fix.output;
      ExpectClean(image);
    }
  }
}

TEST_F(CheckerTest, LinkCount) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "sif /file links_count 5");
  ExpectCaught(image, {"link_count"});
}

TEST_F(CheckerTest, DeletedInodeWithZeroDtime) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "sif /file links_count 0");
  ExpectCaught(image, {"zero_dtime", "dirent_inode", "inode_bitmap"});
}

TEST_F(CheckerTest, BlockInUseMarkedFree) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, absl::StrCat("freeb ", BlockOf(image, "/big", 0)));
  ExpectCaught(image, {"block_bitmap", "group_free_blocks"});
}

TEST_F(CheckerTest, FreeBlockMarkedInUse) {
  const std::string image = MakeSmallImage("-t ext4");
  const uint64_t free_block = NumberAfter(Query(image, "ffb 1 3000"), "found:");
  ASSERT_NE(free_block, 0u);
  Damage(image, absl::StrCat("setb ", free_block));
  ExpectCaught(image, {"block_bitmap"});
}

TEST_F(CheckerTest, InodeInUseMarkedFree) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "freei /file");
  ExpectCaught(image, {"inode_bitmap", "group_free_inodes"});
}

TEST_F(CheckerTest, ClearedInode) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "clri /file");
  ExpectCaught(image, {"dirent_inode", "inode_bitmap", "block_bitmap"});
}

TEST_F(CheckerTest, BadExtentRoot) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "sif /file block[0] 12345");
  ExpectCaught(image, {"extent_tree", "i_blocks"});
}

TEST_F(CheckerTest, IndirectBlockOutsideFilesystem) {
  const std::string image = MakeSmallImage("-t ext2");
  Damage(image, "sif /file block[0] 12345");
  ExpectCaught(image, {"block_range"});
}

TEST_F(CheckerTest, BlockClaimedTwice) {
  const std::string image = MakeSmallImage("-t ext2");
  Damage(image, absl::StrCat("sif /file block[0] ", BlockOf(image, "/big", 0)));
  ExpectCaught(image, {"duplicate_block"});
}

TEST_F(CheckerTest, GroupFreeCountAndDescriptorChecksum) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "set_bg 0 free_blocks_count 7");
  ExpectCaught(image, {"group_descriptor_checksum", "group_free_blocks"});
}

TEST_F(CheckerTest, GroupFreeCount) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "set_bg 0 free_blocks_count 7");
  Damage(image, "set_bg 0 checksum calc");
  ExpectCaught(image, {"group_free_blocks"});
  auto report = CheckImage(image);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(HasKind(*report, "group_descriptor_checksum"));
}

TEST_F(CheckerTest, DirectoryBlockChecksum) {
  const std::string image = MakeSmallImage("-t ext4");
  FlipByte(image, BlockOf(image, "/sub", 0) * 1024 + 30);
  ExpectCaught(image, {"directory_checksum", "directory_block"});
}

TEST_F(CheckerTest, MalformedDirectoryBlock) {
  const std::string image = MakeSmallImage("-t ext4 -O ^metadata_csum");
  FlipByte(image, BlockOf(image, "/sub", 1) * 1024 + 4);
  ExpectCaught(image, {"directory_block"});
}

// The extent tree block under the root of a depth-1 tree: the physical
// column of the level-0 line of debugfs's "ex" listing
// (" 0/ 1   1/  1     0 -    91  1372             92").
uint64_t ExtentBlockOf(const std::string& image, const std::string& path) {
  std::istringstream lines(Query(image, "ex " + path));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string word; words >> word;) w.push_back(word);
    if (w.size() >= 8 && w[0] == "0/") {
      return std::strtoull(w[7].c_str(), nullptr, 10);
    }
  }
  return 0;
}

TEST_F(CheckerTest, ExtentBlockChecksum) {
  const std::string image = MakeSmallImage("-t ext4");
  const uint64_t block = ExtentBlockOf(image, "/frag");
  ASSERT_NE(block, 0u) << Query(image, "ex /frag");
  FlipByte(image, block * 1024 + 16);
  ExpectCaught(image, {"extent_checksum"});
}

TEST_F(CheckerTest, MalformedExtentBlock) {
  const std::string image = MakeSmallImage("-t ext4 -O ^metadata_csum");
  const uint64_t block = ExtentBlockOf(image, "/frag");
  ASSERT_NE(block, 0u) << Query(image, "ex /frag");
  FlipByte(image, block * 1024 + 2);  // eh_entries
  ExpectCaught(image, {"extent_tree", "block_bitmap"});
}

TEST_F(CheckerTest, InodeChecksum) {
  const std::string image = MakeSmallImage("-t ext4");
  FlipByte(image, InodeOffset(image, "/file", 1024) + 8);  // i_atime
  ExpectCaught(image, {"inode_checksum"});
}

TEST_F(CheckerTest, UnconnectedDirectory) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "unlink /sub2");
  ExpectCaught(image, {"unconnected_directory", "link_count"});
}

TEST_F(CheckerTest, DirectoryHardLink) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "link /sub2 /sub/alias");
  ExpectCaught(image, {"directory_hardlink"});
}

TEST_F(CheckerTest, WrongIBlocks) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "sif /big blocks 100");
  ExpectCaught(image, {"i_blocks"});
}

TEST_F(CheckerTest, SizeShorterThanBlocks) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "sif /big size 1");
  ExpectCaught(image, {"i_size"});
}

TEST_F(CheckerTest, FileTypeMismatch) {
  const std::string image = MakeSmallImage("-t ext4");
  Damage(image, "sif /file mode 0x21a4");  // a character device now
  ExpectCaught(image, {"dirent_type", "device_inode"});
}

TEST_F(CheckerTest, HtreeHashOutOfRange) {
  for (const char* args : {"-t ext4", "-t ext4 -O ^metadata_csum"}) {
    SCOPED_TRACE(args);
    const std::string image = MakeSmallImage(args, /*rehash=*/true);
    // The top byte of index entry 1's hash.
    FlipByte(image, BlockOf(image, "/sub", 0) * 1024 + 32 + 8 + 3);
    std::vector<std::string> kinds = {"htree"};
    if (std::string(args) == "-t ext4") kinds.push_back("htree_checksum");
    ExpectCaught(image, kinds);
    fs::remove_all(dir_ + "/src");
  }
}

TEST_F(CheckerTest, HtreeBadLimit) {
  const std::string image = MakeSmallImage("-t ext4", /*rehash=*/true);
  FlipByte(image, BlockOf(image, "/sub", 0) * 1024 + 32);
  ExpectCaught(image, {"htree"});
}

TEST_F(CheckerTest, XattrBlockRefcountAndChecksum) {
  for (const char* args : {"-t ext4", "-t ext4 -O ^metadata_csum"}) {
    SCOPED_TRACE(args);
    const std::string image = MakeSmallImage(args);
    if (!has_xattr_) GTEST_SKIP() << "no user xattrs on the temp directory";
    const uint64_t block = NumberAfter(Query(image, "stat /file"), "File ACL:");
    ASSERT_NE(block, 0u);
    FlipByte(image, block * 1024 + 4);  // h_refcount
    std::vector<std::string> kinds = {"xattr_refcount"};
    if (std::string(args) == "-t ext4") kinds.push_back("xattr_checksum");
    ExpectCaught(image, kinds);
    fs::remove_all(dir_ + "/src");
  }
}

TEST_F(CheckerTest, SuperblockChecksum) {
  const std::string image = MakeSmallImage("-t ext4");
  FlipByte(image, 1024 + 0x34);  // s_mnt_count
  // e2fsck cannot use a superblock with a bad checksum (exit 8 here: this
  // image has no backup); the checker reports it and goes on.
  EXPECT_NE(E2fsck(image).exit_code, 0);
  auto report = CheckImage(image);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(HasKind(*report, "superblock_checksum")) << Describe(*report);
}

// e2fsck and the kernel recompute the superblock's free counts from the
// groups, even ones larger than the totals: not a problem.
TEST_F(CheckerTest, SuperblockFreeCountsAreNotProblems) {
  for (const char* field :
       {"free_inodes_count 100000", "free_blocks_count 100000",
        "free_blocks_count 7"}) {
    SCOPED_TRACE(field);
    const std::string image = MakeSmallImage("-t ext4");
    Damage(image, absl::StrCat("ssv ", field));
    ExpectClean(image, /*compare_counts=*/false);
    fs::remove_all(dir_ + "/src");
  }
}

TEST_F(CheckerTest, JournalNeedsRecovery) {
  const std::string gz = JournalImage("ext4-csum.img.gz");
  if (gz.empty()) GTEST_SKIP() << "testdata/journal images not found";
  const std::string image = dir_ + "/journal.img";
  ASSERT_EQ(RunCommand("gzip -dc " + gz + " > " + image).exit_code, 0);
  ExpectCaught(image, {"journal", "zero_dtime"});
}

TEST_F(CheckerTest, NotAFilesystem) {
  const std::string image = dir_ + "/zeros.img";
  WriteFile(image, std::string(1 << 20, '\0'));
  auto report = CheckImage(image);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(ErrnoOf(report.status()), EINVAL);
  EXPECT_EQ(E2fsck(image).exit_code, 8);
}

// A device shorter than the filesystem. e2fsck -n warns ("the superblock or
// the partition table is likely to be corrupt") but, declining to abort,
// checks what it can read and may exit 0; the checker reports it as a
// problem and stops there (it sizes its bitmaps from the superblock).
TEST_F(CheckerTest, TruncatedImage) {
  const std::string image = MakeSmallImage("-t ext4");
  fs::resize_file(image, 2 << 20);
  EXPECT_NE(E2fsck(image).output.find("physical size of the device"),
            std::string::npos);
  auto report = CheckImage(image);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(HasKind(*report, "superblock")) << Describe(*report);
}

// Memory devices: garbage after a valid superblock must give problems or an
// error, never a crash or a hang.
TEST(CheckerMemoryTest, ScrambledMetadataNeverCrashes) {
  if (!ext4::testing::HaveE2fsprogs()) GTEST_SKIP() << "needs e2fsprogs";
  const std::string dir = ext4::testing::MakeTempDir("checker_fuzz");
  const std::string image =
      ext4::testing::MakeImageWithSmallTree(dir, "-t ext4 -b 1024", "2M");
  ASSERT_FALSE(image.empty());
  const std::string bytes = ext4::testing::ReadFileBytes(image);
  std::error_code ec;
  fs::remove_all(dir, ec);
  uint32_t state = 12345;
  for (int round = 0; round < 200; ++round) {
    std::vector<uint8_t> copy(bytes.begin(), bytes.end());
    // Scramble a few bytes past the superblock (in the metadata of the
    // first few hundred blocks).
    for (int i = 0; i < 8; ++i) {
      state = state * 1103515245 + 12345;
      const size_t offset = 2048 + (state >> 8) % (300 * 1024);
      copy[offset] = static_cast<uint8_t>(state >> 3);
    }
    auto device = io::MemoryDevice(std::move(copy), /*read_only=*/true);
    auto report = CheckFilesystem(*device);
    if (report.ok()) {
      EXPECT_LE(report->problems.size(), 2000u);
    }
  }
}

}  // namespace
}  // namespace ext4::check
