// The write side through the engine's public API, on images made by mke2fs:
// what the FUSE-level tests cannot reach quickly (65,000 subdirectories,
// orphans across the last release, unnamed files, a full filesystem), each
// ending with e2fsck -fn clean.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ext4/filesystem.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

constexpr char kMke2fs[] = "/usr/sbin/mke2fs";
constexpr char kE2fsck[] = "/usr/sbin/e2fsck";

class FilesystemWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kMke2fs, X_OK) != 0 || access(kE2fsck, X_OK) != 0) {
      GTEST_SKIP() << "e2fsprogs are not installed";
    }
    const char* base = std::getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/fsw.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    image_ = dir_ + "/img";
  }
  void TearDown() override {
    fs_.reset();
    if (!dir_.empty()) {
      EXPECT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
    }
  }

  // ext4 unless `args` names another type with -t.
  void Make(const std::string& args, const std::string& size) {
    const char* type =
        absl::StrContains(args, "-t ") ? " -q -F " : " -q -F -t ext4 ";
    ASSERT_EQ(std::system(absl::StrCat(kMke2fs, type, args, " ", image_, " ",
                                       size, " >/dev/null 2>&1")
                              .c_str()),
              0);
    Mount();
  }
  void Mount() {
    auto device = io::OpenFileDevice(image_, /*read_only=*/false);
    ASSERT_TRUE(device.ok()) << device.status();
    MountOptions options;
    options.read_only = false;
    auto fs = Filesystem::Open(std::move(*device), options);
    ASSERT_TRUE(fs.ok()) << fs.status();
    fs_ = std::move(*fs);
  }
  // Unmounts cleanly and runs the oracle.
  void ExpectClean() {
    ASSERT_TRUE(fs_->SyncAll().ok());
    fs_.reset();
    std::string out = dir_ + "/fsck.out";
    int rc = std::system(
        absl::StrCat(kE2fsck, " -fn ", image_, " >", out, " 2>&1").c_str());
    if (rc != 0) {
      EXPECT_EQ(std::system(("cat " + out).c_str()), 0);
    }
    EXPECT_EQ(rc, 0);
  }

  std::string dir_, image_;
  std::unique_ptr<Filesystem> fs_;
  Credentials root_;
};

TEST_F(FilesystemWriteTest, DirNlinkPast65000Subdirectories) {
  Make("-b 1024 -N 70000 -I 128", "128M");
  auto top = fs_->MakeDirectory(kRootInode, "top", 0755, root_);
  ASSERT_TRUE(top.ok()) << top.status();
  constexpr int kDirs = 65010;
  for (int i = 0; i < kDirs; ++i) {
    auto made = fs_->MakeDirectory(top->ino, absl::StrCat("d", i), 0755, root_);
    ASSERT_TRUE(made.ok()) << i << ": " << made.status();
  }
  // Past the limit the count reads 1: "more than can be counted".
  EXPECT_EQ(fs_->GetAttr(top->ino)->nlink, 1u);
  ASSERT_TRUE(fs_->RemoveDirectory(top->ino, "d0").ok());
  EXPECT_EQ(fs_->GetAttr(top->ino)->nlink, 1u);
  ExpectClean();
}

TEST_F(FilesystemWriteTest, UnlinkedOpenFileLivesUntilItsLastRelease) {
  Make("", "64M");
  auto file = fs_->Create(kRootInode, "f", 0644, root_);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(fs_->OpenFile(file->ino).ok());
  std::vector<uint8_t> data(100000, 0x5A);
  ASSERT_TRUE(fs_->Write(file->ino, 0, data, root_).ok());
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  EXPECT_EQ(ErrnoOf(fs_->Lookup(kRootInode, "f").status()), ENOENT);
  // Still readable and writable through the open file.
  std::vector<uint8_t> back(100000);
  ASSERT_EQ(*fs_->Read(file->ino, 0, back), back.size());
  EXPECT_EQ(back, data);
  ASSERT_TRUE(fs_->Write(file->ino, 100000, data, root_).ok());
  EXPECT_EQ(fs_->GetAttr(file->ino)->nlink, 0u);
  auto before = fs_->StatFs();
  ASSERT_TRUE(fs_->Release(file->ino).ok());
  auto after = fs_->StatFs();
  EXPECT_EQ(after->free_inodes, before->free_inodes + 1);
  EXPECT_GT(after->free_blocks, before->free_blocks + 40);
  ExpectClean();
}

