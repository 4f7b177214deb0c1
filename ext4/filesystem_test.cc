// The engine end to end on images made by mke2fs -d, for every layout the
// read side supports: contents, metadata, links, xattrs, big directories, and
// the mount-time refusals.
#include "ext4/filesystem.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

bool HaveTool(const char* path) { return access(path, X_OK) == 0; }

std::string TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/fs_test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* made = mkdtemp(buf.data());
  return made ? std::string(made) : std::string();
}

int Shell(const std::string& command) { return std::system(command.c_str()); }

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::string Pattern(size_t size, int seed) {
  std::string data(size, '\0');
  uint32_t x = 2463534242u + seed;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    data[i] = static_cast<char>(x);
  }
  return data;
}

class Source {
 public:
  static constexpr int kBigDirEntries = 3000;

  explicit Source(const std::string& root) : root_(root) {
    Shell("mkdir -p " + root + "/dir/sub/deeper " + root + "/big");
    files_["empty"] = "";
    files_["small"] = "hello, ext4\n";
    files_["dir/block"] = Pattern(4096, 1);
    files_["dir/sub/odd"] = Pattern(12345, 2);
    files_["dir/sub/deeper/large"] = Pattern(3 * 1024 * 1024 + 17, 3);
    for (const auto& [name, content] : files_)
      WriteFile(root + "/" + name, content);
    symlink("small", (root + "/fastlink").c_str());
    long_target_ = std::string(200, 'x') + "/target";
    symlink(long_target_.c_str(), (root + "/longlink").c_str());
    link((root + "/small").c_str(), (root + "/dir/hardlink").c_str());
    for (int i = 0; i < kBigDirEntries; ++i) {
      WriteFile(absl::StrCat(root, "/big/entry-", i), "");
    }
    // A sparse file with data past 4 GiB.
    Shell("truncate -s 5G " + root + "/sparse && printf tail | dd of=" + root +
          "/sparse bs=1 seek=5368709000 conv=notrunc status=none");
    Shell("setfattr -n user.small -v hi " + root + "/small 2>/dev/null");
  }

  const std::map<std::string, std::string>& files() const { return files_; }
  const std::string& long_target() const { return long_target_; }

 private:
  std::string root_;
  std::map<std::string, std::string> files_;
  std::string long_target_;
};

struct Layout {
  const char* name;
  const char* mke2fs_args;
};

class FilesystemTest : public ::testing::TestWithParam<Layout> {
 protected:
  static void SetUpTestSuite() {
    if (!HaveTool("/usr/sbin/mke2fs")) return;
    dir_ = new std::string(TempDir());
    source_ = new Source(*dir_ + "/src");
  }
  static void TearDownTestSuite() {
    if (dir_) Shell("rm -rf " + *dir_);
    delete source_;
    delete dir_;
    source_ = nullptr;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!source_) GTEST_SKIP() << "mke2fs is not installed";
    image_ = absl::StrCat(*dir_, "/", GetParam().name, ".img");
    ASSERT_EQ(Shell(absl::StrCat("/usr/sbin/mke2fs -q -F ",
                                 GetParam().mke2fs_args, " -d ", *dir_, "/src ",
                                 image_, " 64M >/dev/null 2>&1")),
              0);
    auto device = io::OpenFileDevice(image_, /*read_only=*/true);
    ASSERT_TRUE(device.ok()) << device.status();
    auto fs = Filesystem::Open(std::move(*device), MountOptions{});
    ASSERT_TRUE(fs.ok()) << fs.status();
    fs_ = std::move(*fs);
  }

  std::string ReadAll(InodeNumber ino, uint64_t size) {
    std::string data(size, '\0');
    std::span<uint8_t> out(reinterpret_cast<uint8_t*>(data.data()), size);
    // Odd-sized chunks cross block and extent boundaries.
    uint64_t done = 0;
    while (done < size) {
      auto n = fs_->Read(
          ino, done, out.subspan(done, std::min<uint64_t>(7777, size - done)));
      EXPECT_TRUE(n.ok()) << n.status();
      if (!n.ok() || *n == 0) break;
      done += *n;
    }
    return data;
  }

  static std::string* dir_;
  static Source* source_;
  std::string image_;
  std::unique_ptr<Filesystem> fs_;
};

std::string* FilesystemTest::dir_ = nullptr;
Source* FilesystemTest::source_ = nullptr;

TEST_P(FilesystemTest, FilesReadBackExactly) {
  for (const auto& [name, content] : source_->files()) {
    auto ino = fs_->ResolvePath("/" + name);
    ASSERT_TRUE(ino.ok()) << name << ": " << ino.status();
    auto attr = fs_->GetAttr(*ino);
    ASSERT_TRUE(attr.ok());
    EXPECT_TRUE(S_ISREG(attr->mode));
    EXPECT_EQ(attr->size, content.size()) << name;
    EXPECT_EQ(ReadAll(*ino, attr->size), content) << name;
  }
}

