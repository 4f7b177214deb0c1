#include "fuse/unmount_watcher.h"

#include <string>

#include "gtest/gtest.h"

namespace e4fs {
namespace {

constexpr char kMounts[] =
    "/dev/vda1 / ext4 rw,relatime 0 0\n"
    "/srv/a\\040b.img /mnt/with\\040space fuse.e4fs rw,nosuid 0 0\n"
    "/srv/disk.img /mnt/disk fuse.e4fs ro,nosuid 0 0\n"
    "/srv/other.img /mnt/ext ext4 rw 0 0\n"
    "sshfs#host: /mnt/plain fuse rw 0 0\n";

TEST(UnmountWatcherTest, FindsOnlyAFuseMountOfTheSameSource) {
  EXPECT_TRUE(IsFuseMountOf(kMounts, "/mnt/disk", "/srv/disk.img"));
  EXPECT_TRUE(IsFuseMountOf(kMounts, "/mnt/disk", ""));
  // Something else mounted there since: left alone.
  EXPECT_FALSE(IsFuseMountOf(kMounts, "/mnt/disk", "/srv/other.img"));
  // Not FUSE.
  EXPECT_FALSE(IsFuseMountOf(kMounts, "/mnt/ext", "/srv/other.img"));
  EXPECT_FALSE(IsFuseMountOf(kMounts, "/mnt/gone", ""));
  EXPECT_TRUE(IsFuseMountOf(kMounts, "/mnt/plain", "sshfs#host:"));
}

TEST(UnmountWatcherTest, UndoesTheOctalEscapesOfProcMounts) {
  EXPECT_TRUE(IsFuseMountOf(kMounts, "/mnt/with space", "/srv/a b.img"));
  EXPECT_FALSE(IsFuseMountOf(kMounts, "/mnt/with\\040space", ""));
  // A truncated escape is kept as it is, not read past the end.
  EXPECT_FALSE(IsFuseMountOf("x /m\\04 fuse rw 0 0\n", "/m\x04", ""));
  EXPECT_TRUE(IsFuseMountOf("x /m\\04 fuse rw 0 0\n", "/m\\04", ""));
}

}  // namespace
}  // namespace e4fs