// A crash with an unlinked file still open leaves it on the orphan list; the
// next read-write mount frees it, as the kernel does.
TEST_F(FilesystemWriteTest, OrphansOfACrashAreFreedAtTheNextMount) {
  Make("", "64M");
  auto file = fs_->Create(kRootInode, "f", 0644, root_);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(fs_->OpenFile(file->ino).ok());
  std::vector<uint8_t> data(300000, 0x33);
  ASSERT_TRUE(fs_->Write(file->ino, 0, data, root_).ok());
  const auto empty = fs_->StatFs();
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  ASSERT_TRUE(fs_->Sync(file->ino, false).ok());
  fs_.reset();  // the crash: no release, no clean unmount
  std::string out = dir_ + "/orphan.out";
  ASSERT_EQ(std::system(absl::StrCat("/usr/sbin/debugfs -R 'stats' ", image_,
                                     " 2>/dev/null | grep -q 'orphan inode'")
                            .c_str()),
            0)
      << "the crash should leave an orphan list";
  Mount();
  const auto after = fs_->StatFs();
  // The file's inode and its blocks (73 data blocks and none else).
  EXPECT_EQ(after->free_inodes, empty->free_inodes + 1);
  EXPECT_GE(after->free_blocks, empty->free_blocks + 73);
  ExpectClean();
}

// An orphan with links is an interrupted truncate: the next mount cuts it
// to its size.
TEST_F(FilesystemWriteTest, TruncateOrphanIsCutToItsSize) {
  Make("", "64M");
  auto file = fs_->Create(kRootInode, "t", 0644, root_);
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> data(200 * 1024, 0x44);
  ASSERT_TRUE(fs_->Write(file->ino, 0, data, root_).ok());
  ASSERT_TRUE(fs_->SyncAll().ok());
  fs_.reset();
  // As a crash in the middle of truncating to 10 KiB would leave it.
  ASSERT_EQ(
      std::system(absl::StrCat("/usr/sbin/debugfs -w -R 'sif <", file->ino,
                               "> size 10240' ", image_,
                               " >/dev/null 2>&1 && /usr/sbin/debugfs "
                               "-w -R 'ssv last_orphan ",
                               file->ino, "' ", image_, " >/dev/null 2>&1")
                      .c_str()),
      0);
  Mount();
  auto attr = fs_->GetAttr(file->ino);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, 10240u);
  EXPECT_EQ(attr->nlink, 1u);
  EXPECT_LE(attr->blocks, 10240u / 512 + 8);
  std::vector<uint8_t> back(10240);
  ASSERT_EQ(*fs_->Read(file->ino, 0, back), back.size());
  EXPECT_EQ(back, std::vector<uint8_t>(10240, 0x44));
  ExpectClean();
}

