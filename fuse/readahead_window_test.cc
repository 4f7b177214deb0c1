#include "fuse/readahead_window.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace e4fs {
namespace {

constexpr char kMountinfo[] =
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "40 22 0:51 / /mnt/a\\040b rw,nosuid - fuse.e4fs img rw,user_id=0\n"
    "41 22 0:52 / /mnt/c rw - fuse.e4fs img2 rw\n"
    "42 41 0:53 / /mnt/c rw - fuse.e4fs img3 rw\n"
    "43 22 0:54 / /mnt/back\\134slash rw - fuse.e4fs img4 rw\n";

TEST(MountDeviceFromMountinfoTest, FindsTheMountByItsUnescapedPath) {
  EXPECT_EQ(MountDeviceFromMountinfo(kMountinfo, "/"), "254:0");
  EXPECT_EQ(MountDeviceFromMountinfo(kMountinfo, "/mnt/a b"), "0:51");
  EXPECT_EQ(MountDeviceFromMountinfo(kMountinfo, "/mnt/back\\slash"), "0:54");
}

TEST(MountDeviceFromMountinfoTest, ABackslashWithoutThreeDigitsIsItself) {
  EXPECT_EQ(MountDeviceFromMountinfo("1 2 0:1 / \\1 rw\n", "\\1"), "0:1");
  EXPECT_EQ(MountDeviceFromMountinfo("1 2 0:1 / /x\\ rw\n", "/x\\"), "0:1");
  EXPECT_EQ(MountDeviceFromMountinfo("1 2 0:1 / \\477 rw\n", "\\477"), "0:1");
}

TEST(MountDeviceFromMountinfoTest, TheTopOfAStackWins) {
  EXPECT_EQ(MountDeviceFromMountinfo(kMountinfo, "/mnt/c"), "0:53");
}

TEST(MountDeviceFromMountinfoTest, NothingForOtherPathsOrGarbage) {
  EXPECT_EQ(MountDeviceFromMountinfo(kMountinfo, "/mnt"), std::nullopt);
  EXPECT_EQ(MountDeviceFromMountinfo(kMountinfo, "/mnt/a\\040b"), std::nullopt);
  EXPECT_EQ(MountDeviceFromMountinfo("", "/"), std::nullopt);
  EXPECT_EQ(MountDeviceFromMountinfo("1 2 3 4\nx y nocolon /m\n", "/m"),
            std::nullopt);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ReadaheadWindowTest, AppliesOnceToThePreparedSetting) {
  const std::string path =
      std::string(std::getenv("TEST_TMPDIR")) + "/read_ahead_kb";
  std::ofstream(path) << "128\n";
  ReadaheadWindow window;
  window.Apply();  // nothing prepared: nothing happens
  EXPECT_EQ(ReadAll(path), "128\n");
  ASSERT_TRUE(window.PrepareFile(path, 1024).ok());
  EXPECT_EQ(ReadAll(path), "128\n");  // not before Apply
  window.Apply();
  EXPECT_EQ(ReadAll(path), "1024\n");
  std::ofstream(path) << "64\n";
  window.Apply();  // once only
  EXPECT_EQ(ReadAll(path), "64\n");
}

TEST(ReadaheadWindowTest, PrepareFailsWithoutTheMountOrTheSetting) {
  ReadaheadWindow window;
  EXPECT_FALSE(window.Prepare("/no/such/mount/point", 1024).ok());
  EXPECT_FALSE(window.PrepareFile("/no/such/read_ahead_kb", 1024).ok());
  window.Apply();  // still harmless
}

}  // namespace
}  // namespace e4fs
