#include "fuse/options.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace e4fs {
namespace {

ServerOptions ParseOk(const std::vector<std::string>& args) {
  absl::StatusOr<ServerOptions> opts = ParseCommandLine(args);
  EXPECT_TRUE(opts.ok()) << opts.status();
  return opts.ok() ? *opts : ServerOptions();
}

std::string ParseError(const std::vector<std::string>& args) {
  absl::StatusOr<ServerOptions> opts = ParseCommandLine(args);
  EXPECT_FALSE(opts.ok());
  if (opts.ok()) return "";
  EXPECT_EQ(opts.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(opts.status().message());
}

TEST(OptionsTest, ImageAndMountpointWithDefaults) {
  ServerOptions opts = ParseOk({"disk.img", "/mnt"});
  EXPECT_EQ(opts.action, ServerOptions::Action::kMount);
  EXPECT_EQ(opts.image, "disk.img");
  EXPECT_EQ(opts.mountpoint, "/mnt");
  EXPECT_TRUE(opts.mount.read_only);
  EXPECT_FALSE(opts.mount.no_recovery);
  EXPECT_EQ(opts.mount.errors, ext4::ErrorsPolicy::kDefault);
  EXPECT_EQ(opts.offset, 0u);
  EXPECT_FALSE(opts.foreground);
  EXPECT_FALSE(opts.debug);
  EXPECT_FALSE(opts.single_threaded);
  EXPECT_FALSE(opts.allow_other);
  EXPECT_EQ(opts.entry_timeout, 86400);
  EXPECT_EQ(opts.attr_timeout, 86400);
  EXPECT_TRUE(opts.fuse_options.empty());
}

TEST(OptionsTest, FlagsAnywhere) {
  ServerOptions opts = ParseOk({"-f", "disk.img", "-s", "/mnt", "-o", "ro"});
  EXPECT_TRUE(opts.foreground);
  EXPECT_TRUE(opts.single_threaded);
  EXPECT_FALSE(opts.debug);
  opts = ParseOk({"disk.img", "/mnt", "-d"});
  EXPECT_TRUE(opts.debug);
  EXPECT_TRUE(opts.foreground);
}

TEST(OptionsTest, SandboxDefaultsAndCloneFd) {
  ServerOptions opts = ParseOk({"i", "m"});
  EXPECT_TRUE(opts.sandbox);
  EXPECT_EQ(opts.sandbox_user, "nobody");
  EXPECT_EQ(ParseOk({"i", "m", "-o", "sandbox_user=daemon"}).sandbox_user,
            "daemon");
  // clone_fd reopens /dev/fuse per thread, which the sandbox cannot.
  absl::StatusOr<ServerOptions> bad =
      ParseCommandLine({"i", "m", "-o", "clone_fd"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("nosandbox"),
            std::string::npos);
  EXPECT_FALSE(ParseCommandLine({"i", "m", "-o", "sandbox_user="}).ok());
}

TEST(OptionsTest, MountHelperForm) {
  // What mount.fuse3 runs for `mount -t fuse.e4fs IMAGE MNT -o ro`.
  ServerOptions opts =
      ParseOk({"/srv/disk.img", "/mnt/disk", "-o", "ro,dev,suid"});
  EXPECT_EQ(opts.image, "/srv/disk.img");
  EXPECT_EQ(opts.mountpoint, "/mnt/disk");
  EXPECT_TRUE(opts.mount.read_only);
  EXPECT_EQ(opts.fuse_options, (std::vector<std::string>{"dev", "suid"}));

  opts = ParseOk({"/dev/loop0", "/mnt", "-o",
                  "ro,noatime,nodev,allow_other,suid,_netdev,nofail,"
                  "defaults,x-systemd.automount,relatime,user=alice"});
  EXPECT_TRUE(opts.allow_other);
  EXPECT_EQ(opts.fuse_options,
            (std::vector<std::string>{"noatime", "nodev", "suid"}));
}

TEST(OptionsTest, EngineOptions) {
  ServerOptions opts =
      ParseOk({"i", "m", "-o",
               "rw,fakeroot,offset=1048576,errors=remount-ro,cache_size=64M,"
               "inode_cache=1000,sandbox_user=nobody,commit=30"});
  EXPECT_FALSE(opts.mount.read_only);
  EXPECT_TRUE(opts.fakeroot);
  EXPECT_EQ(opts.offset, 1048576u);
  EXPECT_EQ(opts.mount.errors, ext4::ErrorsPolicy::kRemountReadOnly);
  EXPECT_EQ(opts.mount.block_cache_limit, 64u * 1024 * 1024 / 4096);
  EXPECT_EQ(opts.mount.inode_cache_limit, 1000u);
  EXPECT_EQ(opts.mount.commit_interval_seconds, 30);
  EXPECT_EQ(opts.sandbox_user, "nobody");
  EXPECT_TRUE(opts.sandbox);

  opts = ParseOk({"i", "m", "-ooffset=0x200,errors=panic", "-o",
                  "errors=continue,nosandbox"});
  EXPECT_EQ(opts.offset, 0x200u);
  EXPECT_EQ(opts.mount.errors, ext4::ErrorsPolicy::kContinue);
  EXPECT_FALSE(opts.sandbox);
}

TEST(OptionsTest, LastOfRoAndRwWins) {
  EXPECT_FALSE(ParseOk({"i", "m", "-o", "ro,rw"}).mount.read_only);
  EXPECT_TRUE(ParseOk({"i", "m", "-o", "rw", "-o", "ro"}).mount.read_only);
}

TEST(OptionsTest, NoRecoveryImpliesReadOnly) {
  ServerOptions opts = ParseOk({"i", "m", "-o", "rw,norecovery"});
  EXPECT_TRUE(opts.mount.no_recovery);
  EXPECT_TRUE(opts.mount.read_only);
  EXPECT_TRUE(ParseOk({"i", "m", "-o", "noload"}).mount.no_recovery);
}

TEST(OptionsTest, TimeoutsAndThreads) {
  ServerOptions opts =
      ParseOk({"i", "m", "-o",
               "entry_timeout=2.5,attr_timeout=0,negative_timeout=10,"
               "max_threads=32,max_idle_threads=4,clone_fd,nosandbox,debug"});
  EXPECT_EQ(opts.entry_timeout, 2.5);
  EXPECT_EQ(opts.attr_timeout, 0);
  EXPECT_EQ(opts.negative_timeout, 10);
  EXPECT_EQ(opts.max_threads, 32u);
  EXPECT_EQ(opts.max_idle_threads, 4u);
  EXPECT_TRUE(opts.clone_fd);
  EXPECT_TRUE(opts.debug);
  EXPECT_TRUE(opts.foreground);
}

TEST(OptionsTest, ReadaheadWindow) {
  EXPECT_EQ(ParseOk({"i", "m"}).readahead_kb, 1008u);  // one max_read
  EXPECT_EQ(ParseOk({"i", "m", "-o", "readahead_kb=0"}).readahead_kb, 0u);
  EXPECT_EQ(ParseOk({"i", "m", "-o", "readahead_kb=4096"}).readahead_kb, 4096u);
  EXPECT_NE(ParseError({"i", "m", "-o", "readahead_kb=-1"}), "");
  EXPECT_NE(ParseError({"i", "m", "-o", "readahead_kb=4194304"}), "");
  EXPECT_NE(ParseError({"i", "m", "-o", "readahead_kb="}), "");
}

TEST(OptionsTest, HelpAndVersionWinOverEverythingAfterThem) {
  EXPECT_EQ(ParseOk({"-h"}).action, ServerOptions::Action::kHelp);
  EXPECT_EQ(ParseOk({"--help"}).action, ServerOptions::Action::kHelp);
  EXPECT_EQ(ParseOk({"i", "--help", "-o", "bogus"}).action,
            ServerOptions::Action::kHelp);
  EXPECT_EQ(ParseOk({"-V"}).action, ServerOptions::Action::kVersion);
  EXPECT_EQ(ParseOk({"--version"}).action, ServerOptions::Action::kVersion);
}

TEST(OptionsTest, BadValuesAreErrors) {
  EXPECT_NE(ParseError({"i", "m", "-o", "offset=abc"}).find("offset=abc"),
            std::string::npos);
  EXPECT_NE(ParseError({"i", "m", "-o", "offset=-1"}).find("offset=-1"),
            std::string::npos);
  EXPECT_NE(ParseError({"i", "m", "-o", "offset="}).find("offset="),
            std::string::npos);
  EXPECT_NE(ParseError({"i", "m", "-o", "errors=bogus"}).find("errors=bogus"),
            std::string::npos);
  ParseError({"i", "m", "-o", "cache_size=12Q"});
  ParseError({"i", "m", "-o", "inode_cache=0"});
  ParseError({"i", "m", "-o", "entry_timeout=-1"});
  ParseError({"i", "m", "-o", "attr_timeout=inf"});
  ParseError({"i", "m", "-o", "max_threads=0"});
  ParseError({"i", "m", "-o", "fsname="});
}

TEST(OptionsTest, UnknownOptionsAreErrors) {
  EXPECT_NE(ParseError({"i", "m", "-o", "ro,bogus"}).find("'bogus'"),
            std::string::npos);
  EXPECT_NE(ParseError({"i", "m", "-x"}).find("'-x'"), std::string::npos);
  ParseError({"i", "m", "-o", "nosymfollow"});
  ParseError({"i", "m", "-o"});
}

TEST(OptionsTest, PositionalErrors) {
  EXPECT_NE(ParseError({}).find("missing image"), std::string::npos);
  EXPECT_NE(ParseError({"-o", "ro"}).find("missing image"), std::string::npos);
  EXPECT_NE(ParseError({"disk.img"}).find("missing mount point"),
            std::string::npos);
  EXPECT_NE(ParseError({"a", "b", "c"}).find("'c'"), std::string::npos);
}

TEST(OptionsTest, DoubleDashEndsOptions) {
  ServerOptions opts = ParseOk({"-f", "--", "-weird.img", "/mnt"});
  EXPECT_EQ(opts.image, "-weird.img");
  EXPECT_TRUE(opts.foreground);
}

TEST(OptionsTest, EscapedCommaStaysInValue) {
  ServerOptions opts = ParseOk({"i", "m", "-o", "fsname=a\\,b,ro"});
  EXPECT_EQ(opts.fuse_options, (std::vector<std::string>{"fsname=a,b"}));
}

TEST(OptionsTest, LibfuseArgumentsReadOnly) {
  ServerOptions opts = ParseOk({"/img,1", "/mnt", "-o", "ro,dev,suid"});
  EXPECT_EQ(LibfuseArguments(opts, /*read_only=*/true),
            (std::vector<std::string>{
                "e4fs", "-o",
                "subtype=e4fs,fsname=/img\\,1,max_read=1032192,ro,dev,suid"}));
}

TEST(OptionsTest, LibfuseArgumentsAllowOther) {
  ServerOptions opts =
      ParseOk({"img", "mnt", "-o", "allow_other,fsname=mine", "-d"});
  EXPECT_EQ(
      LibfuseArguments(opts, /*read_only=*/true),
      (std::vector<std::string>{"e4fs", "-o",
                                "subtype=e4fs,max_read=1032192,ro,allow_other,"
                                "default_permissions,debug,fsname=mine"}));
  opts = ParseOk({"img", "mnt", "-o", "allow_other,fakeroot"});
  EXPECT_EQ(LibfuseArguments(opts, /*read_only=*/false)[2],
            "subtype=e4fs,fsname=img,max_read=1032192,rw,allow_other");
  // A max_read= given is passed as it is, and is what INIT answers.
  opts = ParseOk({"img", "mnt", "-o", "max_read=65536"});
  EXPECT_EQ(LibfuseArguments(opts, /*read_only=*/false)[2],
            "subtype=e4fs,fsname=img,rw,max_read=65536");
  EXPECT_EQ(MaxRead(opts), 65536u);
  EXPECT_EQ(MaxRead(ParseOk({"img", "mnt"})), kDefaultMaxRead);
}

TEST(OptionsTest, UsageMentionsEveryOwnOption) {
  const std::string usage = UsageText();
  for (const char* word :
       {"ro", "rw", "fakeroot", "allow_other", "offset=", "errors=",
        "norecovery", "cache_size=", "-f", "-d", "-s", "--help", "--version"}) {
    EXPECT_NE(usage.find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace e4fs