// Corruption found while serving is recorded in the superblock, and the
// errors= policy applies: continue, remount-ro (no more changes), panic
// (the server stops).
class ErrorsPolicyTest : public FilesystemWriteTest {
 protected:
  // An image whose directory /d has a broken first entry.
  void MakeBrokenDirectory() {
    Make("-b 4096", "32M");
    auto d = fs_->MakeDirectory(kRootInode, "d", 0755, root_);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(fs_->Create(d->ino, "f", 0644, root_).ok());
    ASSERT_TRUE(fs_->SyncAll().ok());
    fs_.reset();
    const std::string blocks = dir_ + "/blocks";
    ASSERT_EQ(std::system(absl::StrCat("/usr/sbin/debugfs -R 'blocks /d' ",
                                       image_, " 2>/dev/null >", blocks)
                              .c_str()),
              0);
    // rec_len of "." (bytes 4-5 of the block) becomes 3: invalid.
    ASSERT_EQ(std::system(absl::StrCat("printf '\\003\\000' | dd of=", image_,
                                       " bs=1 seek=$(( $(cat ", blocks,
                                       ") * 4096 + 4 )) conv=notrunc "
                                       "2>/dev/null")
                              .c_str()),
              0);
  }
  void MountWith(ErrorsPolicy policy) {
    auto device = io::OpenFileDevice(image_, /*read_only=*/false);
    ASSERT_TRUE(device.ok());
    MountOptions options;
    options.read_only = false;
    options.errors = policy;
    auto fs = Filesystem::Open(std::move(*device), options);
    ASSERT_TRUE(fs.ok()) << fs.status();
    fs_ = std::move(*fs);
  }
  std::string Dumpe2fs() {
    const std::string out = dir_ + "/dumpe2fs";
    EXPECT_EQ(std::system(absl::StrCat("/usr/sbin/dumpe2fs -h ", image_, " >",
                                       out, " 2>/dev/null")
                              .c_str()),
              0);
    FILE* f = std::fopen(out.c_str(), "r");
    std::string text;
    char buf[4096];
    size_t n;
    while (f && (n = std::fread(buf, 1, sizeof buf, f)) > 0)
      text.append(buf, n);
    if (f) std::fclose(f);
    return text;
  }
};

TEST_F(ErrorsPolicyTest, ContinueRecordsTheErrorAndGoesOn) {
  MakeBrokenDirectory();
  MountWith(ErrorsPolicy::kContinue);
  auto d = fs_->Lookup(kRootInode, "d");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(ErrnoOf(fs_->Lookup(*d, "f").status()), EUCLEAN);
  // Recorded on the image at once, before any unmount.
  EXPECT_NE(Dumpe2fs().find("FS Error count:           1"), std::string::npos)
      << Dumpe2fs();
  EXPECT_TRUE(fs_->Create(kRootInode, "still-writable", 0644, root_).ok());
  ASSERT_TRUE(fs_->SyncAll().ok());
  fs_.reset();
  const std::string info = Dumpe2fs();
  EXPECT_NE(info.find("clean with errors"), std::string::npos) << info;
  EXPECT_NE(info.find("FS Error count:           1"), std::string::npos)
      << info;
  EXPECT_NE(info.find("Last error inode #:"), std::string::npos) << info;
}

TEST_F(ErrorsPolicyTest, RemountReadOnlyRefusesChangesAfterAnError) {
  MakeBrokenDirectory();
  MountWith(ErrorsPolicy::kRemountReadOnly);
  ASSERT_TRUE(fs_->Create(kRootInode, "before", 0644, root_).ok());
  auto d = fs_->Lookup(kRootInode, "d");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(ErrnoOf(fs_->Lookup(*d, "f").status()), EUCLEAN);
  EXPECT_EQ(ErrnoOf(fs_->Create(kRootInode, "after", 0644, root_).status()),
            EROFS);
  // Reading goes on.
  EXPECT_TRUE(fs_->Lookup(kRootInode, "before").ok());
  ASSERT_TRUE(fs_->SyncAll().ok());
  fs_.reset();
  EXPECT_NE(Dumpe2fs().find("with errors"), std::string::npos);
}

TEST_F(ErrorsPolicyTest, PanicStopsTheServerAfterRecordingTheError) {
  MakeBrokenDirectory();
  EXPECT_EXIT(
      {
        MountWith(ErrorsPolicy::kPanic);
        auto d = fs_->Lookup(kRootInode, "d");
        if (d.ok()) (void)fs_->Lookup(*d, "f");
        std::exit(0);
      },
      ::testing::ExitedWithCode(3), "errors=panic");
  EXPECT_NE(Dumpe2fs().find("FS Error count:           1"), std::string::npos);
}