TEST_P(FilesystemTest, SparseFileReadsZerosAndTheTailPast4GiB) {
  auto ino = fs_->ResolvePath("sparse");
  ASSERT_TRUE(ino.ok()) << ino.status();
  auto attr = fs_->GetAttr(*ino);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, 5ull << 30);
  std::vector<uint8_t> buf(8);
  auto n = fs_->Read(*ino, 5368709000ull, buf);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf.begin(), buf.begin() + 4), "tail");
  std::vector<uint8_t> hole(65536, 0xAA);
  n = fs_->Read(*ino, 1ull << 32, hole);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(hole, std::vector<uint8_t>(65536, 0));
  // Past the end: nothing.
  n = fs_->Read(*ino, attr->size, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST_P(FilesystemTest, SymlinksHardLinksAndLookups) {
  auto fast = fs_->ResolvePath("fastlink");
  ASSERT_TRUE(fast.ok());
  EXPECT_EQ(*fs_->ReadLink(*fast), "small");
  auto slow = fs_->ResolvePath("longlink");
  ASSERT_TRUE(slow.ok());
  EXPECT_EQ(*fs_->ReadLink(*slow), source_->long_target());
  EXPECT_EQ(ErrnoOf(fs_->ReadLink(kRootInode).status()), EINVAL);

  auto a = fs_->ResolvePath("small");
  auto b = fs_->ResolvePath("dir/hardlink");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(fs_->GetAttr(*a)->nlink, 2u);

  EXPECT_EQ(ErrnoOf(fs_->Lookup(kRootInode, "missing").status()), ENOENT);
  EXPECT_EQ(ErrnoOf(fs_->Lookup(*a, "x").status()), ENOTDIR);
  EXPECT_EQ(ErrnoOf(fs_->Lookup(kRootInode, std::string(256, 'a')).status()),
            ENAMETOOLONG);
  EXPECT_EQ(ErrnoOf(fs_->Read(kRootInode, 0, {}).status()), EISDIR);
  // Paths walk "..", "." and intermediate symlinks.
  EXPECT_EQ(*fs_->ResolvePath("/dir/sub/../hardlink"), *a);
}

TEST_P(FilesystemTest, BigDirectoryListsEveryEntryOnceAcrossCalls) {
  auto big = fs_->ResolvePath("big");
  ASSERT_TRUE(big.ok());
  std::set<std::string> seen;
  uint64_t cookie = 0;
  int calls = 0;
  while (true) {
    int taken = 0;
    bool more = false;
    auto status = fs_->ReadDir(*big, cookie, [&](const DirEntry& entry) {
      if (taken == 50) {
        more = true;
        return false;
      }
      EXPECT_TRUE(seen.insert(entry.name).second) << entry.name;
      EXPECT_NE(entry.next_cookie, 0u);
      cookie = entry.next_cookie;
      ++taken;
      return true;
    });
    ASSERT_TRUE(status.ok()) << status;
    ++calls;
    if (!more) break;
    ASSERT_LT(calls, 1000);
  }
  EXPECT_EQ(seen.size(), Source::kBigDirEntries + 2u);
  EXPECT_TRUE(seen.count(".") && seen.count(".."));
  for (int i = 0; i < Source::kBigDirEntries; i += 97) {
    EXPECT_TRUE(fs_->Lookup(*big, absl::StrCat("entry-", i)).ok());
  }
}

TEST_P(FilesystemTest, PinnedInodesStayWithinTheCacheLimit) {
  // The kernel remembers every node it has looked up; the engine must not
  // keep all of them in core (a million-file walk would hold a gigabyte).
  auto device = io::OpenFileDevice(image_, /*read_only=*/true);
  ASSERT_TRUE(device.ok());
  MountOptions options;
  options.inode_cache_limit = 64;
  auto fs = Filesystem::Open(std::move(*device), options);
  ASSERT_TRUE(fs.ok()) << fs.status();
  auto big = (*fs)->ResolvePath("big");
  ASSERT_TRUE(big.ok());
  for (int i = 0; i < Source::kBigDirEntries; ++i) {
    auto ino = (*fs)->Lookup(*big, absl::StrCat("entry-", i));
    ASSERT_TRUE(ino.ok()) << i;
    ASSERT_TRUE((*fs)->Pin(*ino).ok());
  }
  ASSERT_GT(Source::kBigDirEntries, 500);
  EXPECT_LE((*fs)->InodesInCore(), 64u + 8u);
  // A pinned inode that was let go loads again.
  auto first = (*fs)->Lookup(*big, "entry-0");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE((*fs)->GetAttr(*first).ok());
  EXPECT_TRUE((*fs)->Pin(12345678).ok() == false);  // past the inode count
}

TEST_P(FilesystemTest, XattrsAndStatfs) {
  auto ino = fs_->ResolvePath("small");
  ASSERT_TRUE(ino.ok());
  auto names = fs_->ListXattrs(*ino);
  ASSERT_TRUE(names.ok()) << names.status();
  if (HaveTool("/usr/bin/setfattr")) {
    EXPECT_EQ(*fs_->GetXattr(*ino, "user.small"), "hi");
  }
  EXPECT_EQ(ErrnoOf(fs_->GetXattr(*ino, "user.none").status()), ENODATA);
  auto stats = fs_->StatFs();
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->blocks, stats->free_blocks);
  EXPECT_GT(stats->inodes, stats->free_inodes);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, FilesystemTest,
    ::testing::Values(Layout{"ext4", "-t ext4"},
                      Layout{"ext4_nocsum", "-t ext4 -O ^metadata_csum,^64bit"},
                      Layout{"inline", "-t ext4 -O inline_data"},
                      Layout{"ext4_1k", "-t ext4 -b 1024"},
                      Layout{"ext4_128", "-t ext4 -I 128"},
                      Layout{"bigalloc", "-t ext4 -O bigalloc -C 16384"},
                      Layout{"large_dir", "-t ext4 -O large_dir"},
                      Layout{"ext3", "-t ext3"}, Layout{"ext2", "-t ext2"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(FilesystemOpenTest, RefusesWhatItCannotMount) {
  std::vector<uint8_t> zeros(1 << 20);
  auto fs = Filesystem::Open(io::MemoryDevice(zeros, true), MountOptions{});
  EXPECT_EQ(ErrnoOf(fs.status()), EINVAL);
  fs = Filesystem::Open(io::MemoryDevice({}, true), MountOptions{});
  EXPECT_EQ(ErrnoOf(fs.status()), EINVAL);
}

}  // namespace
}  // namespace ext4