TEST_F(FilesystemWriteTest, UnnamedFileIsLinkedInOrVanishes) {
  Make("", "64M");
  auto kept = fs_->CreateUnnamed(kRootInode, 0600, root_);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_TRUE(fs_->OpenFile(kept->ino).ok());
  std::vector<uint8_t> data(5000, 7);
  ASSERT_TRUE(fs_->Write(kept->ino, 0, data, root_).ok());
  ASSERT_TRUE(fs_->Link(kept->ino, kRootInode, "kept").ok());
  ASSERT_TRUE(fs_->Release(kept->ino).ok());
  auto gone = fs_->CreateUnnamed(kRootInode, 0600, root_);
  ASSERT_TRUE(gone.ok());
  ASSERT_TRUE(fs_->OpenFile(gone->ino).ok());
  ASSERT_TRUE(fs_->Write(gone->ino, 0, data, root_).ok());
  ASSERT_TRUE(fs_->Release(gone->ino).ok());
  EXPECT_EQ(*fs_->ResolvePath("kept"), kept->ino);
  EXPECT_EQ(fs_->GetAttr(kept->ino)->size, 5000u);
  ExpectClean();
}

TEST_F(FilesystemWriteTest, FullFilesystemLosesNothing) {
  Make("-N 64", "8M");
  std::vector<uint8_t> keep(300000);
  for (size_t i = 0; i < keep.size(); ++i)
    keep[i] = static_cast<uint8_t>(i * 7);
  auto precious = fs_->Create(kRootInode, "precious", 0644, root_);
  ASSERT_TRUE(precious.ok());
  ASSERT_TRUE(fs_->Write(precious->ino, 0, keep, root_).ok());
  // Fill the blocks: writes end in ENOSPC, never in corruption.
  auto filler = fs_->Create(kRootInode, "filler", 0644, root_);
  ASSERT_TRUE(filler.ok());
  std::vector<uint8_t> chunk(1 << 20, 1);
  absl::Status status;
  Credentials user{1000, 1000, {}};
  for (uint64_t offset = 0; status.ok(); offset += chunk.size()) {
    status = fs_->Write(filler->ino, offset, chunk, user).status();
  }
  EXPECT_EQ(ErrnoOf(status), ENOSPC);
  // Fill the inodes.
  for (int i = 0; status.ok() || ErrnoOf(status) != ENOSPC; ++i) {
    status =
        fs_->Create(kRootInode, absl::StrCat("n", i), 0644, root_).status();
    ASSERT_LT(i, 100);
  }
  EXPECT_EQ(ErrnoOf(status), ENOSPC);
  std::vector<uint8_t> back(keep.size());
  ASSERT_EQ(*fs_->Read(precious->ino, 0, back), back.size());
  EXPECT_EQ(back, keep);
  // Freeing space makes room again.
  ASSERT_TRUE(fs_->Unlink(kRootInode, "filler").ok());
  EXPECT_TRUE(fs_->Write(precious->ino, keep.size(), keep, root_).ok());
  ExpectClean();
}

// The VFS form of an ACL: version 2, then {tag, perm, id} entries.
std::string Acl(std::initializer_list<std::array<uint32_t, 3>> entries) {
  std::string out("\x02\0\0\0", 4);
  for (const auto& [tag, perm, id] : entries) {
    for (uint32_t v : {tag & 0xFFFF, perm & 0xFFFF}) {
      out.push_back(static_cast<char>(v & 0xFF));
      out.push_back(static_cast<char>(v >> 8));
    }
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(id >> (8 * i)));
  }
  return out;
}
constexpr uint32_t kNoId = 0xFFFFFFFF;

TEST_F(FilesystemWriteTest, DefaultAclIsInheritedAndUmaskAppliesWithoutOne) {
  Make("", "32M");
  Credentials masked;
  masked.umask = 022;
  // No default ACL: the umask.
  auto plain = fs_->Create(kRootInode, "plain", 0666, masked);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->mode & 07777, 0644u);

  auto dir = fs_->MakeDirectory(kRootInode, "acl", 0755, root_);
  ASSERT_TRUE(dir.ok());
  const std::string with_user = Acl({{0x01, 7, kNoId},
                                     {0x02, 7, 1000},
                                     {0x04, 5, kNoId},
                                     {0x10, 7, kNoId},
                                     {0x20, 0, kNoId}});
  ASSERT_TRUE(
      fs_->SetXattr(dir->ino, "system.posix_acl_default", with_user, 0).ok());
  // A file: the default ACL narrowed by 0666 (the umask does not apply).
  auto file = fs_->Create(dir->ino, "f", 0666, masked);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->mode & 07777, 0660u);
  auto access = fs_->GetXattr(file->ino, "system.posix_acl_access");
  ASSERT_TRUE(access.ok()) << access.status();
  EXPECT_EQ(*access, Acl({{0x01, 6, kNoId},
                          {0x02, 7, 1000},
                          {0x04, 5, kNoId},
                          {0x10, 6, kNoId},
                          {0x20, 0, kNoId}}));
  EXPECT_EQ(
      ErrnoOf(fs_->GetXattr(file->ino, "system.posix_acl_default").status()),
      ENODATA);
  // A directory: the same, and the default ACL itself.
  auto sub = fs_->MakeDirectory(dir->ino, "sub", 0777, masked);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->mode & 07777, 0770u);
  EXPECT_EQ(*fs_->GetXattr(sub->ino, "system.posix_acl_default"), with_user);
  EXPECT_TRUE(fs_->GetXattr(sub->ino, "system.posix_acl_access").ok());

  // A default ACL the mode bits can express: no access ACL is stored.
  auto dir2 = fs_->MakeDirectory(kRootInode, "acl2", 0755, root_);
  ASSERT_TRUE(dir2.ok());
  ASSERT_TRUE(
      fs_->SetXattr(dir2->ino, "system.posix_acl_default",
                    Acl({{0x01, 7, kNoId}, {0x04, 5, kNoId}, {0x20, 4, kNoId}}),
                    0)
          .ok());
  auto file2 = fs_->Create(dir2->ino, "g", 0666, masked);
  ASSERT_TRUE(file2.ok());
  EXPECT_EQ(file2->mode & 07777, 0644u);
  EXPECT_EQ(
      ErrnoOf(fs_->GetXattr(file2->ino, "system.posix_acl_access").status()),
      ENODATA);
  ExpectClean();
}

TEST_F(FilesystemWriteTest, ErrnosOfTheKernel) {
  Make("", "64M");
  auto dir = fs_->MakeDirectory(kRootInode, "d", 0755, root_);
  ASSERT_TRUE(dir.ok());
  auto file = fs_->Create(dir->ino, "f", 0644, root_);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(ErrnoOf(fs_->Create(dir->ino, "f", 0644, root_).status()), EEXIST);
  EXPECT_EQ(ErrnoOf(fs_->MakeDirectory(kRootInode, "d", 0755, root_).status()),
            EEXIST);
  EXPECT_EQ(ErrnoOf(fs_->RemoveDirectory(kRootInode, "d")), ENOTEMPTY);
  EXPECT_EQ(ErrnoOf(fs_->Unlink(kRootInode, "d")), EISDIR);
  EXPECT_EQ(ErrnoOf(fs_->RemoveDirectory(dir->ino, "f")), ENOTDIR);
  EXPECT_EQ(
      ErrnoOf(
          fs_->Create(kRootInode, std::string(256, 'x'), 0644, root_).status()),
      ENAMETOOLONG);
  EXPECT_EQ(ErrnoOf(fs_->Link(dir->ino, kRootInode, "dirlink").status()),
            EPERM);
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "d", dir->ino, "inside", 0)),
            EINVAL);
  EXPECT_EQ(ErrnoOf(fs_->Rename(dir->ino, "f", kRootInode, "d", 0)), EISDIR);
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "missing", kRootInode, "x", 0)),
            ENOENT);
  EXPECT_EQ(
      ErrnoOf(fs_->Rename(dir->ino, "f", kRootInode, "d", kRenameNoReplace)),
      EEXIST);
  EXPECT_EQ(ErrnoOf(fs_->Write(file->ino, uint64_t{1} << 50,
                               std::vector<uint8_t>(1), root_)
                        .status()),
            EFBIG);
  EXPECT_EQ(ErrnoOf(fs_->GetXattr(file->ino, "user.none").status()), ENODATA);
  EXPECT_EQ(ErrnoOf(fs_->SetXattr(file->ino, "user.a", "1", kXattrReplace)),
            ENODATA);
  ASSERT_TRUE(fs_->SetXattr(file->ino, "user.a", "1", kXattrCreate).ok());
  EXPECT_EQ(ErrnoOf(fs_->SetXattr(file->ino, "user.a", "1", kXattrCreate)),
            EEXIST);
  EXPECT_EQ(ErrnoOf(fs_->Seek(file->ino, 0, SEEK_DATA).status()), ENXIO);
  ExpectClean();
}

// An indirect map allocates every block a write asks for, though only the
// first physically contiguous run comes back (here blocks 0-11, then the
// indirect block, then 12-16): the rest must still be written as fresh
// blocks, zeros past the data, not as blocks holding what a deleted file
// left there.
TEST_F(FilesystemWriteTest, IndirectWriteLeavesNoStaleBytesPastTheEnd) {
  Make("-t ext2", "64M");
  auto junk = fs_->Create(kRootInode, "junk", 0644, root_);
  ASSERT_TRUE(junk.ok());
  std::vector<uint8_t> old(3000000, 0xAB);
  ASSERT_TRUE(fs_->Write(junk->ino, 0, old, root_).ok());
  ASSERT_TRUE(fs_->Unlink(kRootInode, "junk").ok());
  auto file = fs_->Create(kRootInode, "f", 0644, root_);
  ASSERT_TRUE(file.ok());
  constexpr size_t kSize = 16 * 4096 + 858;
  std::vector<uint8_t> data(kSize, 0x11);
  ASSERT_TRUE(fs_->Write(file->ino, 0, data, root_).ok());
  // Growing the file shows the bytes past the old end.
  std::vector<uint8_t> one(1, 0x22);
  ASSERT_TRUE(fs_->Write(file->ino, 200000, one, root_).ok());
  std::vector<uint8_t> back(200001);
  ASSERT_EQ(*fs_->Read(file->ino, 0, back), back.size());
  std::vector<uint8_t> want(200001, 0);
  std::fill(want.begin(), want.begin() + kSize, 0x11);
  want.back() = 0x22;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(back[i], want[i]) << "first wrong byte at " << i;
  }
  ExpectClean();
}

// In-place reads (what a FUSE server splices) describe exactly the bytes
// Read copies: data runs of the image, zeros for holes and unwritten
// extents, nothing past the end; inline data is left to Read.
TEST_F(FilesystemWriteTest, ReadInPlaceMatchesRead) {
  for (const char* args : {"-O inline_data", "-t ext2"}) {
    SCOPED_TRACE(args);
    Make(args, "64M");
    auto file = fs_->Create(kRootInode, "f", 0644, root_);
    ASSERT_TRUE(file.ok());
    std::vector<uint8_t> data(300000);
    for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7 + 3);
    ASSERT_TRUE(fs_->Write(file->ino, 0, data, root_).ok());
    ASSERT_TRUE(fs_->Write(file->ino, 1000000, data, root_).ok());  // hole
    const int image_fd = open(image_.c_str(), O_RDONLY);
    ASSERT_GE(image_fd, 0);
    const uint64_t size = 1300000;
    for (const auto& [offset, length] :
         std::vector<std::pair<uint64_t, size_t>>{{0, 4096},
                                                  {123, 1032192},
                                                  {290000, 800000},
                                                  {1299000, 1032192},
                                                  {size, 4096}}) {
      std::vector<uint8_t> copied(length);
      auto n = fs_->Read(file->ino, offset, copied);
      ASSERT_TRUE(n.ok()) << n.status();
      copied.resize(*n);
      std::vector<uint8_t> in_place;
      absl::Status s = fs_->ReadInPlace(
          file->ino, offset, length,
          [&](std::span<const Filesystem::ReadPiece> pieces) {
            for (const Filesystem::ReadPiece& piece : pieces) {
              std::vector<uint8_t> bytes(piece.length, 0);
              if (piece.fd >= 0) {
                EXPECT_EQ(pread(piece.fd, bytes.data(), bytes.size(),
                                static_cast<off_t>(piece.offset)),
                          static_cast<ssize_t>(bytes.size()));
              }
              in_place.insert(in_place.end(), bytes.begin(), bytes.end());
            }
            return absl::OkStatus();
          });
      ASSERT_TRUE(s.ok()) << s;
      EXPECT_EQ(in_place, copied) << "at " << offset << "+" << length;
    }
    close(image_fd);
    // Directories are not read in place.
    auto consume = [](std::span<const Filesystem::ReadPiece>) {
      return absl::OkStatus();
    };
    EXPECT_EQ(ErrnoOf(fs_->ReadInPlace(kRootInode, 0, 10, consume)), EISDIR);
    ExpectClean();
  }
}

// A file whose data is inline (made so by mke2fs -d) is left to Read.
TEST_F(FilesystemWriteTest, InlineDataIsNotReadInPlace) {
  const std::string source = dir_ + "/src";
  ASSERT_EQ(mkdir(source.c_str(), 0755), 0);
  ASSERT_EQ(std::system(
                ("printf twenty-bytes-of-data > " + source + "/tiny").c_str()),
            0);
  Make("-O inline_data -d " + source, "64M");
  auto tiny = fs_->Lookup(kRootInode, "tiny");
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  auto consume = [](std::span<const Filesystem::ReadPiece>) {
    return absl::OkStatus();
  };
  EXPECT_EQ(ErrnoOf(fs_->ReadInPlace(*tiny, 0, 20, consume)), EOPNOTSUPP);
  std::vector<uint8_t> back(20);
  ASSERT_EQ(*fs_->Read(*tiny, 0, back), 20u);
  EXPECT_EQ(std::string(back.begin(), back.end()), "twenty-bytes-of-data");
  ExpectClean();
}

// A directory moved over an empty directory of another parent: the old
// parent loses a subdirectory, the new one keeps its count.
TEST_F(FilesystemWriteTest, RenameDirectoryOverDirectoryAcrossParents) {
  Make("", "64M");
  auto a = fs_->MakeDirectory(kRootInode, "a", 0755, root_);
  auto b = fs_->MakeDirectory(kRootInode, "b", 0755, root_);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(fs_->MakeDirectory(a->ino, "d", 0755, root_).ok());
  ASSERT_TRUE(fs_->MakeDirectory(b->ino, "e", 0755, root_).ok());
  ASSERT_TRUE(fs_->Rename(a->ino, "d", b->ino, "e", 0).ok());
  EXPECT_EQ(fs_->GetAttr(a->ino)->nlink, 2u);
  EXPECT_EQ(fs_->GetAttr(b->ino)->nlink, 3u);
  ExpectClean();
}

// Data a page cache writes back changes the size, not the times: the
// cache's owner sends those itself.
TEST_F(FilesystemWriteTest, WriteBackKeepsTheTimes) {
  Make("", "64M");
  auto file = fs_->Create(kRootInode, "f", 0644, root_);
  ASSERT_TRUE(file.ok());
  SetAttrRequest times;
  times.mtime = Timestamp{1000000000, 5};
  times.ctime = Timestamp{1000000001, 6};
  ASSERT_TRUE(fs_->SetAttr(file->ino, times, root_).ok());
  std::vector<uint8_t> data(10000, 0x44);
  ASSERT_TRUE(fs_->WriteBack(file->ino, 0, data).ok());
  auto attr = fs_->GetAttr(file->ino);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, 10000u);
  EXPECT_EQ(attr->mtime.sec, 1000000000);
  EXPECT_EQ(attr->mtime.nsec, 5u);
  EXPECT_EQ(attr->ctime.sec, 1000000001);
  ASSERT_TRUE(fs_->Write(file->ino, 0, data, root_).ok());
  EXPECT_GT(fs_->GetAttr(file->ino)->mtime.sec, 1000000000);
  ExpectClean();
}

// The kernel writes its copy of the times back after each link, rename and
// unlink: equal times change nothing, and any other value still lands.
TEST_F(FilesystemWriteTest, SetAttrOfTheSameTimes) {
  Make("", "64M");
  auto file = fs_->Create(kRootInode, "f", 0644, root_);
  ASSERT_TRUE(file.ok());
  auto link = fs_->Link(file->ino, kRootInode, "g");
  ASSERT_TRUE(link.ok());
  auto before = fs_->GetAttr(file->ino);
  ASSERT_TRUE(before.ok());
  SetAttrRequest same;
  same.mtime = before->mtime;
  same.ctime = before->ctime;
  auto after = fs_->SetAttr(file->ino, same, root_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->nlink, 2u);
  EXPECT_EQ(after->mtime.sec, before->mtime.sec);
  EXPECT_EQ(after->mtime.nsec, before->mtime.nsec);
  EXPECT_EQ(after->ctime.sec, before->ctime.sec);
  EXPECT_EQ(after->ctime.nsec, before->ctime.nsec);
  // Same ctime, another mtime: set.
  SetAttrRequest other = same;
  other.mtime = Timestamp{1000000000, 7};
  after = fs_->SetAttr(file->ino, other, root_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->mtime.sec, 1000000000);
  EXPECT_EQ(after->mtime.nsec, 7u);
  EXPECT_EQ(after->ctime.sec, before->ctime.sec);
  // Same times but a mode: the mode lands and ctime moves to now.
  SetAttrRequest chmod = other;
  chmod.ctime.reset();
  chmod.mode = 0600;
  after = fs_->SetAttr(file->ino, chmod, root_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->mode & 07777, 0600u);
  // Survives a remount: the values were written.
  ASSERT_TRUE(fs_->SyncAll().ok());
  fs_.reset();
  Mount();
  auto reread = fs_->GetAttr(file->ino);
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(reread->mtime.sec, 1000000000);
  EXPECT_EQ(reread->mtime.nsec, 7u);
  EXPECT_EQ(reread->mode & 07777, 0600u);
  ExpectClean();
}

// An unlinked inode the kernel still knows (pinned by a lookup) stays
// allocated until it is forgotten: a request racing the unlink must not act
// on a freed inode, nor its number go to a new file meanwhile.
TEST_F(FilesystemWriteTest, PinnedUnlinkedInodeLivesUntilForgotten) {
  Make("", "64M");
  auto file = fs_->Create(kRootInode, "f", 0644, root_);
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> data(50000, 0x66);
  ASSERT_TRUE(fs_->Write(file->ino, 0, data, root_).ok());
  ASSERT_TRUE(fs_->Pin(file->ino, 2).ok());
  const auto before = fs_->StatFs();
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  auto kept = fs_->GetAttr(file->ino);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->nlink, 0u);
  EXPECT_EQ(kept->size, 50000u);
  auto other = fs_->Create(kRootInode, "g", 0644, root_);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->ino, file->ino);
  fs_->Unpin(file->ino, 1);
  EXPECT_TRUE(fs_->GetAttr(file->ino).ok()) << "one lookup is left";
  fs_->Unpin(file->ino, 1);
  const auto after = fs_->StatFs();
  // Freed: the inode (so the count is back, though "g" took one) and the
  // data blocks.
  EXPECT_EQ(after->free_inodes, before->free_inodes);
  EXPECT_GT(after->free_blocks, before->free_blocks);
  ExpectClean();
}

// At unmount the kernel sends no forgets: ForgetAll frees what pins kept.
TEST_F(FilesystemWriteTest, ForgetAllFreesKeptOrphans) {
  Make("", "64M");
  auto file = fs_->Create(kRootInode, "f", 0644, root_);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(fs_->Pin(file->ino, 1).ok());
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  const auto before = fs_->StatFs();
  ASSERT_TRUE(fs_->ForgetAll().ok());
  EXPECT_EQ(fs_->StatFs()->free_inodes, before->free_inodes + 1);
  ExpectClean();
}

}  // namespace
}  // namespace ext4
